"""A run's gradient flow read back from its event files, drawn as a PNG.

Reads the `grad_norm/<NN>_<layer>` scalars (every layer, every recorded step)
with TensorBoard's own event reader, so the picture can be drawn for any
finished or running run, long after training.
"""
from pathlib import Path

import numpy as np

from vgzoo.errors import VgzooError
from vgzoo.observe import tags as layer_tags
from vgzoo.observe.figures import gradient_flow_png, spread_evenly

PREFIX = "grad_norm/"


def _events_folder(run_dir):
    """The `train/` folder of a run, or the folder itself if it holds the events."""
    run_dir = Path(run_dir)
    if (run_dir / "train").is_dir():
        return run_dir / "train"
    if run_dir.is_dir():
        return run_dir
    raise VgzooError(f"no run folder at {run_dir}; pass a folder such as tensorboard_logs/mnist/resnet20/<run>.")


def read_gradient_norms(run_dir):
    """(layers in depth order, recorded steps, one row of norms per step)."""
    from vgzoo.analysis.events import open_events, scalar_series

    folder = _events_folder(run_dir)
    events = open_events(folder)
    names = [tag[len(PREFIX):] for tag in events.Tags()["tensors"] if tag.startswith(PREFIX)]
    if not names:
        raise VgzooError(f"no grad_norm/* summaries in {folder}: is it a vgzoo training run?")
    ordered = layer_tags.in_depth_order(names)
    by_step = {}
    for column, (name, _) in enumerate(ordered):
        for step, value in scalar_series(events, PREFIX + name):
            by_step.setdefault(step, np.full(len(ordered), np.nan))[column] = value
    steps = sorted(by_step)
    return [layer for _, layer in ordered], steps, [by_step[step] for step in steps]


def plot_gradient_flow(run_dir, path, max_lines=8):
    """Write the run's gradient norm per layer, one line per recorded step, as a PNG.

    At most `max_lines` steps are drawn, evenly spread from the first to the
    last recorded one. Returns the path written.
    """
    layers, steps, rows = read_gradient_norms(run_dir)
    picked = spread_evenly(len(steps), max_lines)
    png = gradient_flow_png(
        layers,
        [steps[index] for index in picked],
        [rows[index] for index in picked],
        title=f"gradient flow: {Path(run_dir).parent.name}/{Path(run_dir).name}",
        ylabel="gradient L2 norm of the layer",
    )
    path = Path(path)
    path.write_bytes(png)
    return path
