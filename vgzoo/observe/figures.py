"""Pictures of gradient flow, as PNG bytes for TensorBoard images or files.

- `gradient_flow_png`: mean |gradient| per weight layer against depth, log
  scale, one line per recorded step, normalisation layers as hollow dots
  between the weight layers they follow, so a plain and a residual run side
  by side show at a glance where the gradient dies.
- `curves_png`: several runs' curves on one plot (loss, gradient reach).
- `heatmap_png`: |dL/dx_t| per input timestep against training step, log
  colour scale (optionally a given one, shared by a pair), so one sees the
  gradient reach back through time (or not).

The flow picture and the heat map are TensorBoard image cards, which show a
picture about 350 px wide: they are laid out for 3.5 inches at 100 px an
inch, fonts of 7 to 9 points (10 to 12 px on the card), and drawn at twice
that resolution, so they stay sharp on dense screens and at full size.

Only numpy and matplotlib: a training run draws these in a child process
(`vgzoo.observe.painter`) that never imports TensorFlow.
"""
import io

import numpy as np

from vgzoo.observe import tags

FLOW_TAG = "gradient_flow/by_layer"
HEATMAP_TAG = "grad_through_time/heatmap"

CARD_INCHES = 3.5  # TensorBoard's image card, about 350 px, at 100 px an inch
CARD_DPI = 200
TITLE, LABEL, TICK, NOTE = 9, 8, 7, 7  # font sizes, points
LEGEND_LINES = 3  # more recorded steps than this get a colour bar instead of a legend
_NAME_POINTS = 4.2  # width of a character of a 7-point tick label


def spread_evenly(count, limit):
    """Indices of at most `limit` of `count` items, evenly spread, first and last included."""
    return sorted(set(np.linspace(0, count - 1, min(limit, count)).round().astype(int)))


def _figure(width, height, dpi=100):
    """A figure outside pyplot: no global state, so one can be drawn on any thread."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    return figure, figure.subplots()


def _card(height):
    """A figure of TensorBoard's card width, its texts at the card's font sizes."""
    figure, axes = _figure(CARD_INCHES, height, dpi=CARD_DPI)
    axes.tick_params(labelsize=TICK, length=2.5, pad=2)
    return figure, axes


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
    would draw each picture twice.
    """
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, top=1 - top / height, bottom=min(bottom / height, 0.6)
    )


def depth_positions(layer_names):
    """x of each layer: weight layers 1, 2, 3, ...; a normalisation layer half-way past the one it follows."""
    positions, weights = [], 0
    for name in layer_names:
        if tags.is_norm_layer(name):
            positions.append(weights + 0.5)
        else:
            weights += 1
            positions.append(float(weights))
    return np.array(positions)


def _step_colours(steps):
    """A colour per recorded step, by its value, and the mappable of a colour bar for them."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    scale = ScalarMappable(Normalize(steps[0], max(steps[-1], steps[0] + 1)), _colormap("viridis"))
    return [scale.to_rgba(step) for step in steps], scale


def _weight_ticks(axes, names, positions):
    """The weight layers' names where they fit across the axes, else their numbers."""
    from matplotlib.ticker import MaxNLocator

    weights = [name for name, x in zip(names, positions) if float(x).is_integer()]
    axes.set_xlim(0.5, len(weights) + 0.5)
    room = axes.get_position().width * axes.figure.get_figwidth() * 72
    if weights and sum(len(name) + 2 for name in weights) * _NAME_POINTS <= room:
        axes.set_xticks(range(1, len(weights) + 1), weights)
        axes.set_xlabel("weight layer (input → output)", fontsize=LABEL)
        return
    axes.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True, min_n_ticks=2))
    label = f"weight layer, 1 = {weights[0]} … {len(weights)} = {weights[-1]}" if weights else ""
    # The label may spread into the margins, not past the picture's edges.
    if not label or len(label) * _NAME_POINTS * LABEL / TICK > 0.9 * axes.figure.get_figwidth() * 72:
        label = "weight layer (input → output)"
    axes.set_xlabel(label, fontsize=LABEL)


def gradient_flow_png(layer_names, steps, rows, title="gradient flow", ylabel="mean |gradient|"):
    """One line per recorded step over the weight layers; normalisation layers as hollow dots."""
    figure, axes = _card(2.6)
    positions = depth_positions(layer_names)
    weight = positions == np.round(positions)
    colours, scale = _step_colours(steps)
    for step, row, colour in zip(steps, rows, colours):
        row = np.maximum(np.asarray(row, dtype=np.float64), 1e-30)
        axes.plot(positions[weight], row[weight], color=colour, label=f"step {step}", linewidth=1.1)
        axes.plot(positions[~weight], row[~weight], "o", color=colour, markersize=2.5,
                  markerfacecolor="none", markeredgewidth=0.6)
    axes.set_yscale("log")
    # Minor ticks of a log axis double matplotlib's drawing time and add no reading.
    axes.yaxis.set_minor_locator(_null_locator())
    axes.set_ylabel(ylabel, fontsize=LABEL)
    axes.set_title(title, fontsize=TITLE, pad=3)
    with_bar = len(rows) > LEGEND_LINES
    # The colour bar takes its room from the axes; its ticks and label need the right margin.
    _margins(figure, left=0.55, right=0.42 if with_bar else 0.08, top=0.22, bottom=0.42)
    if with_bar:
        bar = figure.colorbar(scale, ax=axes, fraction=0.05, pad=0.02, aspect=25)
        bar.set_label("training step", fontsize=NOTE, labelpad=1)
        bar.ax.tick_params(labelsize=NOTE - 1, length=2, pad=1)
    _weight_ticks(axes, layer_names, positions)
    norms = [name for name, is_weight in zip(layer_names, weight) if not is_weight]
    if len(rows) <= LEGEND_LINES or norms:
        _flow_legend(axes, len(rows) <= LEGEND_LINES, norms)
    return _png(figure, tight=False)


def _flow_legend(axes, with_steps, norms):
    from matplotlib.lines import Line2D

    handles = axes.get_lines()[::2] if with_steps else []
    if norms:
        kind = "batch norm" if all(name.endswith("_bn") for name in norms) else "normalisation"
        handles = [*handles, Line2D([], [], marker="o", linestyle="none", color="grey", markersize=2.5,
                                    markerfacecolor="none", markeredgewidth=0.6, label=kind)]
    axes.legend(handles=handles, fontsize=NOTE - 1, frameon=False, handlelength=1.2, borderaxespad=0.2,
                labelspacing=0.2, loc="best")


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


def log_range(rows):
    """(lowest, highest) log10 of the gradient norms in `rows`: a colour scale that holds them."""
    grid = np.log10(np.maximum(np.asarray(rows, dtype=np.float64), 1e-30))
    return float(grid.min()), float(max(grid.max(), grid.min() + 1e-6))


def heatmap_png(steps, rows, title=None, scale=None):
    """|dL/dx_t| per timestep (x) and recorded step (y); `scale`: (low, high) log10 bounds to share."""
    # log10 on a linear colour scale reads the same as a LogNorm and draws in half the time.
    grid = np.log10(np.maximum(np.asarray(rows, dtype=np.float64), 1e-30))
    low, high = scale or log_range(rows)
    figure, axes = _card(2.6)
    _margins(figure, left=0.5, right=0.42, top=0.22, bottom=0.38)
    image = axes.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        vmin=low,
        vmax=high,
        # One recorded step still needs a row of some height.
        extent=(-0.5, grid.shape[1] - 0.5, max(steps[-1], steps[0] + 1), steps[0]),
        cmap="viridis",
    )
    axes.set_xlabel("input timestep", fontsize=LABEL, labelpad=1)
    axes.set_ylabel("training step", fontsize=LABEL, labelpad=1)
    axes.set_title(f"{title}: |dL/dx_t|" if title else "|dL/dx_t|, batch mean", fontsize=TITLE, pad=3)
    bar = figure.colorbar(image, ax=axes, fraction=0.06, pad=0.02, aspect=25)
    bar.set_label("log10 gradient norm" + (" (shared)" if scale else ""), fontsize=NOTE, labelpad=1)
    bar.ax.tick_params(labelsize=NOTE - 1, length=2, pad=1)
    return _png(figure, tight=False)
