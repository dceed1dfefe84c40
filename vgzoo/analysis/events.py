"""Reading a run's event files back, with TensorBoard's own reader.

One reader for every consumer (the sequence demo, the comparison report, the
flow picture, the He et al. figure): scalars stored as tensors in TF2 come
back as `[(step, value)]` in step order.
"""
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util


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
