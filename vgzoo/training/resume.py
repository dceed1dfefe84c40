"""Resume, all of it: claiming a run, cutting its events back, restoring, saving.

As Keras' `BackupAndRestore` keeps it in one callback, this module holds
every part of continuing an interrupted run:
- `open_run` claims the run folder: an interrupted run with the same
  fingerprint (what is trained, not where), or a new one, locked while a
  process trains into it;
- `truncate_run_events` drops summaries flushed after the last saved state,
  so the resumed run appends to one unbroken history;
- `restore` loads weights and optimizer slots and replays the data order the
  uninterrupted run would have read;
- `TrainingState` saves weights, optimizer and the epoch and step at the end
  of every completed epoch; `InterruptFlag` stops after the current step.

Every file is written through a temporary name and a rename (`vgzoo.storage`),
so a kill at any moment leaves the old file or the new one, never half of one.
"""
import dataclasses
import hashlib
import json
import signal
import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2

from vgzoo import keras_internals
from vgzoo.errors import VgzooError
from vgzoo.observe.figures import FLOW_TAG, HEATMAP_TAG
from vgzoo.observe.heldout import TEST_FOLDER
from vgzoo.storage import atomic_save_weights, atomic_write_text
from vgzoo.training import runs

STATE_FILE = "state.json"
EVENT_FOLDERS = ("train", "validation", TEST_FOLDER)
# Epoch summaries are indexed by epoch, everything else by training step.
EPOCH_INDEXED_PREFIXES = ("epoch_", FLOW_TAG, HEATMAP_TAG)


def fingerprint(source):
    """A hash of what a run trains: the same command gives the same fingerprint."""
    return hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclasses.dataclass
class OpenRun:
    run_dir: Path
    lock: runs.RunLock
    state: object  # the saved state to resume from, or None for a new run


def claim_resumable(parent, run_fingerprint):
    """The newest unlocked interrupted run under `parent` with this fingerprint, locked."""
    if not Path(parent).is_dir():
        return None, None
    for run_dir in sorted(Path(parent).iterdir(), reverse=True):
        if not is_resumable(run_dir):
            continue
        if runs.read_config(run_dir).get("fingerprint") != run_fingerprint:
            continue
        lock = runs.RunLock(run_dir)
        if lock.acquire():
            return run_dir, lock
    return None, None


def open_run(logdir, dataset_label, model_name, run_name, record, allow_resume):
    """The run folder, locked: an interrupted run of the same config, or a new one.

    A folder that already holds a finished run is never trained into again.
    """
    runs.check_run_name(run_name)
    parent = runs.run_parent(logdir, dataset_label, model_name)
    run_dir = lock = None
    if allow_resume and not run_name:
        run_dir, lock = claim_resumable(parent, record["fingerprint"])
    if run_dir is None:
        run_dir = runs.new_run_dir(logdir, dataset_label, model_name, run_name)
        lock = runs.RunLock(run_dir)
        if not lock.acquire():
            raise VgzooError(f"another process is training into {run_dir}; choose another --run-name.")
    try:
        state = _state_to_resume(run_dir, record)
    except VgzooError:
        lock.release()
        raise
    return OpenRun(run_dir, lock, state)


def _state_to_resume(run_dir, record):
    """The saved state to continue from, None for a fresh start; refuses to overwrite."""
    existing, saved = runs.read_config(run_dir), read_state(run_dir) or {}
    if saved.get("finished"):
        raise VgzooError(f"{run_dir} already holds a finished run, which would be overwritten; "
                         "choose another --run-name, or delete that folder to train it again.")
    if existing and existing.get("fingerprint") != record["fingerprint"]:
        raise VgzooError(f"{run_dir} holds a run with other settings; choose another --run-name.")
    if is_resumable(run_dir):
        return saved
    if existing:
        # Killed before its first epoch ended: nothing was saved, so it starts again.
        truncate_run_events(run_dir, {"epoch": 0, "step": 0})
    runs.save_config(run_dir, record)
    return None


def _keep(event, epoch, step):
    if not event.HasField("summary"):
        return True  # file version and other bookkeeping records
    kept = [
        value
        for value in event.summary.value
        if event.step < (epoch if value.tag.startswith(EPOCH_INDEXED_PREFIXES) else step)
    ]
    del event.summary.value[:]
    event.summary.value.extend(kept)
    return bool(kept)


def _read_events(path):
    """The events of one file, up to a record cut short by a kill."""
    iterator = iter(tf.data.TFRecordDataset(str(path)))
    while True:
        try:
            record = next(iterator)
        except (StopIteration, tf.errors.DataLossError):
            return
        yield event_pb2.Event.FromString(record.numpy())


def truncate_events(folder, epoch, step):
    """Keep epoch summaries before `epoch` and step summaries before `step`."""
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        records = [event.SerializeToString() for event in _read_events(path)
                   if _keep(event, epoch, step)]
        temporary = path.with_name(f".{path.name}.tmp")
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            for record in records:
                writer.write(record)
        temporary.replace(path)


def truncate_run_events(run_dir, state):
    """Before the writers open their new files, which must not be rewritten."""
    for folder in EVENT_FOLDERS:
        truncate_events(Path(run_dir) / folder, state["epoch"], state["step"])


def is_stream(dataset):
    return int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY


def restore(model, run_dir, state, train_data, steps_per_epoch):
    """Weights and optimizer slots restored; returns the data where the run left it."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(Path(run_dir) / state["weights"])
    if is_stream(train_data):
        # fit() reads a stream through one iterator across epochs.
        return train_data.skip(state["epoch"] * steps_per_epoch)
    # Every iterator opened on the data advances its seeded reshuffle, and
    # Keras opens several per epoch (keras_internals.ITERATORS_PER_EPOCH), so
    # the uninterrupted run's epoch e read the order of a later iterator.
    # test_resume checks this bitwise.
    for _ in range(keras_internals.ITERATORS_PER_EPOCH * state["epoch"]):
        iter(train_data)
    return train_data


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
