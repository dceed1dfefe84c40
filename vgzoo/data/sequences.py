"""Sequence tasks that need memory across many timesteps.

- `adding`: Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997 (problem
  4), in the form of Le, Jaitly & Hinton, "A Simple Way to Initialize
  Recurrent Networks of Rectified Linear Units", 2015: two channels, values
  in [0, 1) and a marker with one 1 in each half; the target is the sum of
  the two marked values. Predicting 1 always scores MSE 1/6.
- `copy`: Arjovsky, Shah & Bengio, "Unitary Evolution Recurrent Neural
  Networks", ICML 2016: remember 10 symbols over T blanks, then repeat
  them after a delimiter. Blanks, then uniform guesses over the 8 symbols,
  score 10 ln 8 / (T + 20).
- `seqmnist` / `pmnist`: Le et al. 2015: MNIST read one pixel at a time
  (784 steps), in order or in one fixed random permutation.

The generators are numpy only, deterministic for a seed, and chunked so that
a split's first n examples do not depend on the batch size: chunk i of a
split comes from `SeedSequence(seed, spawn_key=(split, i))`, which keeps the
train stream, validation and test independent. The tf.data functions import
TensorFlow when called.

    train_ds, val_ds, info = make_sequence_datasets("adding", seq_len=200)
"""
import math
import numbers
import warnings

import numpy as np

from vgzoo.data.tasks import DataInfo
from vgzoo.errors import VgzooError, unknown_choice

SEQUENCE_TASKS = ("adding", "copy", "seqmnist", "pmnist")
SYNTHETIC_TASKS = ("adding", "copy")
MNIST_TASKS = ("seqmnist", "pmnist")
SPLIT_INDEX = {"train": 0, "validation": 1, "test": 2}
CHUNK_SIZE = 256  # examples drawn per seed; streams are made of these chunks

COPY_SYMBOLS = 10  # how many symbols to remember
COPY_VOCABULARY = 10  # 0 blank, 1..8 symbols, 9 delimiter
COPY_BLANK, COPY_DELIMITER = 0, 9
MNIST_PIXELS = 28 * 28
# The one pmnist permutation: numpy.random.default_rng(PMNIST_SEED).permutation(784).
PMNIST_SEED = 92916

SEQUENCE_METADATA = {
    "adding": dict(input_channels=2, head="value", num_classes=1, loss="mse",
                   baseline="always predict 1: MSE = Var(U1 + U2) = 1/6"),
    "copy": dict(input_channels=COPY_VOCABULARY, head="per_step", num_classes=COPY_VOCABULARY,
                 loss="sparse_categorical_crossentropy",
                 baseline="blanks, then uniform over the 8 symbols: 10 ln 8 / (T + 20)"),
    "seqmnist": dict(input_channels=1, head="classes", num_classes=10,
                     loss="sparse_categorical_crossentropy", baseline="chance: 10% accuracy"),
    "pmnist": dict(input_channels=1, head="classes", num_classes=10,
                   loss="sparse_categorical_crossentropy", baseline="chance: 10% accuracy"),
}


def _check_task(task):
    if task not in SEQUENCE_TASKS:
        raise unknown_choice("sequence task", task, SEQUENCE_TASKS)


def _check_count(what, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise VgzooError(f"{what} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_seq_len(task, seq_len):
    """The sequence length a task runs at: T for adding/copy, 784 for MNIST."""
    _check_task(task)
    if task in MNIST_TASKS:
        if seq_len not in (None, MNIST_PIXELS):
            raise VgzooError(f"{task} reads {MNIST_PIXELS} pixels; leave seq_len unset, got {seq_len!r}.")
        return MNIST_PIXELS
    if seq_len is None:
        raise VgzooError(f"the {task} task needs seq_len (T), an integer > 1, e.g. 200.")
    return _check_count("seq_len", seq_len, minimum=2)


# Bytes of one example's values as the generators draw them (float64) and as
# training reads them (float32), with the model's activations, at most this
# fraction of the memory available.
_MEMORY_SHARE = 0.5


def _available_memory():
    """MemAvailable from /proc/meminfo, else physical memory; None where neither is known."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(task, seq_len, batch_size):
    """Refuse a sequence length and batch whose data alone would not fit in memory."""
    channels = SEQUENCE_METADATA[task]["input_channels"]
    length = seq_len + 2 * COPY_SYMBOLS if task == "copy" else seq_len
    examples = max(batch_size, CHUNK_SIZE) + batch_size
    needed = examples * length * channels * (8 + 4)
    available = _available_memory()
    if available and needed > _MEMORY_SHARE * available:
        raise VgzooError(
            f"seq_len={seq_len} with batch_size={batch_size} needs about {needed / 2**30:.1f} GiB "
            f"for its data alone, more than half the {available / 2**30:.1f} GiB this machine has "
            "free; lower --seq-len or --batch-size."
        )


def baseline(task, seq_len=None):
    """The loss of the best memoryless guess (adding, copy); chance accuracy for MNIST."""
    seq_len = check_seq_len(task, seq_len)
    if task == "adding":
        return 1 / 6  # Var(U1 + U2) = 2 * 1/12
    if task == "copy":
        return COPY_SYMBOLS * math.log(8) / (seq_len + 2 * COPY_SYMBOLS)
    return 0.1


def _adding(rng, count, seq_len):
    values = rng.random((count, seq_len), dtype=np.float32)
    half = seq_len // 2
    first = rng.integers(0, half, size=count)
    second = rng.integers(half, seq_len, size=count)
    rows = np.arange(count)
    markers = np.zeros((count, seq_len), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), target[:, np.newaxis]


def _copy(rng, count, seq_len):
    length = seq_len + 2 * COPY_SYMBOLS
    symbols = rng.integers(1, 9, size=(count, COPY_SYMBOLS))
    tokens = np.full((count, length), COPY_BLANK, dtype=np.int64)
    tokens[:, :COPY_SYMBOLS] = symbols
    tokens[:, seq_len + COPY_SYMBOLS - 1] = COPY_DELIMITER
    target = np.full((count, length), COPY_BLANK, dtype=np.int64)
    target[:, -COPY_SYMBOLS:] = symbols
    one_hot = np.eye(COPY_VOCABULARY, dtype=np.float32)[tokens]
    return one_hot, target


_GENERATORS = {"adding": _adding, "copy": _copy}


def _chunk(task, seq_len, seed, split, index):
    sequence = np.random.SeedSequence(seed, spawn_key=(SPLIT_INDEX[split], index))
    return _GENERATORS[task](np.random.default_rng(sequence), CHUNK_SIZE, seq_len)


def generate(task, num_examples, seq_len, seed=0, split="train"):
    """`(x, y)` numpy: the first `num_examples` of a synthetic task's split."""
    if task not in SYNTHETIC_TASKS:
        _check_task(task)
        raise VgzooError(f"{task} is read from MNIST, not generated; use mnist_sequences().")
    seq_len = check_seq_len(task, seq_len)
    num_examples = _check_count("num_examples", num_examples, minimum=0)
    if split not in SPLIT_INDEX:
        raise unknown_choice("split", split, SPLIT_INDEX)
    chunks = [_chunk(task, seq_len, seed, split, i) for i in range(-(-num_examples // CHUNK_SIZE))]
    if not chunks:
        empty_x, empty_y = _GENERATORS[task](np.random.default_rng(0), 0, seq_len)
        return empty_x, empty_y
    x, y = (np.concatenate(parts) for parts in zip(*chunks))
    return x[:num_examples], y[:num_examples]


def pmnist_permutation(seed=PMNIST_SEED):
    """The fixed pixel order of permuted MNIST."""
    return np.random.default_rng(seed).permutation(MNIST_PIXELS)


def mnist_sequences(task, split="test", *, as_float=True):
    """`(x, y)`: MNIST as (N, 784, 1) pixel sequences, float32 in [0, 1] or uint8."""
    if task not in MNIST_TASKS:
        _check_task(task)
        raise VgzooError(f"{task} is generated, not read from MNIST; use generate().")
    from vgzoo.data import load_arrays

    images, labels = load_arrays("mnist", split)
    pixels = images.reshape(len(images), MNIST_PIXELS, 1)
    if task == "pmnist":
        pixels = pixels[:, pmnist_permutation()]
    if as_float:
        pixels = pixels.astype(np.float32) / 255
    return pixels, labels


def make_sequence_datasets(task, *, seq_len=None, batch_size=128, train_size=None,
                           validation_size=1000, seed=0, source_split="train", limit=None,
                           validation_split=0.1):
    """`(train_ds, val_ds, info)` for a sequence task; `val_ds` may be None.

    adding/copy: the train set is an endless stream of fresh examples (pass
    `steps_per_epoch` to fit) unless `train_size` fixes it; validation is a
    fixed set of `validation_size`. seqmnist/pmnist: the first `limit`
    images of `source_split`, the last `validation_split` of them validate.
    """
    seq_len = check_seq_len(task, seq_len)
    _check_count("batch_size", batch_size)
    check_memory(task, seq_len, batch_size)
    if task in SYNTHETIC_TASKS:
        return _synthetic_datasets(task, seq_len, batch_size, train_size, validation_size, seed)
    return _mnist_datasets(task, batch_size, seed, source_split, limit, validation_split)


def make_sequence_test_dataset(task, *, seq_len=None, batch_size=128, test_size=1000, seed=0):
    """The held-out test set: `test_size` generated examples, or the MNIST test split."""
    seq_len = check_seq_len(task, seq_len)
    _check_count("batch_size", batch_size)
    if task in SYNTHETIC_TASKS:
        return _fixed_dataset(*generate(task, _check_count("test_size", test_size), seq_len,
                                        seed=seed, split="test"), batch_size)
    x, y = mnist_sequences(task, "test", as_float=False)
    return _fixed_dataset(x, y, batch_size)


def _info(task, seq_len, train_size, val_size, source_split=None):
    meta = SEQUENCE_METADATA[task]
    input_length = seq_len + 2 * COPY_SYMBOLS if task == "copy" else seq_len
    return DataInfo(
        name=task, input_shape=(input_length, meta["input_channels"]),
        num_classes=meta["num_classes"], head=meta["head"], loss=meta["loss"],
        seq_len=seq_len, baseline=baseline(task, seq_len),
        train_size=train_size, val_size=val_size,
        source_split=source_split,
    )


def _synthetic_datasets(task, seq_len, batch_size, train_size, validation_size, seed):
    validation_size = _check_count("validation_size", validation_size, minimum=0)
    if train_size is None:
        train_ds = _stream(task, seq_len, seed, batch_size)
    else:
        x, y = generate(task, _check_count("train_size", train_size), seq_len, seed)
        train_ds = _fixed_dataset(x, y, batch_size, shuffle_seed=seed)
    val_ds = None
    if validation_size:
        x, y = generate(task, validation_size, seq_len, seed, split="validation")
        val_ds = _fixed_dataset(x, y, batch_size)
    return train_ds, val_ds, _info(task, seq_len, train_size, validation_size)


def _stream(task, seq_len, seed, batch_size):
    """Endless batches: chunk i of the train split is a pure function of (seed, i).

    Under several workers each draws every chunk and keeps its rows of each
    batch, so they train on the batches one process would (drawing is cheap
    next to a training step).
    """
    import tensorflow as tf

    from vgzoo.data.images import shard_by_examples

    x_spec, y_spec = (tf.TensorSpec((CHUNK_SIZE, *part.shape[1:]), tf.as_dtype(part.dtype))
                      for part in _GENERATORS[task](np.random.default_rng(0), 1, seq_len))

    def draw(index):
        return _chunk(task, seq_len, seed, "train", int(index))

    def load(index):
        x, y = tf.numpy_function(draw, [index], [x_spec.dtype, y_spec.dtype], stateful=False)
        return tf.ensure_shape(x, x_spec.shape), tf.ensure_shape(y, y_spec.shape)

    chunks = tf.data.Dataset.counter().map(load, num_parallel_calls=tf.data.AUTOTUNE)
    # unbatch + batch rather than rebatch: a distribution strategy rewrites the
    # batch sizes it finds, and a rebatch of the chunks came out at the chunk size.
    batches = chunks.unbatch().batch(batch_size, drop_remainder=True)
    # Batching forgets that the stream never ends; training tells streams by this.
    endless = tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY)
    return shard_by_examples(batches.apply(endless).prefetch(tf.data.AUTOTUNE))


def _fixed_dataset(x, y, batch_size, shuffle_seed=None):
    """Batched (x, y); uint8 pixels become float32 in [0, 1] batch by batch."""
    import tensorflow as tf

    from vgzoo.data.images import shard_by_examples

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if x.dtype == np.uint8:
        ds = ds.map(lambda pixels, labels: (tf.cast(pixels, tf.float32) / 255, labels),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return shard_by_examples(ds.prefetch(tf.data.AUTOTUNE))


def _mnist_datasets(task, batch_size, seed, source_split, limit, validation_split):
    # The image pipeline's argument checks, so both kinds of data fail alike.
    from vgzoo.data.images import check_fraction, split_sizes

    if limit is not None:
        _check_count("limit", limit)
    check_fraction(validation_split)
    if source_split == "test":
        warnings.warn(
            f"training {task} on the MNIST test split: use such a model for smoke runs only "
            "and never present it as a pretrained checkpoint.", UserWarning, stacklevel=3,
        )
    # Kept as uint8 until batched: a float copy of all of MNIST is 188 MB.
    x, y = mnist_sequences(task, source_split, as_float=False)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    train_size, val_size = split_sizes(len(x), validation_split)
    train_ds = _fixed_dataset(x[:train_size], y[:train_size], batch_size, shuffle_seed=seed)
    val_ds = _fixed_dataset(x[train_size:], y[train_size:], batch_size) if val_size else None
    return train_ds, val_ds, _info(task, MNIST_PIXELS, train_size, val_size, source_split)
