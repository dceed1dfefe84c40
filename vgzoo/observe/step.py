"""The observed train step: one backward pass, recorded as it is applied.

`ObservedModel` shares the layers (and so the weights) of the model it
watches; it only replaces `train_step`, so `fit()` keeps its progress bar,
callbacks and compiled function, and the gradients written to TensorBoard are
the very tensors handed to the optimizer. It knows nothing of which model it
watches.
"""
import keras
import tensorflow as tf

from vgzoo.observe import explosion, summaries, timesteps


class ObservedModel(keras.Model):
    """A functional model whose train step writes what it computes."""

    def __init__(self, model, writer, hist_every):
        super().__init__(inputs=model.inputs, outputs=model.outputs, name=model.name)
        self.summary_writer = writer
        self.hist_every = int(hist_every)
        self.explosion_note = _Untracked(explosion.new_note())
        self.layer_order = summaries.layers_in_order(model.trainable_variables)
        self.latest_layer_mean_abs = _Untracked(
            tf.Variable(tf.zeros([len(self.layer_order)]), trainable=False)
        )
        self.watch_inputs = timesteps.is_sequence(model.inputs[0])
        if self.watch_inputs:
            # Read by the heat-map callback after recorded steps; a plain
            # tf.Variable, so it never enters the model's checkpoints.
            self.latest_timestep_norms = _Untracked(
                tf.Variable(tf.zeros([model.inputs[0].shape[1]]), trainable=False)
            )

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            if self.watch_inputs:
                tape.watch(x)
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
        variables = self.trainable_variables
        sources = list(variables) + ([x] if self.watch_inputs else [])
        # One backward pass gives the weight gradients and, for sequences, dL/dx.
        gradients = tape.gradient(loss, sources)
        input_gradient = gradients.pop() if self.watch_inputs else None
        # Read before `apply`, which advances the counter: step k is the k-th batch.
        step = tf.identity(self.optimizer.iterations)
        learning_rate = self.optimizer.learning_rate
        self._apply_if_finite(step, loss, gradients, variables)
        self._loss_tracker_metric().update_state(loss, sample_weight=tf.shape(y_pred)[0])
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        self._record(step, loss, learning_rate, logs, variables, gradients, input_gradient)
        return logs

    def _apply_if_finite(self, step, loss, gradients, variables):
        """Apply the update unless it holds NaN or inf; then note where it went bad."""
        finite = explosion.finite_by_variable(gradients)
        all_finite = tf.logical_and(tf.reduce_all(finite), tf.reduce_all(tf.math.is_finite(loss)))

        def apply():
            self.optimizer.apply(gradients, variables)
            return tf.constant(True)

        def note():
            bad_gradient = tf.logical_not(tf.reduce_all(finite))
            index = tf.where(bad_gradient, explosion.first_bad_index(finite), explosion.NO_EXPLOSION)
            self.explosion_note.value.assign(tf.stack([tf.cast(step, tf.int64), index]))
            return tf.constant(False)

        tf.cond(all_finite, apply, note)

    def _loss_tracker_metric(self):
        return next(metric for metric in self.metrics if metric.name == "loss")

    def _record(self, step, loss, learning_rate, logs, variables, gradients, input_gradient):
        record_now = tf.equal(step % self.hist_every, 0)
        with self.summary_writer.as_default(step=step):
            tf.summary.scalar("step_loss", loss)
            tf.summary.scalar("batch_learning_rate", learning_rate)
            for name, value in logs.items():
                tf.summary.scalar(f"batch_{name}", value)
            _, mean_abs = summaries.record_gradients(variables, gradients, step, record_now)
            self.latest_layer_mean_abs.value.assign(mean_abs)
            if input_gradient is not None:
                self._record_timesteps(input_gradient, step, record_now)

    def _record_timesteps(self, input_gradient, step, record_now):
        norms = timesteps.norms_per_timestep(input_gradient)
        self.latest_timestep_norms.value.assign(norms)
        tf.cond(
            record_now,
            lambda: summaries.write_histogram(timesteps.HISTOGRAM_TAG, norms, step),
            lambda: tf.constant(False),
        )
        with tf.summary.record_if(record_now):
            tf.summary.scalar("grad_reach", timesteps.grad_reach(norms), step=step)


class _Untracked:
    """Holds an object out of sight of Keras' attribute tracking."""

    def __init__(self, value):
        self.value = value
