"""Run folders and the files written into them.

A run lives in `<logdir>/<dataset>/<model>/<run-id>/` with `train/` and
`validation/` event files, `config.json` and the weights. Run ids carry the
time and a random suffix, and the folder is created exclusively, so two runs
started in the same second never share a folder.
"""
import datetime
import json
import os
import secrets
import tempfile
from pathlib import Path

from vgzoo.errors import VgzooError

DEFAULT_LOGDIR = "tensorboard_logs"


def new_run_dir(logdir, dataset, model, run_name=None):
    parent = Path(logdir) / dataset / model
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise VgzooError(
            f"cannot create the log folder {parent}: {error.strerror}. "
            "Choose another with --logdir."
        ) from None
    if not os.access(parent, os.W_OK):
        raise VgzooError(f"the log folder {parent} is not writable. Choose another with --logdir.")
    if run_name:
        return _claim(parent / run_name, exist_ok=True)
    while True:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = _claim(parent / f"{stamp}-{secrets.token_hex(3)}", exist_ok=False)
        if run_dir is not None:
            return run_dir


def _claim(path, exist_ok):
    try:
        path.mkdir(exist_ok=exist_ok)
    except FileExistsError:
        return None
    return path


def atomic_write_text(path, text):
    """Write through a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_config(run_dir, config):
    atomic_write_text(Path(run_dir) / "config.json", json.dumps(config, indent=2, sort_keys=True))


def library_versions():
    import platform

    import keras
    import numpy
    import tensorflow

    import vgzoo

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "vgzoo": vgzoo.__version__,
    }
