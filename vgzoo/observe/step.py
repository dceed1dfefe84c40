"""The observed train step: one backward pass, recorded as it is applied.

`ObservedModel` shares the layers (and so the weights) of the model it
watches; it replaces only the train step (compiled twice, recorded and
quiet, by Keras' own machinery), so `fit()` keeps its progress bar, callbacks
and distribution, and the gradients written to TensorBoard are the very
tensors handed to the optimizer. The same forward pass also returns
the outputs of the watched layers (a second functional graph over the same
layers, kept out of the checkpoints), for activation histograms and dead
units. It knows nothing of which model it watches.
"""
import functools

import keras
import tensorflow as tf

from vgzoo import keras_internals
from vgzoo.observe import activations, explosion, selection, summaries, timesteps, updates


class ObservedModel(keras.Model):
    """A functional model whose train step writes what it computes."""

    def __init__(self, model, writer, hist_every, histogram_layers=None):
        super().__init__(inputs=model.inputs, outputs=model.outputs, name=model.name)
        self.summary_writer = writer
        self.hist_every = int(hist_every)
        if histogram_layers is None:
            histogram_layers = selection.select_layers(model)
        self.histogram_layers = frozenset(histogram_layers)
        self.watched = activations.WatchedLayers(model, histogram_layers)
        self.prediction_count = len(model.outputs)
        # Same layers, more outputs; untracked, so checkpoints keep the model's format.
        self.with_activations = _Untracked(
            keras.Model(model.inputs, list(model.outputs) + self.watched.outputs)
        )
        self.explosion_note = _Untracked(
            _first_replica_variable(tf.constant([explosion.NO_EXPLOSION] * 2, tf.int64))
        )
        self.layer_order = summaries.layers_in_order(model.trainable_variables)
        self.latest_layer_mean_abs = _Untracked(
            _first_replica_variable(tf.zeros([len(self.layer_order)]))
        )
        self.watch_inputs = timesteps.is_sequence(model.inputs[0])
        if self.watch_inputs:
            # Read by the heat-map callback after recorded steps; a plain
            # tf.Variable, so it never enters the model's checkpoints.
            self.latest_timestep_norms = _Untracked(
                _first_replica_variable(tf.zeros([model.inputs[0].shape[1]]))
            )

    def make_train_function(self, force=False):
        """Two compiled steps, recorded and quiet, picked before each step.

        A quiet step is Keras' own step plus the explosion check and the
        per-step scalars: no branch, no copy. With `steps_per_execution` > 1
        one call runs several steps, so one compiled step decides each
        step's recording in the graph instead.
        """
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution > 1:
            self.train_function = keras_internals.make_function(self, functools.partial(self._observed_step, record=None))
            return self.train_function
        recorded = keras_internals.make_function(self, functools.partial(self._observed_step, record=True))
        quiet = keras_internals.make_function(self, functools.partial(self._observed_step, record=False))

        def train_function(iterator):
            # fit() has already waited for the last step's logs, so this read costs no stall.
            step = int(self.optimizer.iterations.numpy())
            return (recorded if step % self.hist_every == 0 else quiet)(iterator)

        self.train_function = train_function
        return train_function

    def train_step(self, data):
        """One step, recorded when the optimizer's step count is a multiple of `hist_every`."""
        return self._observed_step(data, record=None)

    def _observed_step(self, data, record):
        """`record`: True or False fixes it as the step is traced; None decides in the graph."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        # dL/dx feeds only recorded steps' timestep norms.
        watch_inputs = self.watch_inputs and record is not False
        with tf.GradientTape() as tape:
            if watch_inputs:
                tape.watch(x)
            y_pred, layer_outputs = self._forward(x)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
        variables = self.trainable_variables
        sources = list(variables) + ([x] if watch_inputs else [])
        # One backward pass gives the weight gradients and, for sequences, dL/dx.
        gradients = tape.gradient(loss, sources)
        input_gradient = gradients.pop() if watch_inputs else None
        # Read before `apply`, which advances the counter: step k is the k-th batch.
        step = tf.identity(self.optimizer.iterations)
        learning_rate = self.optimizer.learning_rate
        record_now = tf.equal(step % self.hist_every, 0) if record is None else record
        applied, applied_loss = _across_replicas(gradients, loss)
        weights_before = updates.snapshot(variables, record_now)
        self._apply_if_finite(step, applied_loss, applied, gradients, variables)
        with self.summary_writer.as_default(step=step):
            updates.record_update_ratios(variables, weights_before, step, record_now)
            summaries.record_weights(variables, weights_before, step, record_now, self.histogram_layers)
            self.watched.record(layer_outputs, step, record_now)
        keras_internals.loss_tracker(self).update_state(applied_loss, sample_weight=tf.shape(y_pred)[0])
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        self._record(step, record_now, applied_loss, learning_rate, logs, variables, applied, input_gradient)
        return logs

    def _forward(self, x):
        """Predictions (as `self(x)` gives them) and the watched layers' outputs."""
        outputs = self.with_activations.value(x, training=True)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]  # Keras returns a one-output model's output bare
        predictions = outputs[: self.prediction_count]
        y_pred = predictions[0] if self.prediction_count == 1 else predictions
        return y_pred, outputs[self.prediction_count:]

    def _apply_if_finite(self, step, loss, applied, gradients, variables):
        """Apply the update unless it holds NaN or inf; then note where it went bad.

        Under a distribution strategy the update is always applied (the
        optimizer's cross-replica merge cannot sit inside a branch); the run
        still stops after the step and keeps the last finite weights saved.
        """
        note = self.explosion_note.value
        if tf.distribute.has_strategy():
            explosion.note_if_not_finite(applied, loss, step, note)
            self.optimizer.apply(gradients, variables)
        else:
            explosion.apply_if_finite(lambda: self.optimizer.apply(gradients, variables), applied, loss, step, note)

    def _record(self, step, record_now, loss, learning_rate, logs, variables, gradients, input_gradient):
        with self.summary_writer.as_default(step=step):
            tf.summary.scalar("step_loss", loss)
            tf.summary.scalar("batch_learning_rate", learning_rate)
            for name, value in logs.items():
                tf.summary.scalar(f"batch_{name}", value)
            _, mean_abs = summaries.record_gradients(
                variables, gradients, step, record_now, self.histogram_layers
            )
            if record_now is not False:  # a quiet step leaves the last recorded row
                self.latest_layer_mean_abs.value.assign(mean_abs)
            if input_gradient is not None:
                self._record_timesteps(input_gradient, step, record_now)

    def _record_timesteps(self, input_gradient, step, record_now):
        norms = timesteps.norms_per_timestep(input_gradient)
        self.latest_timestep_norms.value.assign(norms)

        def write():
            summaries.write_scalars([("grad_reach", timesteps.grad_reach(norms))], step)
            return summaries.write_histograms([(timesteps.HISTOGRAM_TAG, norms)], step)

        summaries.when(record_now, write, lambda: tf.constant(False))


def _replicas_in_sync():
    return tf.distribute.get_strategy().num_replicas_in_sync


def _across_replicas(gradients, loss):
    """The gradients and loss the optimizer applies: summed over replicas.

    Keras scales each replica's loss by 1/replicas and its optimizer sums the
    replicas' gradients; the same all-reduce here gives the recorded copy.
    """
    context = tf.distribute.get_replica_context()
    if context is None or _replicas_in_sync() == 1:
        return gradients, loss
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, list(gradients))
    return summed, context.all_reduce(tf.distribute.ReduceOp.SUM, loss)


def _first_replica_variable(initial_value):
    """A variable the train step assigns at most once a step, whatever the strategy."""
    return tf.Variable(
        initial_value, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
    )


class _Untracked:
    """Holds an object out of sight of Keras' attribute tracking."""

    def __init__(self, value):
        self.value = value
