"""Per-epoch summaries: metrics for train and validation, learning rate, pictures.

Uses the same writers as the observed train step, one per folder, so each of
`train/` and `validation/` holds a single event file that TensorBoard overlays
under the same `epoch_*` tags.
"""
import functools
import json
import time

import keras
import tensorflow as tf

from vgzoo import keras_internals
from vgzoo.observe import figures, summaries


class EpochLogger(keras.callbacks.Callback):
    def __init__(self, train_writer, validation_writer, config, write_config=True):
        super().__init__()
        self.write_config = write_config
        self.train_writer = train_writer
        self.validation_writer = validation_writer
        self.config = config

    def on_train_begin(self, logs=None):
        if not self.write_config:
            return
        text = "```json\n" + json.dumps(self.config, indent=2, sort_keys=True) + "\n```"
        with self.train_writer.as_default(step=0):
            tf.summary.text("config", text)
        self.train_writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        learning_rate = logs.pop("learning_rate", None)
        if learning_rate is None:
            learning_rate = self.model.optimizer.learning_rate
        with self.train_writer.as_default(step=epoch):
            tf.summary.scalar("epoch_learning_rate", learning_rate)
            for name, value in logs.items():
                if not name.startswith("val_"):
                    tf.summary.scalar(f"epoch_{name}", value)
        if self.validation_writer is not None:
            with self.validation_writer.as_default(step=epoch):
                for name, value in logs.items():
                    if name.startswith("val_"):
                        tf.summary.scalar(f"epoch_{name[4:]}", value)
            self.validation_writer.flush()
        self.train_writer.flush()


# A picture costs 0.1-0.3 s of a core to draw; one a tag every 20 s keeps that under 1.5% of a
# core however short the epochs. TensorBoard reloads every 5 s and keeps 10 pictures a tag.
PICTURE_INTERVAL_S = 20.0


class RecordedFigure(keras.callbacks.Callback):
    """Collects a vector the train step keeps on recorded steps; draws it at epochs' ends.

    An epoch is drawn when `PICTURE_INTERVAL_S` have passed since the fit
    began or since the last picture, and the last epoch always; an epoch
    not drawn passes its rows to the next picture, and an interrupted fit
    draws what it holds as it ends.

    `drawing` names a function of `vgzoo.observe.figures`, called with
    `leading` arguments, then the recorded steps and their rows, then
    `options`; the `painter` draws it away from the training process, and
    whoever closes the writer first waits for it (`Painter.finish`).
    `cumulative` keeps every recorded step of the run in the picture (the
    heat map); otherwise each epoch's picture shows that epoch's steps, at
    most `max_rows` of them spread evenly from its first to its last.
    """

    def __init__(
        self, writer, tag, latest, hist_every, painter, drawing,
        leading=(), options=None, cumulative=False, max_rows=None,
    ):
        super().__init__()
        self.writer = writer
        self.tag = tag
        self.latest = latest  # a tf.Variable assigned by the train step
        self.hist_every = hist_every
        self.painter = painter
        self.drawing = drawing
        self.leading = tuple(leading)
        self.options = dict(options or {})
        self.cumulative = cumulative
        self.max_rows = max_rows
        self.steps, self.rows = [], []
        self.next_step = 0
        self.last_drawn = time.monotonic()  # the fit's start or its last picture
        self.undrawn_epoch = None

    def on_train_begin(self, logs=None):
        self.last_drawn, self.undrawn_epoch = time.monotonic(), None
        # Counted here rather than read each batch: reading a variable after
        # every step stalls the train loop as long as the read takes.
        self.next_step = int(keras_internals.batch_counter(self.model.optimizer).numpy())

    def on_train_batch_end(self, batch, logs=None):
        step, self.next_step = self.next_step, self.next_step + 1
        if step % self.hist_every == 0:
            self.steps.append(step)
            self.rows.append(self.latest.numpy().copy())

    def on_epoch_end(self, epoch, logs=None):
        if not self.rows:
            return
        last_epoch = epoch + 1 >= (self.params or {}).get("epochs", epoch + 1)
        due = time.monotonic() - self.last_drawn >= PICTURE_INTERVAL_S
        if due or last_epoch:
            self._draw(epoch)
        else:
            self.undrawn_epoch = epoch

    def on_train_end(self, logs=None):
        if self.undrawn_epoch is not None and self.rows:
            self._draw(self.undrawn_epoch)

    def _draw(self, epoch):
        self.last_drawn, self.undrawn_epoch = time.monotonic(), None
        steps, rows = self.steps, self.rows
        if self.max_rows:
            picked = figures.spread_evenly(len(steps), self.max_rows)
            steps, rows = [steps[i] for i in picked], [rows[i] for i in picked]
        arguments = (*self.leading, list(steps), list(rows))
        self.painter.submit(self.drawing, arguments, self.options, functools.partial(self._write, epoch))
        if not self.cumulative:
            self.steps, self.rows = [], []

    def _write(self, epoch, png):
        with self.writer.as_default():
            summaries.write_png(self.tag, png, epoch)
        self.writer.flush()
