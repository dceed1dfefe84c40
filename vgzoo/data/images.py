"""tf.data pipelines for the image datasets, as set up in He et al. 2016.

"Deep Residual Learning for Image Recognition", section 4.2: inputs
standardised, and for CIFAR training images padded by 4 pixels on each side,
randomly cropped back to 32x32 and randomly flipped horizontally.

    train_ds, val_ds, info = make_datasets("mnist", source_split="test",
                                           limit=10000, validation_split=0.2)
"""
import numbers
import warnings

import numpy as np
import tensorflow as tf

from vgzoo.data.files import DATASET_METADATA, DATASET_NAMES, SPLITS, load_arrays
from vgzoo.data.tasks import DataInfo
from vgzoo.errors import VgzooError, unknown_choice

AUGMENT_PAD = 4  # pixels of zero padding before the random crop (He et al. 2016)
USER_DATA_NAME = "user"
_MIN_STD = 1e-6  # a constant channel would otherwise divide by zero


def make_datasets(name=None, *, data=None, batch_size=128, source_split="train",
                  validation_split=0.1, limit=None, seed=0, augment=None, num_classes=None):
    """`(train_ds, val_ds, info)` from a dataset name or from `data=(x, y)`.

    The first `limit` examples of `source_split` are kept; the last
    `validation_split` of those validate (`val_ds` is None when it is 0).
    Images become float32 standardised by per-channel mean and std of the
    training part; labels are int64. `augment` defaults to True for CIFAR.
    """
    # Check the arguments before loading, which may read or download files.
    _check_positive_int("batch_size", batch_size)
    if limit is not None:
        _check_positive_int("limit", limit)
    check_fraction(validation_split)
    x, y, label, num_classes = _source(name, data, source_split, num_classes)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    train_size, val_size = split_sizes(len(x), validation_split)
    if augment is None:
        augment = name is not None and name.startswith("cifar")
    scale = 1 / 255 if x.dtype == np.uint8 else 1.0
    mean, std = channel_stats(x[:train_size], scale)
    train_ds = _pipeline(x[:train_size], y[:train_size], scale, mean, std, batch_size,
                         train=True, seed=seed, augment=bool(augment))
    val_ds = None
    if val_size:
        val_ds = _pipeline(x[train_size:], y[train_size:], scale, mean, std, batch_size)
    info = DataInfo(
        name=label, input_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=num_classes, train_size=train_size, val_size=val_size,
        source_split=source_split if data is None else USER_DATA_NAME,
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
    )
    return train_ds, val_ds, info


def make_test_dataset(name, mean, std, batch_size=500):
    """The test split of `name`, standardised with the training statistics given."""
    x, y = load_arrays(name, "test")
    return _pipeline(x, y, 1 / 255, np.asarray(mean, np.float32), np.asarray(std, np.float32),
                     batch_size)


def _source(name, data, source_split, num_classes=None):
    """(x, y, dataset label, num_classes), x uint8 or float32 NHWC, y int64."""
    if (name is None) == (data is None):
        raise VgzooError(
            "give either a dataset name or data=(x, y), not both and not neither; "
            f"names: {', '.join(DATASET_NAMES)}."
        )
    if data is not None:
        x, y = _user_arrays(data)
        return x, y, USER_DATA_NAME, _user_classes(y, num_classes)
    if name not in DATASET_METADATA:
        raise unknown_choice("dataset", name, DATASET_NAMES)
    if source_split not in SPLITS:
        raise unknown_choice("source_split", source_split, SPLITS)
    if source_split == "test":
        warnings.warn(
            f"training on the {name} test split: use such a model for smoke runs only "
            f"and never present it as a pretrained {name} checkpoint.",
            UserWarning, stacklevel=3,
        )
    x, y = load_arrays(name, source_split)
    return x, y, name, DATASET_METADATA[name]["num_classes"]


def _user_arrays(data):
    """Validate user-supplied (x, y); integer images must be 0..255."""
    try:
        x, y = data
    except (TypeError, ValueError):
        raise VgzooError("data must be a pair (x, y) of numpy arrays.") from None
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., np.newaxis]  # (N, H, W) grayscale gets its channel axis
    if x.ndim != 4 or len(x) == 0:
        raise VgzooError(
            f"data x has shape {x.shape}; expected (N, H, W, C) or (N, H, W) with N > 0."
        )
    if y.ndim != 1 or len(y) != len(x):
        raise VgzooError(
            f"data y has shape {y.shape}; expected ({len(x)},), one integer label per "
            "image (use y.reshape(-1) for (N, 1) labels)."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise VgzooError(
            f"data y must hold class labels 0, 1, 2, ...; got dtype {y.dtype}, "
            f"min {y.min()}. Convert with y.astype('int64')."
        )
    return _user_images(x), y.astype(np.int64)


def _user_classes(y, num_classes):
    """The classes of user labels: `num_classes` when given (checked), else 0..max."""
    if num_classes is None:
        return int(y.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise VgzooError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    if y.max() >= num_classes:
        raise VgzooError(f"data y holds label {y.max()} but num_classes={num_classes}: labels "
                         f"must be 0..{num_classes - 1}.")
    return num_classes


def _user_images(x):
    if x.dtype != bool and np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise VgzooError(
                f"data x is integer but spans {x.min()}..{x.max()}; integer images "
                "must be 0..255, or pass floats already scaled to [0, 1]."
            )
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
        if not finite.all():
            raise VgzooError(f"data x holds NaN or infinite values (image {int(np.argmin(finite))} "
                             f"is the first of {int((~finite).sum())}); clean the inputs first.")
        return x.astype(np.float32)
    raise VgzooError(f"data x has dtype {x.dtype}; use uint8 0..255 or floats in [0, 1].")


def _check_positive_int(what, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise VgzooError(f"{what} must be a positive integer, got {value!r}.")


def check_fraction(validation_split):
    if (isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real)
            or not 0 <= validation_split < 1):
        raise VgzooError(
            f"validation_split must be a number in [0, 1), got {validation_split!r}; "
            "for example 0.1 keeps the last 10% for validation."
        )


def split_sizes(count, validation_split):
    """(train, val) sizes; validation takes the last fraction."""
    # round, not int(): 100 * 0.29 is 28.999999999999996 in floating point.
    val_size = round(count * validation_split)
    train_size = count - val_size
    if train_size < 1 or (validation_split > 0 and val_size < 1):
        raise VgzooError(
            f"{count} examples with validation_split={validation_split} leave "
            f"{train_size} to train on and {val_size} to validate; use more examples "
            "(raise limit) or change validation_split."
        )
    return train_size, val_size


def channel_stats(x, scale, chunk=8192):
    """Per-channel mean and std of `x * scale`, without a float copy of all of x."""
    channels = x.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk].reshape(-1, channels).astype(np.float64) * scale
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)
    count = len(x) * int(np.prod(x.shape[1:-1]))
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return mean.astype(np.float32), np.maximum(std, _MIN_STD).astype(np.float32)


def _pipeline(x, y, scale, mean, std, batch_size, *, train=False, seed=None, augment=False):
    """Batched (images, labels); shuffled when `train`, augmented when asked."""
    autotune = tf.data.AUTOTUNE
    mean, std = tf.constant(mean), tf.constant(std)

    def standardise(images):
        return (tf.cast(images, tf.float32) * scale - mean) / std

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if train:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if augment:
        # One stateless seed per example keeps augmentation reproducible even
        # though the map runs in parallel; new seeds every epoch.
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda example, pair: (_augment(standardise(example[0]), pair), example[1]),
            num_parallel_calls=autotune,
        )
        ds = ds.batch(batch_size)
    else:
        # Standardising whole batches is cheaper than one example at a time.
        ds = ds.batch(batch_size).map(
            lambda images, labels: (standardise(images), labels),
            num_parallel_calls=autotune,
        )
    return shard_by_examples(ds.prefetch(autotune))


def shard_by_examples(ds):
    """Under several workers, each keeps its own rows of every batch (tf.data's DATA sharding).

    The workers then train on the very batches one process would, and no
    example reaches two of them; each runs the whole pipeline, cheap for data
    held in memory or generated. One process reads the data unchanged.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _augment(image, seed):
    """Zero-pad, random crop back to size, random horizontal flip."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    # Padding after standardisation pads with the channel mean, as in the paper.
    padded = tf.pad(image, [[AUGMENT_PAD, AUGMENT_PAD], [AUGMENT_PAD, AUGMENT_PAD], [0, 0]])
    cropped = tf.image.stateless_random_crop(padded, image.shape, seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)
