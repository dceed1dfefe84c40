"""Pictures of gradient flow, as PNG bytes for TensorBoard images or files.

- `gradient_flow_png`: mean |gradient| per layer against depth, log scale,
  one line per recorded step, so a plain and a residual run side by side
  show at a glance where the gradient dies.
- `curves_png`: several runs' curves on one plot (loss, gradient reach).
- `heatmap_png`: |dL/dx_t| per input timestep against training step, log
  colour scale, so one sees the gradient reach back through time (or not).
"""
import io

import keras
import numpy as np
import tensorflow as tf


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def gradient_flow_png(layer_names, steps, rows, title="gradient flow", ylabel="mean |gradient|"):
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(9, 4), dpi=100)
    colours = pyplot.cm.viridis(np.linspace(0, 1, max(len(rows), 1)))
    for step, row, colour in zip(steps, rows, colours):
        axes.plot(np.maximum(row, 1e-30), color=colour, label=f"step {step}", linewidth=1)
    axes.set_yscale("log")
    axes.set_xlabel("layer (input → output)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if len(layer_names) <= 40:
        axes.set_xticks(range(len(layer_names)), layer_names, rotation=90, fontsize=6)
    if len(rows) <= 10:
        axes.legend(fontsize=7)
    return _png(figure)


def curves_png(series, xlabel, ylabel, title, log=False):
    """Several runs' curves on one plot.

    `series` maps a label to (x, y, line style, run index): a run's curves
    (train and validation, say) share a colour and differ in style.
    """
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(8, 4), dpi=100)
    for label, (x, y, style, run) in series.items():
        axes.plot(x, y, style, label=label, linewidth=1.2, color=pyplot.cm.tab10(run % 10))
    if log:
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=7)
    return _png(figure)


def heatmap_png(steps, rows, title="|dL/dx_t| averaged over the batch"):
    from matplotlib import colors

    pyplot = _pyplot()
    grid = np.maximum(np.asarray(rows, dtype=np.float64), 1e-30)
    figure, axes = pyplot.subplots(figsize=(8, 4), dpi=100)
    image = axes.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        norm=colors.LogNorm(vmin=grid.min(), vmax=max(grid.max(), grid.min() * 1.0001)),
        # One recorded step still needs a row of some height.
        extent=(-0.5, grid.shape[1] - 0.5, max(steps[-1], steps[0] + 1), steps[0]),
        cmap="viridis",
    )
    axes.set_xlabel("input timestep")
    axes.set_ylabel("training step")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="gradient norm (log scale)")
    return _png(figure)


class RecordedFigure(keras.callbacks.Callback):
    """Collects a vector the train step keeps on recorded steps; draws it each epoch.

    `cumulative` keeps every recorded step of the run in the picture (the
    heat map); otherwise each epoch's picture shows that epoch's steps.
    """

    def __init__(self, writer, tag, latest, hist_every, draw, cumulative):
        super().__init__()
        self.writer = writer
        self.tag = tag
        self.latest = latest  # a tf.Variable assigned by the train step
        self.hist_every = hist_every
        self.draw = draw
        self.cumulative = cumulative
        self.steps, self.rows = [], []

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy()) - 1
        if step % self.hist_every == 0:
            self.steps.append(step)
            self.rows.append(self.latest.numpy().copy())

    def on_epoch_end(self, epoch, logs=None):
        if not self.rows:
            return
        image = tf.image.decode_png(self.draw(self.steps, self.rows), channels=4)
        with self.writer.as_default(step=epoch):
            tf.summary.image(self.tag, tf.expand_dims(image, 0))
        self.writer.flush()
        if not self.cumulative:
            self.steps, self.rows = [], []
