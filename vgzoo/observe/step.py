"""The observed train step: one backward pass, recorded as it is applied.

`ObservedModel` shares the layers (and so the weights) of the model it
watches; it only replaces `train_step`, so `fit()` keeps its progress bar,
callbacks and compiled function, and the gradients written to TensorBoard are
the very tensors handed to the optimizer. It knows nothing of which model it
watches.
"""
import keras
import tensorflow as tf

from vgzoo.observe import summaries


class ObservedModel(keras.Model):
    """A functional model whose train step writes what it computes."""

    def __init__(self, model, writer, hist_every):
        super().__init__(inputs=model.inputs, outputs=model.outputs, name=model.name)
        self.summary_writer = writer
        self.hist_every = int(hist_every)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
        variables = self.trainable_variables
        gradients = tape.gradient(loss, variables)
        # Read before `apply`, which advances the counter: step k is the k-th batch.
        step = tf.identity(self.optimizer.iterations)
        learning_rate = self.optimizer.learning_rate
        self.optimizer.apply(gradients, variables)
        self._loss_tracker_metric().update_state(loss, sample_weight=tf.shape(y_pred)[0])
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        self._record(step, loss, learning_rate, logs, variables, gradients)
        return logs

    def _loss_tracker_metric(self):
        return next(metric for metric in self.metrics if metric.name == "loss")

    def _record(self, step, loss, learning_rate, logs, variables, gradients):
        with self.summary_writer.as_default(step=step):
            tf.summary.scalar("step_loss", loss)
            tf.summary.scalar("batch_learning_rate", learning_rate)
            for name, value in logs.items():
                tf.summary.scalar(f"batch_{name}", value)
            summaries.record_gradients(
                variables, gradients, step, tf.equal(step % self.hist_every, 0)
            )
