"""Summary writers for gradients and weights, usable inside a compiled step.

Tags are grouped by kind, then layer, then variable
(`gradients/stage1_block1_conv1/kernel`, `grad_norm/stage1_block1_conv1`), so
TensorBoard's search and its histogram tabs line up across the runs of a pair.
"""
import tensorflow as tf


def layer_of(variable):
    """The layer part of a Keras variable path: `stem_conv/kernel` -> `stem_conv`."""
    return variable.path.rsplit("/", 1)[0]


def layers_in_order(variables):
    """Layer names in the order their variables appear (the model's depth order)."""
    return list(dict.fromkeys(layer_of(variable) for variable in variables))


def write_histogram(tag, values, step):
    """An exact histogram: count, min, max, sum and sum of squares are kept.

    TensorFlow's `HistogramSummary` op stores those statistics next to the
    buckets (TensorBoard shows it in the histogram and distribution tabs), so
    a recorded histogram can be checked against the tensor it came from. It
    rejects non-finite values; those steps are skipped and show up in the
    `grad_norm` scalars instead.
    """
    values = tf.reshape(values, [-1])

    def write():
        serialized = tf.raw_ops.HistogramSummary(tag=tag, values=values)
        return tf.summary.experimental.write_raw_pb(serialized, step=step)

    return tf.cond(
        tf.reduce_all(tf.math.is_finite(values)), write, lambda: tf.constant(False)
    )


def layer_norms(variables, tensors):
    """L2 norm of `tensors` (one per variable) grouped by layer, in depth order."""
    squares = {}
    for variable, tensor in zip(variables, tensors):
        total = tf.reduce_sum(tf.square(tf.cast(tensor, tf.float32)))
        layer = layer_of(variable)
        squares[layer] = squares[layer] + total if layer in squares else total
    return {layer: tf.sqrt(total) for layer, total in squares.items()}


def record_gradients(variables, gradients, step, record_now):
    """When `record_now`: a histogram per variable and an L2 norm per layer.

    Histograms and norms are computed inside the branch, so steps that are
    not recorded pay nothing; the norm scalars are written outside it to keep
    their tags free of the branch's name scope. Returns the norms by layer.
    """
    present = [(v, g) for v, g in zip(variables, gradients) if g is not None]

    def write_and_measure():
        for variable, gradient in present:
            write_histogram(f"gradients/{variable.path}", gradient, step)
        return layer_norms([v for v, _ in present], [g for _, g in present])

    def skip():
        return {layer: tf.constant(0.0) for layer in layers_in_order(v for v, _ in present)}

    norms = tf.cond(record_now, write_and_measure, skip)
    with tf.summary.record_if(record_now):
        for layer, norm in norms.items():
            tf.summary.scalar(f"grad_norm/{layer}", norm, step=step)
    return norms


def write_weights(variables, step):
    for variable in variables:
        write_histogram(f"weights/{variable.path}", variable, step)
