"""Image datasets for vgzoo: MNIST, CIFAR-10 and CIFAR-100.

    from vgzoo import datasets
    datasets.DATASET_NAMES                        # ('mnist', 'cifar10', 'cifar100')
    x, y = datasets.load_arrays("mnist", "test")  # numpy, verified checksums
    train_ds, val_ds, info = datasets.make_datasets("cifar10", batch_size=128)

Files are found in $VGZOO_DATA_DIR, then the Keras cache, then downloaded by
keras.datasets unless $VGZOO_OFFLINE=1 (see `vgzoo.datasets.files`).
Importing this package does not import TensorFlow; `make_datasets` does.
"""
from vgzoo.datasets.files import (
    DATA_DIR_ENV,
    DATASET_METADATA,
    DATASET_NAMES,
    OFFLINE_ENV,
    load_arrays,
)

_LAZY_FROM_IMAGES = ("make_datasets", "DatasetInfo")


def __getattr__(name):
    # tf.data lives in `images`; load it on first use so that listing
    # datasets stays fast.
    if name in _LAZY_FROM_IMAGES:
        from vgzoo.datasets import images

        return getattr(images, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASET_METADATA",
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "OFFLINE_ENV",
    "load_arrays",
    "make_datasets",
]
