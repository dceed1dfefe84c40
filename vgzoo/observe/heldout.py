"""Test error during training, the solid curves of He et al. 2016, Figure 6.

The test split is only measured here, never trained on or used to pick a
checkpoint (validation does that): a forward pass over it every `every`
steps, written to the run's `test/` folder under `test_error` and
`test_loss`, indexed by the step just taken.
"""
import keras
import tensorflow as tf

from vgzoo import keras_internals

TEST_FOLDER = "test"


class TestCurve(keras.callbacks.Callback):
    """Every `every` steps and at the end, error and loss of `network` on `dataset`."""

    def __init__(self, network, dataset, writer, every):
        super().__init__()
        self.network = network
        self.dataset = dataset
        self.writer = writer
        self.every = int(every)
        self.next_step = 0
        self.last_written = None
        self._measure = tf.function(self._batch_totals, reduce_retracing=True)

    def _batch_totals(self, images, labels):
        probabilities = self.network(images, training=False)
        losses = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        wrong = tf.not_equal(tf.argmax(probabilities, axis=-1), tf.cast(labels, tf.int64))
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(wrong, tf.float32))

    def measure(self):
        """(error, mean loss) over the whole test set."""
        loss_sum = wrong = count = 0.0
        for images, labels in self.dataset:
            batch_loss, batch_wrong = self._measure(images, labels)
            loss_sum += float(batch_loss)
            wrong += float(batch_wrong)
            count += int(labels.shape[0])
        return wrong / count, loss_sum / count

    def on_train_begin(self, logs=None):
        self.next_step = int(keras_internals.batch_counter(self.model.optimizer).numpy())

    def on_train_batch_end(self, batch, logs=None):
        step, self.next_step = self.next_step, self.next_step + 1
        if (step + 1) % self.every == 0:
            self._write(step)

    def on_train_end(self, logs=None):
        if self.next_step and self.last_written != self.next_step - 1:
            self._write(self.next_step - 1)

    def _write(self, step):
        error, loss = self.measure()
        with self.writer.as_default(step=step):
            tf.summary.scalar("test_error", error)
            tf.summary.scalar("test_loss", loss)
        self.writer.flush()
        self.last_written = step
