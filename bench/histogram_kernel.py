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
    python bench/histogram_kernel.py --samples    # activation samples: single values or runs, draws a layer or one
    python bench/histogram_kernel.py --xla        # the per-tensor chain compiled by XLA: run and compile time
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


def bucket_of(values, low, top):
    """Each value's bucket as `tf.histogram_fixed_width`'s kernel finds it: (v - low) in float32 over a float64 width."""
    width = tf.cast(top - low, tf.float64) / BUCKETS
    return tf.cast(tf.minimum(tf.cast(tf.maximum(values, low) - low, tf.float64) / width, BUCKETS - 1.0), tf.int32)


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
    bucket = bucket_of(values, value_low, value_top)
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
        "float64 l2_loss (vgzoo)": lambda: tf.nn.l2_loss(wide),
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


def _milliseconds(functions, calls=20, turns=10):
    """Median ms a call of each compiled function, the functions taking turns."""
    for function in functions.values():
        function()
    times = {label: [] for label in functions}
    for _ in range(turns):
        for label, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                function()
            times[label].append(1000 * (time.perf_counter() - start) / calls)
    return {label: statistics.median(values) for label, values in times.items()}


def time_samples(layers=49, shape=(16, 32, 32, 16)):
    """Activation samples of `layers` outputs of `shape`: a draw and a seed a layer, or shared fractions."""
    from vgzoo.observe import activations

    random = np.random.default_rng(0)
    outputs = [tf.Variable(random.standard_normal(shape).astype(np.float32)) for _ in range(layers)]
    step = tf.Variable(3, dtype=tf.int64)
    count = activations.SAMPLED_VALUES
    def single_values_shared_draw():
        fractions = tf.random.stateless_uniform([count], tf.cast(tf.stack([step, 0]), tf.int64), dtype=tf.float64)
        positions = tf.cast(tf.floor(fractions * float(np.prod(shape))), tf.int64)
        return [tf.gather(tf.reshape(output.value(), [-1]), positions) for output in outputs]

    measured = _milliseconds({
        "empty function": tf.function(lambda: tf.constant(0)),
        "single values, a draw a layer": tf.function(lambda: [
            activations.sample(output.value(), count, seed=(step, index)) for index, output in enumerate(outputs)]),
        "the draws alone": tf.function(lambda: tf.random.stateless_uniform(
            [layers, count], tf.cast(tf.stack([step, 0]), tf.int64), dtype=tf.float64)),
        "single values, one draw": tf.function(single_values_shared_draw),
        f"runs of {activations.RUN}, one draw (vgzoo)": tf.function(
            lambda: activations.samples([output.value() for output in outputs], count, step)),
    })
    empty = measured.pop("empty function")
    print(f"{layers} layers of {shape}, {count} values each, ms a call less the empty function's ({empty:.3f} ms):")
    for label, milliseconds in measured.items():
        print(f"  {label:<32}{milliseconds - empty:8.3f}")


def time_xla(model_name="resnet20"):
    """The per-tensor statistics and counts compiled by XLA: the first call (compilation) and later ones."""
    model = vgzoo.create_model(model_name, (32, 32, 3), 10)
    variables = model.trainable_variables

    def chains(tensors):
        group = histogram.GroupStatistics(tensors)
        low, top = group.low, tf.where(group.high > group.low, group.high, group.low + 1.0)
        counts = []
        for values, value_low, value_top in zip(group.values, tf.unstack(low), tf.unstack(top)):
            # XLA has no kernel for tf.histogram_fixed_width: its bucket formula, counted by bincount.
            counts.append(tf.math.bincount(bucket_of(values, value_low, value_top), minlength=BUCKETS,
                                           maxlength=BUCKETS))
        return group.table, tf.stack(counts)

    compiled = tf.function(chains, jit_compile=True)
    with_xla = tf.function(lambda: compiled([variable.value for variable in variables]))
    without = tf.function(lambda: chains([variable.value for variable in variables]))
    start = time.perf_counter()
    with_xla()
    first = time.perf_counter() - start
    measured = _milliseconds({"without XLA": without, "XLA": with_xla})
    print(f"{model_name}: {len(variables)} tensors; XLA's first call (compiling) {first:.2f} s; "
          + ", ".join(f"{label} {milliseconds:.3f} ms a call" for label, milliseconds in measured.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--ops", action="store_true", help="time each op of a histogram instead")
    parser.add_argument("--samples", action="store_true", help="time the activation samples instead")
    parser.add_argument("--xla", action="store_true", help="time the per-tensor chain compiled by XLA instead")
    args = parser.parse_args()
    if args.ops:
        return time_ops()
    if args.samples:
        return time_samples()
    if args.xla:
        return time_xla(args.model)
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
