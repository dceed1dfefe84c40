"""`vgzoo.watch`: the gradient observatory for any Keras model, inside the user's own `fit()`.

    watched = vgzoo.watch(model, logdir="tensorboard_logs/my-run", hist_every=50)
    watched.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=my_loss, metrics=["accuracy"])
    watched.fit(train_ds, validation_data=val_ds, epochs=10, callbacks=[...])

The returned model shares the model's layers and weights and replaces only
its train step: the gradients recorded are the very tensors of the one
backward pass that trains (unscaled under mixed precision, all-reduced under
a distribution strategy). Its `fit()` adds what `vgzoo.train` records
besides the step: epoch metrics, the explosion guard, and the gradient-flow
picture each epoch (a heat map through time for sequence inputs), drawn in a
child process. `vgzoo.train` is built on it.

Functional and Sequential models get everything; subclassed models, which
have no graph of layer outputs, get everything but activation histograms
and dead units.
"""
from pathlib import Path

from vgzoo.errors import TrainingDiverged
from vgzoo.observe import figures, selection, summaries
from vgzoo.observe import painter as painting
from vgzoo.observe.epoch import EpochLogger, RecordedFigure
from vgzoo.observe.explosion import ExplosionGuard, holds_updates
from vgzoo.observe.step import Untracked, observed

# More lines than this hide one another, and each one slows the drawing.
FLOW_LINES = 8
TRAIN_FOLDER, VALIDATION_FOLDER = "train", "validation"


def figure_callbacks(model, writer, hist_every, painter):
    """Gradient flow against depth each epoch; through time too for sequences."""
    flow = RecordedFigure(
        writer, figures.FLOW_TAG, model.latest_layer_mean_abs.value, hist_every, painter,
        "gradient_flow_png", leading=(list(model.layer_order),), options={"title": model.name},
        max_rows=FLOW_LINES,
    )
    if not model.watch_inputs:
        return [flow]
    heatmap = RecordedFigure(
        writer, figures.HEATMAP_TAG, model.latest_timestep_norms.value, hist_every, painter,
        "heatmap_png", options={"title": model.name}, cumulative=True,
    )
    return [flow, heatmap]


def observer_callbacks(model, train_writer, validation_writer, config, stop, painter, write_config=True):
    """What records a run besides its train step: epochs, explosions, pictures.

    The pictures are drawn by `painter` while training goes on; call its
    `finish()` before closing `train_writer`.
    """
    return [
        EpochLogger(train_writer, validation_writer, config, write_config=write_config),
        ExplosionGuard(model.explosion_note_now, model.trainable_variables, stop),
        *figure_callbacks(model, train_writer, config["train"]["hist_every"], painter),
    ]


class Recording:
    """The writers, painter and callbacks a watched model's `fit()` records with."""

    def __init__(self, logdir, hist_every, run_config=None, stop=None, keeps_last_finite=True):
        self.logdir = Path(logdir)
        self.hist_every = hist_every
        self.keeps_last_finite = keeps_last_finite  # what a diverged fit's error says of the weights
        self.run_config = run_config
        self.train_writer = summaries.create_writer(self.logdir / TRAIN_FOLDER)
        self.validation_writer = None
        self.painter = None
        self.divergence = None
        self._stop = stop or self._diverged
        self._config_written = run_config is None

    def _diverged(self, message):
        self.divergence = message

    def callbacks(self, model, validating):
        if validating and self.validation_writer is None:
            self.validation_writer = summaries.create_writer(self.logdir / VALIDATION_FOLDER)
        if self.painter is None:
            self.painter = painting.shared()
        # A run's own config.json already holds its cadence; a user's fit has only the cadence.
        config = self.run_config or {"train": {"hist_every": self.hist_every}}
        made = observer_callbacks(model, self.train_writer, self.validation_writer, config,
                                  self._stop, self.painter, write_config=not self._config_written)
        self._config_written = True
        return made

    def finish(self):
        """The epoch's pictures drawn and everything on disk; raises if the run diverged."""
        if self.painter is not None:
            self.painter.finish()  # the last epoch's pictures, before their writer flushes
            self.painter = None
        for writer in (self.train_writer, self.validation_writer):
            if writer is not None:
                writer.flush()
        if self.divergence:
            message, self.divergence = self.divergence, None
            weights = "the last finite ones" if self.keeps_last_finite else "holding that step's update"
            raise TrainingDiverged(f"{message}; the weights are {weights}.")

    def close(self):
        for writer in (self.train_writer, self.validation_writer):
            if writer is not None:
                writer.close()


def watch(model, logdir, hist_every=50, log_layers=None, keep_finite=False, *, run_config=None, stop=None):
    """A model sharing `model`'s layers and weights whose `fit()` records its gradients.

    `logdir` gets `train/` (and `validation/`) event files; `hist_every`
    steps apart, the step writes gradient, weight and activation histograms;
    per-layer norms, update ratios and dead units on the same steps;
    `vanishing_ratio` and `global_grad_norm` too; `log_layers` (globs on
    layer names) picks the layers whose histograms are written.
    Each update is applied as Keras' own step applies it, and a diverging
    fit stops just after the bad step, its weights holding that step's
    update. `keep_finite=True` holds each update until its gradients are
    known to be finite, so the fit stops with the last finite weights; it
    is off by default because the wait costs a model whose step takes a
    few milliseconds several percent of every step, and `vgzoo.train`
    (whose checkpoints must be finite) turns it on. Under a distribution
    strategy every update is applied whatever it says. `run_config` and
    `stop` are for `vgzoo.train`: the run's config.json, written as a text
    summary, and what to call when the run diverges (by default `fit()`
    raises `TrainingDiverged` after stopping).
    """
    histogram_layers = selection.select_layers(model, log_layers)
    keeps_last_finite = holds_updates(keep_finite)
    recording = Recording(logdir, int(hist_every), run_config=run_config, stop=stop,
                          keeps_last_finite=keeps_last_finite)
    watched = observed(model, recording.train_writer, hist_every, histogram_layers, keep_finite=keep_finite)
    watched.recording = Untracked(recording)
    return watched
