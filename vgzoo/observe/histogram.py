"""An exact histogram summary built in the graph, several times cheaper than TensorFlow's op.

TensorFlow's `HistogramSummary` op places every value in its ~1,500
exponential buckets by binary search, about 25-50 ns a value; on a recorded
step of a ResNet-20 that was most of the cost. Here the buckets are
`BUCKETS` equal widths from the minimum to the maximum
(`tf.histogram_fixed_width`, one pass), and the proto is the same
`HistogramProto` that op writes, assembled by `tf.io.encode_proto`: count,
min, max, sum and sum of squares exact (summed in float64), so TensorBoard's
histogram and distribution tabs read it as they read the op's. About 3.5 ns
a value on 2 cores (`bench/overhead.py`'s recorded steps show it).
TensorBoard draws 30 bins in its histogram tab; 64 here keep the
distribution tab's percentiles finer than that.
"""
import tensorflow as tf

BUCKETS = 64

_STATISTICS = ("num", "min", "max", "sum", "sum_squares")


def summary_proto(tag, values):
    """A serialized `Summary` holding one `HistogramProto` of `values` (finite) under `tag`."""
    values = tf.cast(tf.reshape(values, [-1]), tf.float32)
    wide = tf.cast(values, tf.float64)
    present = tf.size(values) > 0
    low = tf.where(present, tf.reduce_min(values), 0)
    high = tf.where(present, tf.reduce_max(values), 0)
    # A single repeated value gets one bucket from it to it (TensorBoard shows a spike).
    top = tf.where(high > low, high, low + 1)
    counts = tf.histogram_fixed_width(values, tf.stack([low, top]), nbins=BUCKETS)
    low64, top64 = tf.cast(low, tf.float64), tf.cast(top, tf.float64)
    right_edges = low64 + (top64 - low64) * tf.range(1, BUCKETS + 1, dtype=tf.float64) / BUCKETS
    statistics = [
        tf.cast(tf.size(values), tf.float64), low64, tf.cast(high, tf.float64),
        tf.reduce_sum(wide), tf.reduce_sum(tf.square(wide)),
    ]
    fields = [tf.reshape(value, [1, 1]) for value in statistics]
    fields += [right_edges[None], tf.cast(counts, tf.float64)[None]]
    histogram = tf.io.encode_proto(
        tf.constant([[1] * len(_STATISTICS) + [BUCKETS, BUCKETS]], tf.int32),
        fields,
        list(_STATISTICS) + ["bucket_limit", "bucket"],
        "tensorflow.HistogramProto",
    )
    value = tf.io.encode_proto(
        tf.constant([[1, 1]], tf.int32), [tf.constant([[tag]]), histogram[None]], ["tag", "histo"],
        "tensorflow.Summary.Value",
    )
    return tf.io.encode_proto(tf.constant([[1]], tf.int32), [value[None]], ["value"], "tensorflow.Summary")[0]
