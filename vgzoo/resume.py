"""Nothing lost: atomic checkpoints, resumable training state, clean interrupts.

Every file is written to a temporary name in the same folder and renamed,
so a kill at any moment leaves the old file or the new one, never half of
one. The training state (weights with optimizer slots, the epoch and the
step) is saved at the end of every completed epoch; running the same command
again continues from there.
"""
import json
import os
import signal
import tempfile
import threading
from pathlib import Path

import keras
import numpy as np

from vgzoo.runs import atomic_write_text

STATE_FILE = "state.json"


def atomic_save_weights(model, path):
    """`model.save_weights` through a temporary file and a rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".weights.h5"
    )
    os.close(handle)
    try:
        model.save_weights(temporary, overwrite=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_state(run_dir):
    """The saved training state of a run, or None when it has none."""
    path = Path(run_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_resumable(run_dir):
    state = read_state(run_dir)
    return (
        bool(state)
        and not state.get("finished")
        and (Path(run_dir) / state.get("weights", "")).is_file()
    )


def restore(model, run_dir):
    """Load weights and optimizer slots saved by `TrainingState`; returns the state."""
    state = read_state(run_dir)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(Path(run_dir) / state["weights"])
    return state


def mark_finished(run_dir):
    state = read_state(run_dir) or {}
    state["finished"] = True
    atomic_write_text(Path(run_dir) / STATE_FILE, json.dumps(state, indent=2))


class InterruptFlag:
    """SIGINT asks the run to stop after the current step; a second one stops at once."""

    def __init__(self):
        self.raised = False
        self.reason = None
        self._previous = None

    def stop(self, reason):
        """Stop for another reason than Ctrl-C (a diverged run, say)."""
        self.raised = True
        self.reason = reason

    def __enter__(self):
        # Signal handlers can only be set from the main thread; elsewhere
        # Ctrl-C keeps Python's default behaviour.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        self.raised = True
        self.reason = "interrupted"
        signal.signal(signal.SIGINT, self._previous)


class TrainingState(keras.callbacks.Callback):
    """Saves checkpoints and the resumable state at the end of each completed epoch."""

    def __init__(self, run_dir, interrupt, monitor, best=None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.interrupt = interrupt
        self.monitor = monitor
        self.best = best
        self.step = 0

    def on_train_batch_end(self, batch, logs=None):
        if self.interrupt.raised:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.step = int(self.model.optimizer.iterations.numpy())
        if all(np.isfinite(weight).all() for weight in self.model.get_weights()):
            atomic_save_weights(self.model, self.run_dir / "last.weights.h5")
        if self.interrupt.raised:
            return  # a partial epoch is never recorded as completed
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or value < self.best):
            self.best = float(value)
            atomic_save_weights(self.model, self.run_dir / "best.weights.h5")
        # A new weights file per epoch, named by the state written after it:
        # a kill between the two leaves the previous, consistent pair.
        weights = f"state-epoch{epoch + 1}.weights.h5"
        atomic_save_weights(self.model, self.run_dir / weights)
        state = {
            "epoch": epoch + 1,
            "step": self.step,
            "weights": weights,
            "best": self.best,
            "monitor": self.monitor,
        }
        atomic_write_text(self.run_dir / STATE_FILE, json.dumps(state, indent=2))
        for old in self.run_dir.glob("state-epoch*.weights.h5"):
            if old.name != weights:
                old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        self.step = int(self.model.optimizer.iterations.numpy())
