"""Exact histogram summaries built in the graph, several times cheaper than TensorFlow's op.

TensorFlow's `HistogramSummary` op places every value in its ~1,500
exponential buckets by binary search, about 25-50 ns a value; on a recorded
step of a ResNet-20 that was most of the cost. Here each tensor gets
`BUCKETS` equal widths from its minimum to its maximum
(`tf.histogram_fixed_width`, one pass), and the proto is the same
`HistogramProto` that op writes: count, min, max, sum and sum of squares
exact (summed in float64), so TensorBoard's histogram and distribution tabs
read it as they read the op's. TensorBoard draws 30 bins in its histogram
tab; 64 here keep the distribution tab's percentiles finer than that.

The statistics are computed tensor by tensor (TensorFlow's reductions beat
segment reductions over a concatenation several times on CPU, see
docs/profile.md), with no more ops a tensor than the reductions need: a
recorded ResNet-20 step histograms about 170 tensors, most of them a few
dozen values, and there each op's dispatch costs more than its arithmetic.
Everything that can be done for the group at once (the float64 table, the
edges, the counts' cast, the finiteness check) is, and a group's protos are
encoded together into one `Summary`: three `tf.io.encode_proto` ops per
tensor made tracing a recorded step with every layer's histograms twice as
slow.
"""
import numpy as np
import tensorflow as tf

BUCKETS = 64

_STATISTICS = ("min", "max", "num", "sum", "sum_squares")
SUM_SQUARES = _STATISTICS.index("sum_squares")


class GroupStatistics:
    """A group's flattened tensors and their [min, max, num, sum, sum of squares] rows (float64)."""

    def __init__(self, tensors):
        self.values = [tf.reshape(tf.cast(tensor, tf.float32), [-1]) for tensor in tensors]
        lows, highs, sums, half_squares = [], [], [], []
        for values in self.values:
            low, high = tf.reduce_min(values), tf.reduce_max(values)
            if values.shape[0] is None or values.shape[0] == 0:
                # An empty tensor's min and max are +-inf; it gets the range [0, 1].
                present = tf.size(values) > 0
                low, high = tf.where(present, low, 0.0), tf.where(present, high, 0.0)
            wide = tf.cast(values, tf.float64)
            lows.append(low)
            highs.append(high)
            sums.append(tf.reduce_sum(wide))
            # Half the sum of squares in one pass, without a squared copy; doubled
            # once for the group below. Halving a float32's square in float64 is exact.
            half_squares.append(tf.nn.l2_loss(wide))
        self.low, self.high = tf.stack(lows), tf.stack(highs)
        self.table = tf.stack(
            [tf.cast(self.low, tf.float64), tf.cast(self.high, tf.float64), _sizes(self.values),
             tf.stack(sums), 2.0 * tf.stack(half_squares)],
            axis=1,
        )

    def finite(self):
        """Whether every value is finite: a float32's square summed in float64 cannot overflow."""
        return tf.reduce_all(tf.math.is_finite(self.table[:, SUM_SQUARES]))

    def buckets(self):
        """The buckets' right edges and counts, [tensors, BUCKETS] each (float64); finite values only."""
        # A single repeated value gets one bucket from it to it (TensorBoard shows a spike).
        top = tf.where(self.high > self.low, self.high, self.low + 1.0)
        ranges = tf.unstack(tf.stack([self.low, top], axis=1))
        counts = tf.stack([
            tf.histogram_fixed_width(values, value_range, nbins=BUCKETS)
            for values, value_range in zip(self.values, ranges)
        ])
        low64, top64 = tf.cast(self.low, tf.float64)[:, None], tf.cast(top, tf.float64)[:, None]
        fractions = np.arange(1, BUCKETS + 1, dtype=np.float64)[None, :] / BUCKETS
        return low64 + (top64 - low64) * fractions, tf.cast(counts, tf.float64)


def _sizes(values):
    static = [flat.shape[0] for flat in values]
    if None not in static:
        return tf.constant(static, tf.float64)
    return tf.cast(tf.stack([tf.size(flat) for flat in values]), tf.float64)


def encode(tags, statistics):
    """A serialized `Summary` with one `HistogramProto` per tag; `statistics` of finite values."""
    right_edges, counts = statistics.buckets()
    fields = tf.split(statistics.table, len(_STATISTICS), axis=1) + [right_edges, counts]
    sizes = np.array([[1] * len(_STATISTICS) + [BUCKETS, BUCKETS]] * len(tags), np.int32)
    histograms = tf.io.encode_proto(
        sizes, fields, list(_STATISTICS) + ["bucket_limit", "bucket"], "tensorflow.HistogramProto"
    )
    values = tf.io.encode_proto(
        np.ones([len(tags), 2], np.int32), [tf.constant([[tag] for tag in tags]), histograms[:, None]],
        ["tag", "histo"], "tensorflow.Summary.Value",
    )
    return tf.io.encode_proto(
        np.array([[len(tags)]], np.int32), [values[None, :]], ["value"], "tensorflow.Summary"
    )[0]


def summary_proto(tags, tensors):
    """A serialized `Summary` with one `HistogramProto` per tag, of the matching tensor (finite)."""
    return encode(tags, GroupStatistics(tensors))
