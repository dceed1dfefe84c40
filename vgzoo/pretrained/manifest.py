"""The manifest of published checkpoints: reading, writing and finding entries.

`models/manifest.json` is a list of entries, one per checkpoint: the model
and the data it was trained on, the knobs and shapes that rebuild its
architecture from the registry, the `.weights.h5` file with its size and
sha256, the URL to fetch it from, the metrics measured on the held-out test
split (with a tolerance) and the command that trained it. As in Keras
applications, only weights are stored; the architecture always comes from
the registry.

    model = vgzoo.load("lstm", dataset="adding", pretrained=True)

Weight files are found and checked by `vgzoo.pretrained.weights`; models are
built by `vgzoo.architectures.factory`. This module never imports TensorFlow.
"""
import json
import os
import re
from pathlib import Path

from vgzoo.architectures import registry
from vgzoo.errors import VgzooError
from vgzoo.storage import atomic_write_text

MODELS_DIR_ENV = "VGZOO_MODELS_DIR"
MANIFEST_NAME = "manifest.json"
CACHE_SUBDIR = "vgzoo"  # under the Keras home, beside its `datasets`
DEFAULT_TOLERANCE = 1e-4  # absolute, per metric: same weights, same data


def models_dir():
    """$VGZOO_MODELS_DIR, else the folder shipped in the package, else the repository's `models/`.

    A wheel ships the repository's `models/` as `vgzoo/models` (setup.cfg maps the
    package `vgzoo.models` to it); a checkout or an editable install has no such
    folder and reads the repository's `models/` beside the package.
    """
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    package = Path(__file__).resolve().parents[1]
    shipped = package / "models"
    if (shipped / MANIFEST_NAME).is_file():
        return shipped
    return package.parent / "models"


def manifest_path(folder=None):
    return Path(folder or models_dir()) / MANIFEST_NAME


def read_manifest(folder=None):
    """The manifest's entries; none when the folder has no manifest yet."""
    path = manifest_path(folder)
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError as error:
        raise VgzooError(f"{path} is not valid JSON ({error}); restore it with git.") from None
    if not isinstance(entries, list):
        raise VgzooError(f"{path} must hold a JSON list of checkpoint entries.")
    for number, entry in enumerate(entries, start=1):
        check_entry(entry, f"entry {number} of {path}")
    return entries


def write_manifest(entries, folder=None):
    """Atomically: a reader sees the old manifest or the new one, never half."""
    path = manifest_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, _dumps(entries))


def _dumps(entries):
    """JSON with one field a line and each value on its line: short diffs, easy reading."""
    blocks = [
        "  {\n" + ",\n".join(f"    {json.dumps(key)}: {json.dumps(value)}"
                              for key, value in entry.items()) + "\n  }"
        for entry in entries
    ]
    return "[\n" + ",\n".join(blocks) + "\n]\n" if blocks else "[]\n"


def dataset_label(entry):
    """`adding T=200`: the data of an entry with its options."""
    options = "".join(f" {'T' if key == 'seq_len' else key}={value}"
                      for key, value in sorted(entry.get("dataset_options", {}).items()))
    return f"{entry['dataset']}{options}"


def label(entry):
    """`lstm on adding T=200`: how messages and tables name an entry."""
    return f"{entry['model']} on {dataset_label(entry)}"


def file_name(model, dataset, seq_len=None):
    """`lstm-adding-T200.weights.h5`; image checkpoints carry no length."""
    length = f"-T{seq_len}" if seq_len else ""
    return f"{model}-{dataset}{length}.weights.h5"


def published(entries=None):
    return [e for e in (read_manifest() if entries is None else entries) if e.get("published")]


def find_entry(model, dataset, seq_len=None, entries=None, require_published=True):
    """The manifest entry for (model, dataset[, seq_len]); a VgzooError if none fits."""
    entries = read_manifest() if entries is None else entries
    matches = [
        e for e in entries
        if e["model"] == model and e["dataset"] == dataset
        and seq_len in (None, e.get("dataset_options", {}).get("seq_len"))
    ]
    usable = [e for e in matches if e.get("published") or not require_published]
    if len(usable) == 1:
        return usable[0]
    if len(usable) > 1:
        raise VgzooError(
            f"several checkpoints fit {model} on {dataset}: "
            f"{', '.join(label(e) for e in usable)}; pass seq_len= to choose one."
        )
    available = ", ".join(label(e) for e in published(entries)) or "none yet"
    why = ("its entry is unpublished (train it with `make pretrained`)" if matches
           else "the manifest has no entry for it")
    raise VgzooError(
        f"no published checkpoint for {model} on {dataset}{f' T={seq_len}' if seq_len else ''}: "
        f"{why}. Published: {available} (see `vgzoo list --pretrained`)."
    )


def check_knobs(entry, knobs):
    """Refuse knobs that would build another architecture than the checkpoint's."""
    spec = registry.get_spec(entry["model"])
    theirs = spec.resolve(entry_knobs(entry))
    for key, value in spec.resolve(knobs).items():
        if key in knobs and value != theirs.get(key):
            raise VgzooError(
                f"the {label(entry)} checkpoint was built with {key}={theirs.get(key)!r}, "
                f"not {key}={value!r}: drop the knob, or train your own with `vgzoo train`."
            )


def check_shapes(entry, input_shape, num_classes):
    if input_shape is not None and tuple(input_shape) != tuple(entry["input_shape"]):
        raise VgzooError(f"the {label(entry)} checkpoint takes input_shape "
                         f"{tuple(entry['input_shape'])}, not {tuple(input_shape)}.")
    if num_classes is not None and num_classes != entry["num_classes"]:
        raise VgzooError(f"the {label(entry)} checkpoint has num_classes "
                         f"{entry['num_classes']}, not {num_classes}.")


def entry_knobs(entry):
    # Unset knobs (match_params=None) are recorded as null: the builder's default.
    return {key: value for key, value in entry["knobs"].items() if value is not None}


# What every entry must hold to be listed, loaded and verified, and each value's type.
REQUIRED_KEYS = {"model": str, "dataset": str, "file": str, "published": bool, "knobs": dict,
                 "input_shape": list, "num_classes": int, "metrics": dict}
# A weight file is a plain name inside the models folder: nothing that climbs out of it.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.weights\.h5$")


def check_entry(entry, where):
    """Refuse an entry with a missing key, a wrong type or a file outside the models folder."""
    if not isinstance(entry, dict):
        raise VgzooError(f"{where} is not a JSON object; restore the manifest with git.")
    for key, kind in REQUIRED_KEYS.items():
        if not isinstance(entry.get(key), kind) or (kind is int and isinstance(entry.get(key), bool)):
            raise VgzooError(f"{where} has no valid {key!r} (a {kind.__name__}); restore the "
                             "manifest with git or republish that checkpoint.")
    if entry["published"] and not isinstance(entry.get("sha256"), str):
        raise VgzooError(f"{where} is published but has no 'sha256'; republish that checkpoint.")
    if not _FILE_NAME.match(entry["file"]) or ".." in entry["file"]:
        raise VgzooError(f"{where} names the file {entry['file']!r}, which is not a plain "
                         "*.weights.h5 name inside the models folder; refusing to read it.")
