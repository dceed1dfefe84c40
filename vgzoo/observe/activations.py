"""Layer outputs from the training forward pass: histograms and dead units.

Glorot & Bengio (AISTATS 2010) watched each layer's activations saturate or
collapse during training; `activations/<layer>` shows the same from the very
batch the step trains on. For ReLU-family layers, `dead_units/<layer>` is the
fraction of units that output nothing (0, or <= 0 for leaky ReLU) for every
example of the batch; a unit is a channel, the last axis, so a convolution's
filter counts as dead only if it is silent at every position and timestep.
Under tf.distribute both come from the first replica's share of the batch.
"""
import keras
import tensorflow as tf

from vgzoo.observe.summaries import write_histogram

_RELU_FAMILY = (keras.activations.relu, keras.activations.relu6, keras.activations.leaky_relu)


def is_relu_family(layer):
    """ReLU, ReLU6 and leaky ReLU, as a layer of their own or a layer's activation."""
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
        return True
    return getattr(layer, "activation", None) in _RELU_FAMILY


def _single_output(layer):
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None  # a shared layer has several outputs; none is "the" output
    return output if isinstance(output, keras.KerasTensor) else None


class WatchedLayers:
    """The layers whose outputs the observed step returns next to its predictions."""

    def __init__(self, model, histogram_layers):
        histogram_layers = set(histogram_layers)
        self.layers, self.outputs = [], []
        for layer in model.layers:
            wanted = layer.name in histogram_layers or is_relu_family(layer)
            output = _single_output(layer) if wanted and type(layer).__name__ != "InputLayer" else None
            if output is not None:
                self.layers.append(layer)
                self.outputs.append(output)
        self.histogram_names = [layer.name for layer in self.layers if layer.name in histogram_layers]
        self.dead_names = [layer.name for layer in self.layers if is_relu_family(layer)]

    def record(self, outputs, step, record_now):
        """Histograms and dead-unit fractions of `outputs` (one per watched layer)."""
        by_name = {layer.name: output for layer, output in zip(self.layers, outputs)}

        def write_and_measure():
            for name in self.histogram_names:
                write_histogram(f"activations/{name}", by_name[name], step)
            fractions = [dead_fraction(by_name[name]) for name in self.dead_names]
            return tf.stack(fractions) if fractions else tf.zeros([0])

        if not self.layers:
            return
        fractions = tf.cond(record_now, write_and_measure, lambda: tf.zeros([len(self.dead_names)]))
        # Scalars outside the branch keep their tags free of its name scope.
        with tf.summary.record_if(record_now):
            for index, name in enumerate(self.dead_names):
                tf.summary.scalar(f"dead_units/{name}", fractions[index], step=step)


def dead_fraction(activation):
    """Fraction of channels (last axis) that are <= 0 for every example and position."""
    axes = list(range(len(activation.shape) - 1))
    silent = tf.reduce_all(activation <= 0, axis=axes)
    return tf.reduce_mean(tf.cast(silent, tf.float32))
