"""Layer outputs from the training forward pass: histograms and dead units.

Glorot & Bengio (AISTATS 2010) watched each layer's activations saturate or
collapse during training; `activations/<layer>` shows the same from the very
batch the step trains on. For ReLU-family layers, `dead_units/<NN>_<layer>`
(NN: the layer's place among them, input first) is the fraction of units
that output nothing (0, or <= 0 for leaky ReLU) for every example of the
batch; a unit is a channel, the last axis, so a convolution's
filter counts as dead only if it is silent at every position and timestep.
Under tf.distribute both come from the first replica's share of the batch.

A histogram of a whole batch's outputs would cost a good part of the step
that made them (a ResNet-20's 49 watched layers hold 6 million values at
batch 16, and even `histogram.summary_proto` takes about 3.5 ns a value),
so a layer with more than `SAMPLED_VALUES` outputs is histogrammed from a
random sample of that many, drawn afresh each recorded step (runs of
consecutive values at uniform positions, `samples`); its `num` says so.
TensorBoard shows 30 bins, and 4,096 values put about 140 in each. Dead
units are always counted over the whole batch. A layer that only
rearranges its input's values (Flatten, Reshape, Permute) gets no histogram
when the layer before it is watched: it would be that layer's again.
"""
import keras
import tensorflow as tf

from vgzoo.observe import tags
from vgzoo.observe.summaries import when, write_histograms, write_scalars

SAMPLED_VALUES = 4_096

# By name, so a ReLU written as another op (the IRNN's, `vgzoo.architectures.recurrent`) counts too.
_RELU_FAMILY = {"relu", "relu6", "leaky_relu"}


def is_relu_family(layer):
    """ReLU, ReLU6 and leaky ReLU, as a layer of their own or a layer's activation."""
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
        return True
    return getattr(getattr(layer, "activation", None), "__name__", None) in _RELU_FAMILY


# Layers that only rearrange their input's values: their histogram would be their input's again.
_REARRANGING = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute)


def _single_input(layer):
    try:
        return layer.input
    except (AttributeError, ValueError):
        return None


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
        for layer in (model.layers if model is not None else []):
            wanted = layer.name in histogram_layers or is_relu_family(layer)
            output = _single_output(layer) if wanted and type(layer).__name__ != "InputLayer" else None
            if isinstance(layer, _REARRANGING) and any(_single_input(layer) is seen for seen in self.outputs):
                continue  # its values are already watched, in the layer before it
            if output is not None:
                self.layers.append(layer)
                self.outputs.append(output)
        self.histogram_names = [layer.name for layer in self.layers if layer.name in histogram_layers]
        self.dead_names = [layer.name for layer in self.layers if is_relu_family(layer)]
        self.dead_tags = tags.layer_tags("dead_units", self.dead_names)

    def record(self, outputs, step, record_now):
        """Histograms and dead-unit fractions of `outputs` (one per watched layer)."""
        by_name = {layer.name: output for layer, output in zip(self.layers, outputs)}

        def write_and_measure():
            drawn = samples([by_name[name] for name in self.histogram_names], SAMPLED_VALUES, step)
            write_histograms(
                [(f"activations/{name}", values) for name, values in zip(self.histogram_names, drawn)], step
            )
            write_scalars([(self.dead_tags[name], dead_fraction(by_name[name])) for name in self.dead_names], step)
            return tf.constant(True)

        if self.layers:
            when(record_now, write_and_measure, lambda: tf.constant(False))


# A run of 16 float32 values is one 64-byte cache line.
RUN = 16


def samples(tensors, count, step):
    """A sample of `count` values of each tensor, all of one step's draws made at once.

    A large layer's sample is `count // RUN` runs of RUN consecutive values,
    at positions drawn uniformly: every value is as likely to be drawn, and
    one cache line read serves RUN of them. A ResNet-20's 49 samples of
    4,096 single values read 200,000 scattered cache lines a recorded step,
    which cost more than all its histograms (bench/histogram_kernel.py
    --samples). The positions are the same fractions of each layer's size,
    one draw for all layers: a layer's sample is no less uniform for it. A
    layer whose one example holds fewer than `count` values (a few small
    ones) is drawn by `sample`.
    """
    runs = count // RUN
    fractions = None
    drawn = []
    for index, values in enumerate(tensors):
        if not (_holds_at_least(values, count) and values.shape[1:].num_elements() % RUN == 0):
            drawn.append(sample(values, count, seed=(step, index + 1)))
            continue
        if fractions is None:
            fractions = tf.random.stateless_uniform([runs], tf.cast(tf.stack([step, 0]), tf.int64), dtype=tf.float64)
        lines = tf.reshape(values, [-1, RUN])
        size = tf.cast(tf.shape(lines, out_type=tf.int64)[0], tf.float64)
        # min(): a fraction just under 1 times a size must not round up to the size itself.
        positions = tf.cast(tf.minimum(tf.floor(fractions * size), size - 1), tf.int64)
        drawn.append(tf.reshape(tf.gather(lines, positions), [-1]))
    return drawn


def sample(values, count, seed):
    """All of `values` flattened if there are at most `count`, else `count` drawn uniformly.

    Drawn with replacement by a stateless generator, so recording leaves the
    training's random streams (and a resumed run's bitwise replay) alone.
    """
    flat = tf.reshape(values, [-1])
    size = tf.size(flat, out_type=tf.int64)
    seed_pair = tf.cast(tf.stack(seed), tf.int64)
    if _holds_at_least(values, count):
        # Known as the step is traced: no select, and a static length that spares the histogram its checks.
        return tf.gather(flat, tf.random.stateless_uniform([count], seed_pair, maxval=size, dtype=tf.int64))
    kept = tf.minimum(size, count)
    drawn = tf.random.stateless_uniform([kept], seed_pair, maxval=size, dtype=tf.int64)
    # A select rather than a tf.cond: a branch costs more than these few thousand draws.
    picks = tf.where(size > count, drawn, tf.range(kept))
    return tf.gather(flat, picks)


def _holds_at_least(values, count):
    """Whether one example's outputs alone number `count` or more (a batch holds one at least)."""
    per_example = values.shape[1:]
    return per_example.is_fully_defined() and per_example.num_elements() >= count


def dead_fraction(activation):
    """Fraction of channels (last axis) that are <= 0 for every example and position."""
    axes = list(range(len(activation.shape) - 1))
    # max <= 0 is all <= 0 in one pass, without a boolean copy of the batch.
    silent = tf.reduce_max(activation, axis=axes) <= 0
    return tf.reduce_mean(tf.cast(silent, tf.float32))
