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
from vgzoo.errors import VgzooError
from vgzoo.observe import activations, explosion, selection, summaries, timesteps, updates


# Outputs of the two-function step that are not metrics.
_NEXT_STEP, _NOTE = "_vgzoo_next_step", "_vgzoo_explosion_note"


def _observable_inputs(model):
    """The model's symbolic inputs, or None for a subclassed model that has none."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return inputs or None


class _ObservedStep:
    """The observed train step, shared by the functional and the subclassed forms."""

    def _observe(self, model, writer, hist_every, histogram_layers, with_activations, keep_finite):
        if not model.trainable_variables:
            raise VgzooError(f"{model.name} has no trainable variables yet: build it first "
                             "(call it once on a batch, or give its first layer an input shape).")
        self.summary_writer = writer
        self.hist_every = int(hist_every)
        self.keep_finite = bool(keep_finite)
        self._next_step, self.latest_note = None, None
        # Keras averages a distributed step's outputs (multiworker: over their first
        # axis), which would blur the note; under a strategy both are read from variables.
        self.counts_in_outputs = not tf.distribute.has_strategy()
        if histogram_layers is None:
            histogram_layers = selection.select_layers(model)
        self.histogram_layers = frozenset(histogram_layers)
        self.watched = activations.WatchedLayers(model if with_activations else None, histogram_layers)
        self.prediction_count = len(model.outputs) if with_activations else 1
        # Same layers, more outputs; untracked, so checkpoints keep the model's format.
        self.with_activations = Untracked(
            keras.Model(model.inputs, list(model.outputs) + self.watched.outputs)
            if with_activations else None
        )
        self.explosion_note = Untracked(
            _first_replica_variable(tf.constant([explosion.NO_EXPLOSION] * 2, tf.int64))
        )
        self.layer_order = summaries.layers_in_order(model.trainable_variables)
        self.latest_layer_mean_abs = Untracked(
            _first_replica_variable(tf.zeros([len(self.layer_order)]))
        )
        inputs = _observable_inputs(model)
        self.watch_inputs = (inputs is not None and len(inputs) == 1
                             and timesteps.is_sequence(inputs[0]) and inputs[0].shape[1] is not None)
        if self.watch_inputs:
            # Read by the heat-map callback after recorded steps; a plain
            # tf.Variable, so it never enters the model's checkpoints.
            self.latest_timestep_norms = Untracked(
                _first_replica_variable(tf.zeros([inputs[0].shape[1]]))
            )

    recording = None  # set by `vgzoo.observe.watch.watch`

    def fit(self, *args, callbacks=None, **kwargs):
        """Keras' fit; a watched model's adds the observer's callbacks before the user's."""
        if self.recording is None:
            return super().fit(*args, callbacks=callbacks, **kwargs)
        recording = self.recording.value
        validating = kwargs.get("validation_data") is not None or bool(kwargs.get("validation_split"))
        every = recording.callbacks(self, validating) + list(callbacks or [])
        # Resume may have moved the counter since the last fit; the note is read afresh.
        self._next_step, self.latest_note = None, None
        try:
            return super().fit(*args, callbacks=every, **kwargs)
        finally:
            recording.finish()

    def make_train_function(self, force=False):
        """Two compiled steps, recorded and quiet, picked before each step.

        A quiet step is Keras' own step plus the explosion check and the
        per-step scalars: no branch, no copy. With `steps_per_execution` > 1
        one call runs several steps, so one compiled step decides each
        step's recording in the graph instead.
        """
        if self.train_function is not None and not force:
            return self.train_function
        self._next_step, self.latest_note = None, None
        if self.steps_per_execution > 1:
            self.train_function = keras_internals.make_function(self, functools.partial(self._observed_step, record=None))
            return self.train_function
        recorded = keras_internals.make_function(self, functools.partial(self._observed_step, record=True))
        quiet = keras_internals.make_function(self, functools.partial(self._observed_step, record=False))
        # Each step returns the optimizer's next step count and the explosion note
        # among its outputs; reading them there spares two variable reads a step
        # (about 0.2 ms, 4% of a small CNN's step). Read once from the counter
        # itself at the start of each fit, which a resume may have set.

        def train_function(iterator):
            if self._next_step is None or not self.counts_in_outputs:
                self._next_step = int(keras_internals.batch_counter(self.optimizer).numpy())
            step_function = recorded if self._next_step % self.hist_every == 0 else quiet
            logs = step_function(iterator)
            if self.counts_in_outputs:
                logs = dict(logs)
                self._next_step = int(logs.pop(_NEXT_STEP))
                self.latest_note = logs.pop(_NOTE).numpy()
            return logs

        self.train_function = train_function
        return train_function

    def explosion_note_now(self):
        """[step, variable index] of the first non-finite step, as of the last step run."""
        if self.latest_note is not None:
            return self.latest_note
        return self.explosion_note.value.numpy()

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
            # As Keras' own step: a LossScaleOptimizer (mixed precision) scales the loss.
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        sources = list(variables) + ([x] if watch_inputs else [])
        # One backward pass gives the weight gradients and, for sequences, dL/dx.
        gradients = tape.gradient(scaled_loss, sources)
        # What is recorded is what the optimizer applies: the unscaled gradients.
        unscaled = _unscaled(gradients, self.optimizer)
        input_gradient = unscaled.pop() if watch_inputs else None
        if watch_inputs:
            gradients.pop()
        # Read before `apply`, which advances the counter: step k is the k-th batch.
        step = tf.identity(keras_internals.batch_counter(self.optimizer))
        learning_rate = self.optimizer.learning_rate
        record_now = tf.equal(step % self.hist_every, 0) if record is None else record
        applied, applied_loss = _across_replicas(unscaled, loss)
        weights_before = updates.snapshot(variables, record_now)
        self._apply_if_finite(step, applied_loss, applied, gradients, variables)
        with self.summary_writer.as_default(step=step):
            weight_norms = summaries.record_weights(variables, weights_before, step, record_now, self.histogram_layers)
            updates.record_update_ratios(variables, weights_before, weight_norms, step, record_now)
            self.watched.record(layer_outputs, step, record_now)
        # Weighted by the batch's size, as Keras' own step weights it (several outputs: the first input's).
        batch_size = tf.shape(tf.nest.flatten(x)[0])[0]
        keras_internals.loss_tracker(self).update_state(applied_loss, sample_weight=batch_size)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        self._record(step, record_now, applied_loss, learning_rate, logs, variables, applied, input_gradient)
        if record is None or not self.counts_in_outputs:
            return logs
        # Popped by `make_train_function`'s caller before fit() sees the logs.
        # Read after the update, in program order: a skipped update (loss scaling) leaves it.
        next_step = tf.convert_to_tensor(keras_internals.batch_counter(self.optimizer))
        return dict(logs, **{_NEXT_STEP: next_step, _NOTE: self.explosion_note.value.read_value()})

    def _forward(self, x):
        """Predictions (as `self(x)` gives them) and the watched layers' outputs."""
        if self.with_activations.value is None:
            return self(x, training=True), []
        outputs = self.with_activations.value(x, training=True)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]  # Keras returns a one-output model's output bare
        predictions = outputs[: self.prediction_count]
        y_pred = predictions[0] if self.prediction_count == 1 else predictions
        return y_pred, outputs[self.prediction_count:]

    def _apply_if_finite(self, step, loss, applied, gradients, variables):
        """Apply the update unless it holds NaN or inf (`keep_finite`); note where it went bad.

        Without `keep_finite`, and always under a distribution strategy
        (the optimizer's cross-replica merge cannot sit inside a branch), it
        is applied as Keras' own step applies it, and the check runs beside
        it; the run still stops after the step.
        """
        note = self.explosion_note.value
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            # It skips a step whose scaled gradients overflow and lowers its scale
            # itself; only a loss that is not a number is an explosion then.
            self.optimizer.apply(gradients, variables)
            bad = tf.stack([tf.cast(step, tf.int64), tf.constant(explosion.NO_EXPLOSION, tf.int64)])
            note.assign(tf.where(tf.reduce_all(tf.math.is_finite(loss)), note.read_value(), bad))
        elif explosion.holds_updates(self.keep_finite):
            explosion.apply_if_finite(lambda: self.optimizer.apply(gradients, variables), applied, loss, step, note)
        else:
            self.optimizer.apply(gradients, variables)
            explosion.note_beside_update(applied, loss, step, note)

    def _record(self, step, record_now, loss, learning_rate, logs, variables, gradients, input_gradient):
        with self.summary_writer.as_default(step=step):
            # `step_*`: this step's own values; `running/*`: Keras' logs, means over the
            # epoch so far, which jump at each epoch's start and must not pass for per-step ones.
            summaries.write_scalars(
                [("step_loss", loss), ("step_learning_rate", learning_rate)]
                + [(f"running/{name}", value) for name, value in logs.items()],
                step,
            )
            _, mean_abs = summaries.record_gradients(
                variables, gradients, step, record_now, self.histogram_layers
            )
            if record_now is not False:  # a quiet step leaves the last recorded row
                self.latest_layer_mean_abs.value.assign(mean_abs)
            if input_gradient is not None:
                self._record_timesteps(input_gradient, step, record_now)

    def _record_timesteps(self, input_gradient, step, record_now):
        from tensorboard.compat.proto import summary_pb2

        norms = timesteps.norms_per_timestep(input_gradient)
        self.latest_timestep_norms.value.assign(norms)
        # The norms as numbers, one vector a recorded step: the vgzoo tab's heat map reads them.
        norms_metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="vgzoo"),
            data_class=summary_pb2.DATA_CLASS_TENSOR,
        )

        def write():
            summaries.write_scalars([("grad_reach", timesteps.grad_reach(norms))], step)
            tf.summary.write("grad_through_time/norms", norms, step=step, metadata=norms_metadata)
            return summaries.write_histograms([(timesteps.HISTOGRAM_TAG, norms)], step)

        summaries.when(record_now, write, lambda: tf.constant(False))


class ObservedModel(_ObservedStep, keras.Model):
    """A functional model over the watched model's layers whose train step writes what it computes."""

    def __init__(self, model, writer, hist_every, histogram_layers=None, keep_finite=False):
        super().__init__(inputs=model.inputs, outputs=model.outputs, name=model.name)
        self._observe(model, writer, hist_every, histogram_layers, with_activations=True, keep_finite=keep_finite)


class ObservedSubclassedModel(_ObservedStep, keras.Model):
    """For a subclassed model: its own `call`, recorded, without activation histograms.

    A subclassed model has no graph of layer outputs to return beside its
    predictions, so gradients, weights, norms and update ratios are recorded
    and activations are not. Saving saves the watched model, in its format.
    """

    def __init__(self, model, writer, hist_every, histogram_layers=None, keep_finite=False):
        super().__init__(name=model.name)
        self.watched_model = model
        self._observe(model, writer, hist_every, histogram_layers, with_activations=False, keep_finite=keep_finite)

    def call(self, inputs, training=None):
        return self.watched_model(inputs, training=training)

    def save_weights(self, *args, **kwargs):
        return self.watched_model.save_weights(*args, **kwargs)

    def load_weights(self, *args, **kwargs):
        return self.watched_model.load_weights(*args, **kwargs)


def observed(model, writer, hist_every, histogram_layers=None, keep_finite=False):
    """The observed form of `model`: functional where it has a graph, else the subclassed one."""
    if _observable_inputs(model) is not None and getattr(model, "outputs", None):
        return ObservedModel(model, writer, hist_every, histogram_layers, keep_finite=keep_finite)
    return ObservedSubclassedModel(model, writer, hist_every, histogram_layers, keep_finite=keep_finite)


def _unscaled(gradients, optimizer):
    """Gradients of a scaled loss divided by the scale (identity without loss scaling)."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and not getattr(
            optimizer, "loss_scale_factor", None):
        return list(gradients)
    scale = optimizer.scale_loss(tf.constant(1.0))
    return [None if g is None else g / tf.cast(scale, g.dtype) for g in gradients]


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


class Untracked:
    """Holds an object out of sight of Keras' attribute tracking."""

    def __init__(self, value):
        self.value = value
