"""Stopping cleanly when gradients or the loss stop being numbers.

The observed step skips the update of a step whose loss or gradients are
NaN or infinite, so the weights stay the last good ones, and notes the step
and the first layer (in depth order) whose gradient went bad. This callback
reads that note after each batch and stops the run.
"""
import keras
import tensorflow as tf

from vgzoo.errors import VgzooError

NO_EXPLOSION = -1


class TrainingDiverged(VgzooError):
    """The loss or a gradient became NaN or infinite."""


def finite_by_variable(gradients):
    return tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])


def first_bad_index(finite_flags):
    """Index of the first False flag (the flags are in depth order)."""
    return tf.cast(tf.argmin(tf.cast(finite_flags, tf.int32)), tf.int64)


class ExplosionGuard(keras.callbacks.Callback):
    def __init__(self, note, variables, stop):
        super().__init__()
        self.note = note  # tf.Variable [step, variable index], set by the train step
        self.variable_paths = [variable.path for variable in variables]
        self.stop = stop
        self.message = None

    def on_train_batch_end(self, batch, logs=None):
        step, index = (int(value) for value in self.note.numpy())
        if step == NO_EXPLOSION:
            return
        if index == NO_EXPLOSION:
            where = "the loss became NaN or infinite"
        else:
            where = f"the gradient of layer {layer_of_path(self.variable_paths[index])} became NaN or infinite"
        self.message = f"training diverged at step {step}: {where}"
        self.model.stop_training = True
        self.stop(self.message)


def layer_of_path(path):
    return path.rsplit("/", 1)[0]

