"""Published weight files: found, fetched, verified by sha256, loaded.

A weight file is looked for in the models folder ($VGZOO_MODELS_DIR, else the
`models` folder shipped in the package, else the repository's `models/`), then
in the Keras cache, then downloaded with `keras.utils.get_file` unless
$VGZOO_OFFLINE is set. vgzoo runs no download server: the published
checkpoints ship with the package, and a manifest entry's `url` is null
unless whoever published it put the file where a URL reaches it. A missing
file is downloaded from $VGZOO_WEIGHTS_URL (a base URL the file name is
appended to) when it is set, else from the entry's `url`; with neither, the
error says where to put the file. Its sha256 is checked before anything is
loaded.
"""
import os
from pathlib import Path

from vgzoo.data.files import OFFLINE_ENV, keras_cache_dir, offline
from vgzoo.errors import VgzooError
from vgzoo.pretrained.manifest import CACHE_SUBDIR, label, models_dir
from vgzoo.storage import file_digest

WEIGHTS_URL_ENV = "VGZOO_WEIGHTS_URL"


def origin(entry):
    """Where a missing file is downloaded from: $VGZOO_WEIGHTS_URL/<file>, else the entry's `url`, else None."""
    base = os.environ.get(WEIGHTS_URL_ENV, "").strip()
    if base:
        return f"{base.rstrip('/')}/{entry['file']}"
    return entry.get("url") or None


def _set_url_hint(entry):
    return f"set {WEIGHTS_URL_ENV} to a base URL that serves it (vgzoo fetches {WEIGHTS_URL_ENV}/{entry['file']})"


def check_hash(path, entry):
    actual = file_digest(path)
    if actual != entry["sha256"]:
        url = origin(entry)
        again = (f"vgzoo.load downloads {url}" if url else
                 f"reinstall vgzoo or restore models/ with git, or {_set_url_hint(entry)}")
        raise VgzooError(
            f"the checkpoint file {path} is corrupt or was modified: sha256 {actual}, "
            f"the manifest expects {entry['sha256']}. Delete it and fetch it again ({again})."
        )
    return path


def cache_folder():
    return keras_cache_dir().parent / CACHE_SUBDIR


def locate(entry):
    """The verified weight file: from the models folder, the cache, or downloaded."""
    local = models_dir() / entry["file"]
    if local.is_file():
        return check_hash(local, entry)
    cached = cache_folder() / entry["file"]
    if cached.is_file():
        return check_hash(cached, entry)
    url = origin(entry)
    where = f"put it in {models_dir()} (or {cache_folder()})"
    if offline():
        fetch = (f"or unset {OFFLINE_ENV} to fetch it from {url}" if url else
                 f"or unset {OFFLINE_ENV} and {_set_url_hint(entry)}")
        raise VgzooError(
            f"the checkpoint file {entry['file']} for {label(entry)} is not here and {OFFLINE_ENV} "
            f"forbids downloading it: {where}, {fetch}."
        )
    if url is None:
        raise VgzooError(
            f"the checkpoint file {entry['file']} for {label(entry)} is not here and has no download "
            f"URL: {where}, or {_set_url_hint(entry)}."
        )
    return check_hash(_fetch(entry, url), entry)


def _fetch(entry, url):
    import keras

    # get_file falls back to /tmp/.keras when the cache folder does not exist yet.
    cache_folder().mkdir(parents=True, exist_ok=True)
    try:
        return Path(keras.utils.get_file(
            entry["file"], origin=url, file_hash=entry["sha256"],
            cache_subdir=CACHE_SUBDIR, cache_dir=str(cache_folder().parent),
        ))
    except Exception as error:  # network, HTTP and hash failures alike
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise VgzooError(
            f"could not download the checkpoint file {entry['file']} from {url} "
            f"({reason}): put the file in {models_dir()} (or {cache_folder()}) and try again."
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
