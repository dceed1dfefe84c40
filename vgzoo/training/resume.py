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
  of every completed epoch, and stops after the step during which
  `vgzoo.training.signals.InterruptFlag` saw SIGINT or SIGTERM.

Every file is written through a temporary name and a rename (`vgzoo.storage`),
so a kill at any moment leaves the old file or the new one, never half of one.
"""
import dataclasses
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2

from vgzoo import keras_internals
from vgzoo.errors import VgzooError
from vgzoo.observe.figures import FLOW_TAG, HEATMAP_TAG
from vgzoo.observe.heldout import TEST_FOLDER
from vgzoo.storage import atomic_save_weights, atomic_write_text, remove_leftovers
from vgzoo.training import faults, runs

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
        if run_dir.is_dir():
            _checked_state(run_dir)  # a damaged run beside this one is reported, not skipped
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

    A folder that already holds a finished run is never trained into again;
    a damaged state is reported with what to do, never silently replaced.
    """
    runs.check_run_name(run_name)
    parent = runs.run_parent(logdir, dataset_label, model_name)
    run_dir = lock = None
    if allow_resume and not run_name:
        run_dir, lock = claim_resumable(parent, record["fingerprint"])
    if run_dir is not None:
        return OpenRun(run_dir, lock, _state_to_resume(run_dir, record, allow_resume))
    with faults.reported(Path(logdir)):
        run_dir = runs.new_run_dir(logdir, dataset_label, model_name, run_name)
        try:
            return _claim_named(run_dir, record, allow_resume)
        except (VgzooError, OSError):
            faults.remove_if_empty(run_dir)  # a refused start leaves no empty folder
            raise


def _claim_named(run_dir, record, allow_resume):
    lock = runs.RunLock(run_dir)
    if not lock.acquire():
        raise VgzooError(f"another process is training into {run_dir}; choose another --run-name.")
    try:
        remove_leftovers(run_dir)
        return OpenRun(run_dir, lock, _state_to_resume(run_dir, record, allow_resume))
    except BaseException:
        lock.release()
        raise


def _damaged(run_dir, what, detail):
    return VgzooError(
        f"{Path(run_dir) / what} is damaged ({detail}), so {run_dir} cannot be resumed: rerun "
        "with --no-resume and without --run-name to start a new run beside it, or delete that "
        "folder to start it again."
    )


def _checked_state(run_dir):
    """The saved state, or {} for none; a state.json or config.json that cannot be read is an error."""
    path = Path(run_dir) / STATE_FILE
    config_path = Path(run_dir) / runs.CONFIG_FILE
    if config_path.exists() and not runs.read_config(run_dir):
        raise _damaged(run_dir, runs.CONFIG_FILE, "not valid JSON")
    if not path.exists():
        return {}
    state = read_state(run_dir)
    if not isinstance(state, dict) or ("weights" not in state and not state.get("finished")):
        raise _damaged(run_dir, STATE_FILE, "not a vgzoo training state")
    if not state.get("finished"):
        _check_weights_file(run_dir, state["weights"])
    return state


def _check_weights_file(run_dir, name):
    import h5py

    try:
        with h5py.File(Path(run_dir) / name, "r") as weights:
            weights.visit(lambda _: None)
    except (OSError, ValueError, KeyError) as error:
        raise _damaged(run_dir, name, str(error).splitlines()[0]) from None


def _state_to_resume(run_dir, record, allow_resume=True):
    """The saved state to continue from, None for a fresh start; refuses to overwrite."""
    saved = check_resumable(run_dir, record, allow_resume)
    if saved:
        return saved
    if runs.read_config(run_dir):
        # Killed before its first epoch ended: nothing was saved, so it starts again.
        truncate_run_events(run_dir, {"epoch": 0, "step": 0})
    runs.save_config(run_dir, record)
    return None


def check_resumable(run_dir, record, allow_resume=True):
    """The saved state to continue from, {} for a fresh start; refuses to overwrite. Reads only."""
    saved = _checked_state(run_dir)
    existing = runs.read_config(run_dir)
    if saved.get("finished"):
        raise VgzooError(f"{run_dir} already holds a finished run, which would be overwritten; "
                         "choose another --run-name, or delete that folder to train it again.")
    if existing and existing.get("fingerprint") != record["fingerprint"]:
        raise VgzooError(f"{run_dir} holds a run with other settings; choose another --run-name.")
    if saved and not allow_resume:
        raise VgzooError(f"{run_dir} holds an interrupted run: drop --no-resume to resume it, or "
                         "choose another --run-name to start a new one.")
    return saved


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


class TrainingState(keras.callbacks.Callback):
    """Saves checkpoints and the resumable state at the end of each completed epoch."""

    def __init__(self, run_dir, interrupt, monitor, best=None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.interrupt = interrupt
        self.monitor = monitor
        self.best = best
        self.step = 0
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.interrupt.raised:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.step = int(keras_internals.batch_counter(self.model.optimizer).numpy())
        if all(np.isfinite(weight).all() for weight in self.model.get_weights()):
            atomic_save_weights(self.model, self.run_dir / "last.weights.h5")
        # Interrupted during validation, the epoch's steps are all done: it is
        # recorded, and no step of the next one runs.
        complete = self.batches >= (self.params.get("steps") or self.batches + 1)
        if self.interrupt.raised:
            self.model.stop_training = True
            if not complete or self.interrupt.reason != "interrupted":
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
        self.step = int(keras_internals.batch_counter(self.model.optimizer).numpy())
