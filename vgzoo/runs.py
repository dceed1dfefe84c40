"""Run folders and the files written into them.

A run lives in `<logdir>/<dataset>/<model>/<run-id>/` with `train/` and
`validation/` event files, `config.json` and the weights. Run ids carry the
time and a random suffix, and the folder is created exclusively, so two runs
started in the same second never share a folder.
"""
import datetime
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path

from vgzoo.errors import VgzooError

DEFAULT_LOGDIR = "tensorboard_logs"


def run_parent(logdir, dataset, model):
    return Path(logdir) / dataset / model


def read_config(run_dir):
    try:
        return json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def new_run_dir(logdir, dataset, model, run_name=None):
    parent = run_parent(logdir, dataset, model)
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


# Fields that differ between two launches of the same command without
# changing what is trained.
_VOLATILE_CONFIG_KEYS = ("command", "versions", "fingerprint")


def fingerprint(config):
    """A hash of what a run trains: the same command gives the same fingerprint."""
    stable = {key: value for key, value in config.items() if key not in _VOLATILE_CONFIG_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunLock:
    """An exclusive lock on a run folder, held while a process trains into it.

    The kernel drops the lock when the process dies, even by SIGKILL, so a
    killed run can be resumed and a live one is never resumed twice.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / "run.lock"
        self.handle = None

    def acquire(self):
        handle = open(self.path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def claim_resumable(parent, run_fingerprint, is_resumable):
    """The newest unlocked run under `parent` with this fingerprint, locked; else None."""
    if not Path(parent).is_dir():
        return None, None
    candidates = sorted(Path(parent).iterdir(), reverse=True)
    for run_dir in candidates:
        if not is_resumable(run_dir):
            continue
        if read_config(run_dir).get("fingerprint") != run_fingerprint:
            continue
        lock = RunLock(run_dir)
        if lock.acquire():
            return run_dir, lock
    return None, None
