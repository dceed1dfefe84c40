"""One group's histograms: the segment-op kernel against one chain of ops per tensor.

Times the statistics, edges and counts `histogram.summary_proto` encodes,
computed by the observer's kernel (one `tf.histogram_fixed_width` chain per
tensor) and by a candidate (segment ops over the tensors concatenated),
compiled, on a model's trainable variables (what a recorded step
histograms as weights; its gradients have the same shapes); the two take
turns, medians printed. It also checks that the two give the same buckets
and edges.

    python bench/histogram_kernel.py --model resnet20
    python bench/histogram_kernel.py --ops        # each op of a histogram, on one large tensor
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import vgzoo  # noqa: E402
from vgzoo.observe import histogram  # noqa: E402

BUCKETS = histogram.BUCKETS


def segment_kernel(tensors):
    """The candidate: a group's statistics, edges and counts from segment ops over the concatenation.

    Each value's bucket is computed as `tf.histogram_fixed_width`'s kernel
    computes it ((v - low) in float32 over a float64 step, clipped), in its
    own tensor's range, so the counts equal the per-tensor kernel's.
    """
    flat = [tf.reshape(tf.cast(tensor, tf.float32), [-1]) for tensor in tensors]
    groups = len(flat)
    sizes = tf.stack([tf.size(values) for values in flat])
    values = tf.concat(flat, 0)
    segments = tf.repeat(tf.range(groups), sizes)
    present = sizes > 0
    low = tf.where(present, tf.math.unsorted_segment_min(values, segments, groups), 0.0)
    high = tf.where(present, tf.math.unsorted_segment_max(values, segments, groups), 0.0)
    top = tf.where(high > low, high, low + 1.0)
    value_low, value_top = tf.gather(low, segments), tf.gather(top, segments)
    step = tf.cast(value_top - value_low, tf.float64) / BUCKETS
    bucket = tf.cast(tf.minimum(tf.cast(tf.maximum(values, value_low) - value_low, tf.float64) / step,
                                BUCKETS - 1.0), tf.int32)
    counts = tf.math.bincount(segments * BUCKETS + bucket, minlength=groups * BUCKETS,
                              maxlength=groups * BUCKETS, dtype=tf.float64)
    low64, top64, wide = tf.cast(low, tf.float64), tf.cast(top, tf.float64), tf.cast(values, tf.float64)
    right_edges = low64[:, None] + (top64 - low64)[:, None] * tf.range(1, BUCKETS + 1, dtype=tf.float64) / BUCKETS
    statistics_ = tf.stack([
        low64, tf.cast(high, tf.float64), tf.cast(sizes, tf.float64),
        tf.math.unsorted_segment_sum(wide, segments, groups),
        tf.math.unsorted_segment_sum(tf.square(wide), segments, groups),
    ], axis=1)
    return statistics_, right_edges, tf.reshape(counts, [groups, BUCKETS])


def per_tensor_group(tensors):
    """What `histogram.summary_proto` encodes: one chain of ops per tensor, stacked."""
    group = histogram.GroupStatistics(tensors)
    return [group.table, *group.buckets()]


def time_ops(size=294_912, calls=200):
    """Milliseconds per call of each op a histogram runs, on `size` values, less an empty function's."""
    values = tf.constant(np.random.default_rng(0).standard_normal(size).astype(np.float32))
    wide = tf.cast(values, tf.float64)
    ops = {
        "empty function": lambda: tf.constant(0.0),
        "min and max": lambda: (tf.reduce_min(values), tf.reduce_max(values)),
        "histogram_fixed_width": lambda: tf.histogram_fixed_width(values, [-5.0, 5.0], BUCKETS),
        "float64 cast and sum": lambda: tf.reduce_sum(tf.cast(values, tf.float64)),
        "float64 sum of squares": lambda: tf.reduce_sum(tf.square(wide)),
        "float64 dot product": lambda: tf.tensordot(wide, wide, 1),
        "l2_loss (float32)": lambda: tf.nn.l2_loss(values),
    }
    measured = {}
    for label, op in ops.items():
        compiled = tf.function(op)
        compiled()
        start = time.perf_counter()
        for _ in range(calls):
            compiled()
        measured[label] = 1000 * (time.perf_counter() - start) / calls
    print(f"{size} values, {calls} calls each, ms a call less the empty function's "
          f"({measured['empty function']:.3f} ms):")
    for label, milliseconds in measured.items():
        if label != "empty function":
            print(f"  {label:<24}{milliseconds - measured['empty function']:8.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--ops", action="store_true", help="time each op of a histogram instead")
    args = parser.parse_args()
    if args.ops:
        return time_ops()
    model = vgzoo.create_model(args.model, (32, 32, 3), 10) if args.model == "resnet20" else \
        vgzoo.create_model(args.model, (100, 2), 1, head="value", width=128)
    tensors = [tf.constant(np.asarray(v.numpy()) + np.float32(1e-3)) for v in model.trainable_variables]
    segment = tf.function(lambda: segment_kernel(tensors))
    chains = tf.function(lambda: per_tensor_group(tensors))
    a, b = segment(), chains()
    same = [np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b)]
    print(f"{args.model}: {len(tensors)} tensors, {sum(int(np.prod(t.shape)) for t in tensors)} values; "
          f"identical statistics, edges, counts: {same} (statistics max |diff| "
          f"{np.abs(a[0].numpy() - b[0].numpy()).max():.1e})")
    times = {"segment": [], "per-tensor": []}
    for turn in range(args.turns):
        for label, run in (("segment", segment), ("per-tensor", chains))[:: 1 if turn % 2 else -1]:
            start = time.perf_counter()
            for _ in range(5):
                [t.numpy() for t in run()]
            times[label].append((time.perf_counter() - start) / 5)
    for label, values in times.items():
        quartiles = statistics.quantiles(values, n=4)
        print(f"  {label:<11}{1000 * statistics.median(values):8.2f} ms  (IQR {1000 * (quartiles[2] - quartiles[0]):.2f})")


if __name__ == "__main__":
    main()
