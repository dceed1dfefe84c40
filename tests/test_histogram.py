"""The in-graph histogram: TensorBoard reads it back with the statistics and buckets of the data."""
import dataclasses

import numpy as np
import tensorflow as tf
from tensorboard import data_compat
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import histogram_pb2, summary_pb2
from tensorboard.util import tensor_util

from vgzoo.observe import histogram, summaries


def write_and_read(folder, tagged_values, step=3):
    writer = tf.summary.create_file_writer(str(folder))

    @tf.function
    def write():
        with writer.as_default(step=step):
            return summaries.write_histograms(tagged_values, tf.constant(step, tf.int64))

    written = bool(write())
    writer.close()
    events = EventAccumulator(str(folder), size_guidance={"histograms": 0})
    events.Reload()
    return written, events


def tensorboard_buckets(histogram_value, tag="t"):
    """[left, right, count] rows, as TensorBoard's histogram and distribution tabs get them."""
    proto = histogram_pb2.HistogramProto(**dataclasses.asdict(histogram_value))
    value = summary_pb2.Summary.Value(tag=tag, histo=proto)
    return tensor_util.make_ndarray(data_compat.migrate_value(value).tensor)


def test_statistics_and_buckets_match_numpy(tmp_path):
    values = np.random.default_rng(0).standard_normal(10_000).astype(np.float32) * 3 + 1
    written, events = write_and_read(tmp_path, [("gradients/dense/kernel", tf.constant(values))])
    assert written
    [event] = events.Histograms("gradients/dense/kernel")
    assert event.step == 3
    recorded = event.histogram_value
    wide = values.astype(np.float64)
    assert recorded.num == values.size
    assert (recorded.min, recorded.max) == (wide.min(), wide.max())
    np.testing.assert_allclose(recorded.sum, wide.sum(), rtol=1e-9)
    np.testing.assert_allclose(recorded.sum_squares, np.square(wide).sum(), rtol=1e-9)
    expected_counts, expected_edges = np.histogram(wide, bins=histogram.BUCKETS, range=(wide.min(), wide.max()))
    np.testing.assert_allclose(recorded.bucket_limit, expected_edges[1:], rtol=1e-6)
    # Only a value that falls on an edge may land in the other bucket (float32 against float64).
    assert np.abs(np.array(recorded.bucket) - expected_counts).sum() <= 2
    assert sum(recorded.bucket) == values.size

    buckets = tensorboard_buckets(recorded)
    assert buckets[0, 0] == wide.min() and buckets[-1, 1] == wide.max()
    assert buckets[:, 2].sum() == values.size


def test_a_single_repeated_value_is_one_spike(tmp_path):
    written, events = write_and_read(tmp_path, [("activations/relu", tf.fill([7, 3], 2.5))])
    assert written
    recorded = events.Histograms("activations/relu")[0].histogram_value
    assert (recorded.num, recorded.min, recorded.max, recorded.sum) == (21, 2.5, 2.5, 52.5)
    np.testing.assert_array_equal(tensorboard_buckets(recorded), [[2.5, 2.5, 21]])


def test_a_group_with_a_non_finite_value_is_skipped_whole(tmp_path):
    group = [("gradients/a", tf.constant([1.0, 2.0])), ("gradients/b", tf.constant([np.nan, 1.0]))]
    written, events = write_and_read(tmp_path, group)
    assert not written
    assert events.Tags()["histograms"] == []


def test_one_summary_holds_a_group_of_tensorflow_histogram_protos():
    tensors = [tf.constant([[-1.0, 0.0], [0.5, 3.0]]), tf.range(5), tf.zeros([0])]
    serialized = histogram.summary_proto(["weights/w", "weights/b", "weights/empty"], tensors)
    first, second, empty = summary_pb2.Summary.FromString(serialized.numpy()).value
    assert (first.tag, second.tag, empty.tag) == ("weights/w", "weights/b", "weights/empty")
    assert first.histo.num == 4 and first.histo.sum_squares == 1 + 0.25 + 9
    assert len(first.histo.bucket) == len(first.histo.bucket_limit) == histogram.BUCKETS
    assert first.histo.bucket_limit[-1] == 3.0 and first.histo.bucket[0] == 1 and first.histo.bucket[-1] == 1
    assert (second.histo.min, second.histo.max, second.histo.sum) == (0, 4, 10)
    assert sum(second.histo.bucket) == 5 and second.histo.bucket[-1] == 1
    assert empty.histo.num == 0 and sum(empty.histo.bucket) == 0
