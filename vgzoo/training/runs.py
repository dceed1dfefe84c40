"""Run folders and the files written into them.

A run lives in `<logdir>/<dataset>/<model>/<run-id>/` with `train/` and
`validation/` event files, `config.json` and the weights. Run ids carry the
time and a random suffix, and the folder is created exclusively, so two runs
started in the same second never share a folder.
"""
import datetime
import fcntl
import json
import os
import secrets
from pathlib import Path

from vgzoo.errors import VgzooError
from vgzoo.storage import atomic_write_text
from vgzoo.training.config import DEFAULT_LOGDIR, check_run_name  # noqa: F401  (re-exported)


def run_parent(logdir, dataset, model):
    return Path(logdir) / dataset / model


CONFIG_FILE = "config.json"


def read_config(run_dir):
    """A run's config.json (`{}` when it has none), older layouts brought up to date."""
    try:
        config = json.loads((Path(run_dir) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(config, dict) and "train" not in config and "optimizer" in config:
        config = _from_first_layout(config)
    return config


def _from_first_layout(config):
    """config.json as written before the one TrainConfig: options at the top level."""
    optimizer, dataset = config["optimizer"], config.get("dataset", {})
    train = {
        "dataset": dataset.get("name"), "epochs": config.get("epochs"),
        "batch_size": config.get("batch_size"), "optimizer": optimizer.get("name"),
        "learning_rate": optimizer.get("learning_rate"), "momentum": optimizer.get("momentum"),
        "weight_decay": optimizer.get("weight_decay"), "schedule": optimizer.get("schedule"),
        "warmup_steps": optimizer.get("warmup_steps", 0), "clipnorm": optimizer.get("clipnorm"),
        "global_clipnorm": optimizer.get("global_clipnorm"), "seed": config.get("seed"),
        "hist_every": config.get("hist_every"), "test_every": config.get("test_every", 0),
        "source_split": dataset.get("source_split") or "train",
        "seq_len": dataset.get("seq_len") if dataset.get("name") in ("adding", "copy") else None,
        "strategy": config.get("strategy", "default"), "weights": config.get("initial_weights"),
    }
    return dict(config, train=train, learning_rate=optimizer.get("learning_rate"))


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
        return _claim(parent / check_run_name(run_name), exist_ok=True)
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


def save_config(run_dir, config):
    atomic_write_text(Path(run_dir) / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True))


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
