"""Pictures of gradient flow, as PNG bytes for TensorBoard images or files.

- `gradient_flow_png`: mean |gradient| per layer against depth, log scale,
  one line per recorded step, so a plain and a residual run side by side
  show at a glance where the gradient dies.
- `curves_png`: several runs' curves on one plot (loss, gradient reach).
- `heatmap_png`: |dL/dx_t| per input timestep against training step, log
  colour scale, so one sees the gradient reach back through time (or not).

Only numpy and matplotlib: a training run draws these in a child process
(`vgzoo.observe.painter`) that never imports TensorFlow.
"""
import io

import numpy as np

FLOW_TAG = "gradient_flow/by_layer"
HEATMAP_TAG = "grad_through_time/heatmap"


def spread_evenly(count, limit):
    """Indices of at most `limit` of `count` items, evenly spread, first and last included."""
    return sorted(set(np.linspace(0, count - 1, min(limit, count)).round().astype(int)))


def _figure(width, height):
    """A figure outside pyplot: no global state, so one can be drawn on any thread."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    return figure, figure.subplots()


def _colormap(name):
    import matplotlib

    return matplotlib.colormaps[name]


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _png(figure, tight=True):
    """PNG bytes; `tight` trims the margins to the texts, which draws the figure twice."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def _margins(figure, left=0.9, right=0.25, top=0.4, bottom=0.55):
    """Margins in inches, set ahead rather than measured: the per-epoch pictures draw once.

    A training run's pictures are drawn while the next epoch trains, and on
    2 cores their drawing slows it even at idle priority; `bbox_inches="tight"`
    drew it twice (0.24 s against 0.17 s for a resnet20 flow picture of 39 layers).
    """
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, top=1 - top / height, bottom=min(bottom / height, 0.6)
    )


def gradient_flow_png(layer_names, steps, rows, title="gradient flow", ylabel="mean |gradient|"):
    figure, axes = _figure(9, 4)
    colours = _colormap("viridis")(np.linspace(0, 1, max(len(rows), 1)))
    for step, row, colour in zip(steps, rows, colours):
        axes.plot(np.maximum(row, 1e-30), color=colour, label=f"step {step}", linewidth=1)
    axes.set_yscale("log")
    # Minor ticks of a log axis double matplotlib's drawing time and add no reading.
    axes.yaxis.set_minor_locator(_null_locator())
    axes.set_xlabel("layer (input → output)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    label_chars = 0
    if len(layer_names) <= 40:
        axes.set_xticks(range(len(layer_names)), layer_names, rotation=90, fontsize=6)
        label_chars = max(map(len, layer_names), default=0)
    if len(rows) <= 10:
        axes.legend(fontsize=7)
    # Names rotated 90 degrees at 6 pt take about 0.04 inch a character, below them the x label.
    _margins(figure, bottom=0.45 + 0.042 * label_chars)
    return _png(figure, tight=False)


def curves_png(series, xlabel, ylabel, title, log=False):
    """Several runs' curves on one plot.

    `series` maps a label to (x, y, line style, run index): a run's curves
    (train and validation, say) share a colour and differ in style.
    """
    figure, axes = _figure(8, 4)
    tab10 = _colormap("tab10")
    for label, (x, y, style, run) in series.items():
        axes.plot(x, y, style, label=label, linewidth=1.2, color=tab10(run % 10))
    if log:
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=7)
    return _png(figure)


def heatmap_png(steps, rows, title="|dL/dx_t| averaged over the batch"):
    # log10 on a linear colour scale reads the same as a LogNorm and draws in half the time.
    grid = np.log10(np.maximum(np.asarray(rows, dtype=np.float64), 1e-30))
    figure, axes = _figure(8, 4)
    _margins(figure, right=0.1)  # the colour bar and its label take their room from the axes
    image = axes.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        vmin=grid.min(),
        vmax=max(grid.max(), grid.min() + 1e-6),
        # One recorded step still needs a row of some height.
        extent=(-0.5, grid.shape[1] - 0.5, max(steps[-1], steps[0] + 1), steps[0]),
        cmap="viridis",
    )
    axes.set_xlabel("input timestep")
    axes.set_ylabel("training step")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="log10 gradient norm")
    return _png(figure, tight=False)
