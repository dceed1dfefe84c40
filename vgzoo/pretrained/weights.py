"""Published weight files: found, fetched, verified by sha256, loaded.

A weight file is looked for in the models folder ($VGZOO_MODELS_DIR, else
`models/` beside the package), then in the Keras cache, then fetched with
`keras.utils.get_file` unless $VGZOO_OFFLINE is set; its sha256 is checked
before anything is loaded.
"""
from pathlib import Path

from vgzoo.data.files import OFFLINE_ENV, keras_cache_dir, offline
from vgzoo.errors import VgzooError
from vgzoo.pretrained.manifest import CACHE_SUBDIR, label, models_dir
from vgzoo.storage import file_digest


def check_hash(path, entry):
    actual = file_digest(path)
    if actual != entry["sha256"]:
        raise VgzooError(
            f"the checkpoint file {path} is corrupt or was modified: sha256 {actual}, "
            f"the manifest expects {entry['sha256']}. Delete it and fetch it again "
            f"(vgzoo.load downloads {entry['url']})."
        )
    return path


def cache_folder():
    return keras_cache_dir().parent / CACHE_SUBDIR


def locate(entry):
    """The verified weight file: from the models folder, the cache, or fetched."""
    local = models_dir() / entry["file"]
    if local.is_file():
        return check_hash(local, entry)
    cached = cache_folder() / entry["file"]
    if cached.is_file() or not offline():
        return check_hash(_fetch(entry, cached), entry)
    raise VgzooError(
        f"the checkpoint file {entry['file']} for {label(entry)} is not here and {OFFLINE_ENV} "
        f"forbids downloading it: put it in {models_dir()} (or {cache_folder()}), "
        f"or unset {OFFLINE_ENV} to fetch it from {entry['url']}."
    )


def _fetch(entry, cached):
    if cached.is_file():
        return cached
    import keras

    # get_file falls back to /tmp/.keras when the cache folder does not exist yet.
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(keras.utils.get_file(
            entry["file"], origin=entry["url"], file_hash=entry["sha256"],
            cache_subdir=CACHE_SUBDIR, cache_dir=str(cache_folder().parent),
        ))
    except Exception as error:  # network, HTTP and hash failures alike
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise VgzooError(
            f"could not download the checkpoint file {entry['file']} from {entry['url']} "
            f"({reason}): put the file in {models_dir()} and try again."
        ) from None




def load_into(model, path, what, remedy):
    """`model.load_weights(path)`, its failures one line naming `what` and the `remedy`."""
    try:
        model.load_weights(path)
    except FileNotFoundError:
        raise VgzooError(f"no checkpoint at {path}.") from None
    except (ValueError, OSError, KeyError) as error:
        raise VgzooError(f"{path} does not fit {what} ({str(error).splitlines()[0]}); {remedy}.") from None
    return model
