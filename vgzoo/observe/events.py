"""Reading a run's event files back, and rewriting them so a resumed run has
no duplicated steps.

A run killed in the middle of an epoch may have flushed summaries past its
last saved state. Before it resumes, those are dropped, so the resumed run
appends to one unbroken history. Epoch summaries (`epoch_*` and the two
pictures) are indexed by epoch, everything else by training step.
"""
from pathlib import Path

import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.util import tensor_util

from vgzoo.observe.figures import FLOW_TAG, HEATMAP_TAG

EPOCH_INDEXED_PREFIXES = ("epoch_", FLOW_TAG, HEATMAP_TAG)


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
        records = []
        for event in _read_events(path):
            if _keep(event, epoch, step):
                records.append(event.SerializeToString())
        temporary = path.with_name(f".{path.name}.tmp")
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            for record in records:
                writer.write(record)
        temporary.replace(path)


def open_events(folder):
    """TensorBoard's own reader over a folder's event files, every record kept."""
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def scalar_series(accumulator, tag):
    """`[(step, value)]` of a scalar tag (stored as tensors in TF2), in step order."""
    if tag not in accumulator.Tags()["tensors"]:
        return []
    events = sorted(accumulator.Tensors(tag), key=lambda event: event.step)
    return [(event.step, float(tensor_util.make_ndarray(event.tensor_proto))) for event in events]


def read_scalars(folder, tag):
    """`[(step, value)]` of a scalar tag in one folder's event files."""
    return scalar_series(open_events(folder), tag)
