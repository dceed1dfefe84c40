"""Summary writers for gradients and weights, usable inside a compiled step.

Whole-model scalars: `global_grad_norm` (before any clipping) and
`vanishing_ratio`, log10 of the first layer's gradient norm over the last
layer's: about 0 when gradient reaches the input, very negative when it
vanishes, positive when it explodes toward the input.

Tags are grouped by kind, then layer, then variable
(`gradients/stage1_block1_conv1/kernel`, `grad_norm/03_stage1_block1_conv1`), so
TensorBoard's search and its histogram tabs line up across the runs of a pair;
per-layer scalars carry the layer's depth index (`vgzoo.observe.tags`), so
their cards sort input first.
"""
import struct

import numpy as np
import tensorflow as tf

from vgzoo import keras_internals
from vgzoo.observe import histogram, tags


def layer_of_path(path):
    """The layer part of a Keras variable path: `stem_conv/kernel` -> `stem_conv`."""
    return path.rsplit("/", 1)[0]


def layer_of(variable):
    return layer_of_path(variable.path)


def layers_in_order(variables):
    """Layer names in the order their variables appear (the model's depth order)."""
    return list(dict.fromkeys(layer_of(variable) for variable in variables))


# tf.summary's defaults write and sync the file every 10 events; a recorded
# step writes a hundred or more, and those syncs cost more than the summaries.
QUEUED_EVENTS = 10_000
FLUSH_MILLISECONDS = 10_000


def create_writer(folder):
    """A writer for a run's per-step summaries: on disk every 10 s and at each epoch's end.

    `writer.as_default()` flushes the writer as it exits, and inside a
    compiled step that is a flush (and an fsync) on every step; this
    writer's `flush` acts only when called eagerly, so a compiled step
    leaves the writing to the queue and its 10-second timer.
    """
    writer = tf.summary.create_file_writer(
        str(folder), max_queue=QUEUED_EVENTS, flush_millis=FLUSH_MILLISECONDS
    )
    return keras_internals.flush_only_when_eager(writer)


def when(record_now, write, skip):
    """`write()` on recorded steps, `skip()` on the others.

    A Python bool decides as the step is traced: the observed model traces a
    recorded and a quiet step, so a quiet step carries no branch at all. A
    tensor decides as the step runs, with `tf.cond`.
    """
    if isinstance(record_now, bool):
        return write() if record_now else skip()
    return tf.cond(record_now, write, skip)


def write_scalars(tagged_values, step):
    """Scalars as `tf.summary.scalar` writes them, but with the tags exactly as given, in one event.

    Each value is what `tf.summary.scalar` writes (a float32 scalar tensor
    with the scalars plugin's metadata), and TensorBoard reads them as it
    reads those. One `Summary` holds them all: a recorded ResNet-20 step
    writes about a hundred scalars, and a `tf.summary.write` each is a
    hundred event records. Meant for the inside of a `tf.cond` branch too:
    `tf.summary.scalar` would prefix the branch's name scope.
    """
    if not tagged_values:
        return
    tags, values = zip(*tagged_values)
    count = len(tags)
    tensors = tf.io.encode_proto(
        np.ones([count, 3], np.int32),
        [tf.fill([count, 1], _DT_FLOAT), tf.fill([count, 1], b""),  # a scalar's shape: no dimensions
         tf.stack([tf.cast(value, tf.float32) for value in values])[:, None]],
        ["dtype", "tensor_shape", "float_val"], "tensorflow.TensorProto",
    )
    summary_values = tf.io.encode_proto(
        np.ones([count, 3], np.int32),
        [tf.constant([[tag] for tag in tags]), tf.constant([[_scalar_metadata()]] * count), tensors[:, None]],
        ["tag", "metadata", "tensor"], "tensorflow.Summary.Value",
    )
    summary = tf.io.encode_proto(
        np.array([[count]], np.int32), [summary_values[None, :]], ["value"], "tensorflow.Summary"
    )[0]
    tf.summary.experimental.write_raw_pb(summary, step=step)


_DT_FLOAT = 1  # tensorflow.DataType.DT_FLOAT


def _scalar_metadata():
    from tensorboard.plugins.scalar import metadata

    return metadata.create_summary_metadata(display_name=None, description=None).SerializeToString()


def write_png(tag, png, step):
    """An image summary of PNG bytes as they are: what `tf.summary.image` writes, without decoding and re-encoding.

    TensorBoard's image plugin reads [width, height, PNG]; the size is read
    from the PNG's header. Re-encoding an epoch's picture took about 16 ms
    of the training process's time.
    """
    from tensorboard.plugins.image import metadata

    width, height = struct.unpack(">II", png[16:24])
    image_metadata = metadata.create_summary_metadata(display_name=None, description=None)
    tensor = tf.constant([str(width).encode(), str(height).encode(), png])
    return tf.summary.write(tag, tensor, step=step, metadata=image_metadata)


def write_histograms(tagged_values, step, statistics=None):
    """Exact histograms, one per (tag, values): count, min, max, sum and sum of squares kept.

    The statistics are stored next to the buckets (TensorBoard shows them in
    the histogram and distribution tabs), so a recorded histogram can be
    checked against the tensor it came from. Non-finite values have no
    bucket, so a group with any is skipped whole (the `grad_norm` scalars
    still show that step); one check for the group, as a branch per
    histogram costs more than a small histogram.
    """
    if not tagged_values:
        return tf.constant(False)
    tags, tensors = zip(*tagged_values)
    # The statistics tell whether all is finite, so the values are not read again to check.
    statistics = statistics or histogram.GroupStatistics(tensors)

    def write():
        tf.summary.experimental.write_raw_pb(histogram.encode(tags, statistics), step=step)
        return tf.constant(True)

    return tf.cond(statistics.finite(), write, lambda: tf.constant(False))


def histograms_and_norms(kind, variables, tensors, step, histogram_layers):
    """Writes `kind`'s histograms; returns the per-layer L2 norms of `tensors`, by layer.

    When every variable is histogrammed, the norms come from the histograms'
    float64 sums of squares, so the tensors are not read once more for them.
    """
    tagged = by_variable(kind, variables, tensors, histogram_layers)
    if len(tagged) < len(variables):
        write_histograms(tagged, step)
        return layer_norms(variables, tensors)
    statistics = histogram.GroupStatistics(tensors)
    write_histograms(tagged, step, statistics)
    return norms_from_squares(variables, statistics.table[:, histogram.SUM_SQUARES])


def norms_from_squares(variables, squares):
    """Per-layer L2 norms (float32) from each variable's sum of squares, in one segment sum."""
    layers = layers_in_order(variables)
    segment = [layers.index(layer_of(variable)) for variable in variables]
    norms = tf.cast(tf.sqrt(tf.math.unsorted_segment_sum(squares, segment, len(layers))), tf.float32)
    return dict(zip(layers, tf.unstack(norms, num=len(layers))))


def layer_norms(variables, tensors):
    """L2 norm of `tensors` (one per variable) grouped by layer, in depth order."""
    halves = {}
    for variable, tensor in zip(variables, tensors):
        # l2_loss is sum(x^2)/2 in one op and one pass, without a squared copy.
        halves.setdefault(layer_of(variable), []).append(tf.nn.l2_loss(tf.cast(tensor, tf.float32)))
    return {layer: tf.sqrt(2.0 * tf.add_n(parts)) for layer, parts in halves.items()}


def in_layers(variable, histogram_layers):
    """Whether a variable's top-level layer is among `histogram_layers` (None: all).

    A functional model's variables are `<layer>/...`; a Sequential or
    subclassed model builds its layers inside its own name, `<model>/<layer>/...`.
    """
    if histogram_layers is None:
        return True
    parts = variable.path.split("/")
    return parts[0] in histogram_layers or (len(parts) > 2 and parts[1] in histogram_layers)


def by_variable(kind, variables, tensors, histogram_layers):
    """`(kind/<variable path>, tensor)` for the variables of `histogram_layers`."""
    return [
        (f"{kind}/{variable.path}", tensor)
        for variable, tensor in zip(variables, tensors) if in_layers(variable, histogram_layers)
    ]


def record_gradients(variables, gradients, step, record_now, histogram_layers=None):
    """When `record_now`: a histogram per variable (of `histogram_layers`) and an L2 norm per layer.

    Everything is computed and written inside one branch (`when`), so steps
    that are not recorded pay for at most a single `tf.cond`. Returns the norms by layer (zero
    on steps not recorded) and the mean |gradient| of each layer in depth order.
    """
    present = [(v, g) for v, g in zip(variables, gradients) if g is not None]

    order = layers_in_order(v for v, _ in present)
    # Numbered over every layer, so a layer keeps its index (and tag) when another gets no gradient.
    norm_tags = tags.layer_tags("grad_norm", layers_in_order(variables))

    def write_and_measure():
        variables, tensors = [v for v, _ in present], [g for _, g in present]
        norms = histograms_and_norms("gradients", variables, tensors, step, histogram_layers)
        mean_abs = layer_mean_abs(variables, tensors)
        write_scalars(
            [(norm_tags[layer], norm) for layer, norm in norms.items()]
            + [("global_grad_norm", global_norm(norms.values())),
               ("vanishing_ratio", log10_ratio(norms[order[0]], norms[order[-1]]))],
            step,
        )
        return norms, tf.stack([mean_abs[layer] for layer in order])

    def skip():
        return {layer: tf.constant(0.0) for layer in order}, tf.zeros([len(order)])

    return when(record_now, write_and_measure, skip)


def layer_mean_abs(variables, tensors):
    """Mean |value| over all of a layer's variables, by layer."""
    sums, counts = {}, {}
    for variable, tensor in zip(variables, tensors):
        layer = layer_of(variable)
        total = tf.reduce_sum(tf.abs(tf.cast(tensor, tf.float32)))
        sums[layer] = sums[layer] + total if layer in sums else total
        counts[layer] = counts.get(layer, 0) + int(np.prod(variable.shape))
    return {layer: sums[layer] / counts[layer] for layer in sums}


def global_norm(layer_norms_):
    return tf.sqrt(tf.add_n([tf.square(norm) for norm in layer_norms_]))


def log10_ratio(numerator, denominator):
    """log10(numerator / denominator), finite for zero gradients (clamped at 1e-30)."""
    tiny = tf.constant(1e-30, tf.float32)
    numerator = tf.maximum(tf.cast(numerator, tf.float32), tiny)
    denominator = tf.maximum(tf.cast(denominator, tf.float32), tiny)
    return (tf.math.log(numerator) - tf.math.log(denominator)) / tf.math.log(10.0)


def record_weights(variables, values, step, record_now, histogram_layers=None):
    """When `record_now`: a histogram per variable (of `histogram_layers`) of `values`; their norms by layer.

    `values` are the weights the step's gradients were taken at (the
    update-ratio snapshot), so a step's weight and gradient histograms
    describe the same point of training. The norms (zeros on steps not
    recorded) are the update ratios' denominators.
    """
    layers = layers_in_order(variables)
    return when(
        record_now, lambda: histograms_and_norms("weights", variables, values, step, histogram_layers),
        lambda: {layer: tf.constant(0.0) for layer in layers},
    )
