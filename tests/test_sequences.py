"""Sequence tasks: what each generator promises, the splits, the pipelines."""
import dataclasses
import hashlib
import json
import math
import time

import numpy as np
import pytest

import vgzoo
from vgzoo.data import sequences


def test_adding_targets_are_the_sum_of_the_two_marked_values():
    x, y = sequences.generate("adding", 500, 31, seed=1)
    assert x.shape == (500, 31, 2) and y.shape == (500, 1)
    assert x.dtype == y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert set(np.unique(markers)) == {0.0, 1.0}
    half = 31 // 2
    assert np.all(markers[:, :half].sum(axis=1) == 1) and np.all(markers[:, half:].sum(axis=1) == 1)
    np.testing.assert_array_equal(y[:, 0], np.sum(values * markers, axis=1))


def test_copy_repeats_the_ten_symbols_after_the_delimiter():
    seq_len = 15
    x, y = sequences.generate("copy", 200, seq_len, seed=2)
    length = seq_len + 20
    assert x.shape == (200, length, 10) and y.shape == (200, length)
    assert np.all(x.sum(axis=-1) == 1)  # one-hot
    tokens = x.argmax(axis=-1)
    symbols = tokens[:, :10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    delimiter_at = seq_len + 9
    assert np.all(tokens[:, delimiter_at] == 9)
    blanks = np.delete(np.arange(length), list(range(10)) + [delimiter_at])
    assert np.all(tokens[:, blanks] == 0)
    np.testing.assert_array_equal(y[:, -10:], symbols)
    assert np.all(y[:, :-10] == 0)


@pytest.mark.parametrize("task", sequences.SYNTHETIC_TASKS)
def test_generation_is_deterministic_and_independent_of_how_much_is_asked(task):
    x, y = sequences.generate(task, 300, 12, seed=7)
    again_x, again_y = sequences.generate(task, 300, 12, seed=7)
    np.testing.assert_array_equal(x, again_x)
    np.testing.assert_array_equal(y, again_y)
    first_x, _ = sequences.generate(task, 100, 12, seed=7)
    np.testing.assert_array_equal(first_x, x[:100])
    other_x, _ = sequences.generate(task, 300, 12, seed=8)
    assert not np.array_equal(x, other_x)


def _row_hashes(x):
    return {hashlib.sha1(row.tobytes()).hexdigest() for row in x}


@pytest.mark.parametrize("task", sequences.SYNTHETIC_TASKS)
def test_train_validation_and_test_share_no_example(task):
    splits = {split: sequences.generate(task, 600, 2, seed=0, split=split)[0]
              for split in ("train", "validation", "test")}
    hashes = {split: _row_hashes(x) for split, x in splits.items()}
    assert not hashes["train"] & hashes["validation"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["validation"] & hashes["test"]


def test_baselines():
    assert sequences.baseline("adding", 200) == pytest.approx(1 / 6)
    _, y = sequences.generate("adding", 20000, 10, seed=0)
    assert np.mean((y - 1) ** 2) == pytest.approx(1 / 6, abs=0.01)
    assert sequences.baseline("copy", 100) == pytest.approx(10 * math.log(8) / 120)
    assert sequences.baseline("seqmnist") == sequences.baseline("pmnist") == 0.1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sequences.generate("adding", 10, None), "needs seq_len"),
        (lambda: sequences.generate("copy", 10, 1), "seq_len must be an integer >= 2"),
        (lambda: sequences.generate("seqmnist", 10, 784), "use mnist_sequences"),
        (lambda: sequences.make_sequence_datasets("pmnist", seq_len=100), "leave seq_len unset"),
        (lambda: sequences.make_sequence_datasets("adds", seq_len=100), "Did you mean 'adding'"),
        (lambda: sequences.make_sequence_datasets("copy", seq_len=10, batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments_are_one_line_errors(call, message):
    with pytest.raises(vgzoo.VgzooError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_adding_stream_batches_and_speed():
    train_ds, val_ds, info = sequences.make_sequence_datasets("adding", seq_len=200, seed=3)
    assert info.input_shape == (200, 2) and info.head == "value" and info.loss == "mse"
    assert info.train_size is None and info.val_size == 1000
    json.dumps(dataclasses.asdict(info))  # runs save it in their config
    assert int(train_ds.cardinality()) == -1  # tf.data.INFINITE_CARDINALITY
    batches = iter(train_ds)
    x, y = next(batches)
    assert tuple(x.shape) == (128, 200, 2) and tuple(y.shape) == (128, 1)
    first_x, _ = sequences.generate("adding", 128, 200, seed=3)
    np.testing.assert_array_equal(x.numpy(), first_x)
    start, count = time.perf_counter(), 0
    for _ in range(50):
        count += len(next(batches)[0])
    assert count / (time.perf_counter() - start) > 2000
    val_x, val_y = next(iter(val_ds))
    assert tuple(val_x.shape) == (128, 200, 2) and tuple(val_y.shape) == (128, 1)


def test_copy_fixed_train_set_and_test_set():
    train_ds, val_ds, info = sequences.make_sequence_datasets(
        "copy", seq_len=20, batch_size=32, train_size=100, validation_size=0
    )
    assert val_ds is None and info.train_size == 100 and info.input_shape == (40, 10)
    assert info.num_classes == 10 and info.head == "per_step"
    sizes = [len(x) for x, _ in train_ds]
    assert sizes == [32, 32, 32, 4]
    x, y = next(iter(train_ds))
    assert tuple(x.shape) == (32, 40, 10) and tuple(y.shape) == (32, 40)
    test_ds = sequences.make_sequence_test_dataset("copy", seq_len=20, test_size=50)
    assert sum(len(x) for x, _ in test_ds) == 50


def test_mnist_sequences_read_pixels_in_order_and_permuted(mnist_data_dir):
    x, y = sequences.mnist_sequences("seqmnist", "test")
    assert x.shape == (10000, 784, 1) and x.dtype == np.float32
    assert x.min() == 0 and x.max() == 1
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))
    images, labels = vgzoo.data.load_arrays("mnist", "test")
    np.testing.assert_array_equal(x[:5, :, 0], images[:5].reshape(5, 784) / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    permutation = sequences.pmnist_permutation()
    np.testing.assert_array_equal(permutation, sequences.pmnist_permutation())
    np.testing.assert_array_equal(np.sort(permutation), np.arange(784))
    assert not np.array_equal(permutation, np.arange(784))
    permuted, _ = sequences.mnist_sequences("pmnist", "test")
    np.testing.assert_array_equal(permuted, x[:, permutation])


def test_pmnist_datasets_split_the_source(mnist_data_dir):
    with pytest.warns(UserWarning, match="test split"):
        train_ds, val_ds, info = sequences.make_sequence_datasets(
            "pmnist", source_split="test", limit=1000, validation_split=0.2, batch_size=100
        )
    assert (info.train_size, info.val_size, info.input_shape) == (800, 200, (784, 1))
    assert info.num_classes == 10 and info.head == "classes" and info.seq_len == 784
    x, y = next(iter(train_ds))
    assert tuple(x.shape) == (100, 784, 1) and x.dtype.name == "float32"
    assert float(np.max(x)) <= 1.0 and tuple(y.shape) == (100,)
    assert sum(len(x) for x, _ in val_ds) == 200
