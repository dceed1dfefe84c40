"""Per-epoch summaries: metrics for train and validation, learning rate, weights.

Uses the same writers as the observed train step, one per folder, so each of
`train/` and `validation/` holds a single event file that TensorBoard overlays
under the same `epoch_*` tags.
"""
import json

import keras
import tensorflow as tf

from vgzoo.observe import summaries


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
            # The observed model names the layers that get histograms; a plain one, all.
            layers = getattr(self.model, "histogram_layers", None)
            summaries.write_weights(self.model.trainable_variables, epoch, layers)
        if self.validation_writer is not None:
            with self.validation_writer.as_default(step=epoch):
                for name, value in logs.items():
                    if name.startswith("val_"):
                        tf.summary.scalar(f"epoch_{name[4:]}", value)
            self.validation_writer.flush()
        self.train_writer.flush()
