"""The data vgzoo trains on: image datasets and long-sequence tasks, one Task type.

`tasks` is the registry (`get_task("adding").datasets(...)`); `files` finds
and verifies dataset files; `readers` parses them; `images` and `sequences`
build the tf.data pipelines.

    from vgzoo import data
    data.TASK_NAMES                           # ('mnist', 'cifar10', ..., 'adding', ...)
    x, y = data.load_arrays("mnist", "test")  # numpy, verified checksums
    train_ds, val_ds, info = data.make_datasets("cifar10", batch_size=128)

Files are found in $VGZOO_DATA_DIR, then the Keras cache, then downloaded by
keras.datasets unless $VGZOO_OFFLINE=1 (see `vgzoo.data.files`).
Importing this package does not import TensorFlow; `make_datasets` does.
"""
from vgzoo.data.files import (
    DATA_DIR_ENV,
    DATASET_METADATA,
    DATASET_NAMES,
    OFFLINE_ENV,
    load_arrays,
)
from vgzoo.data.tasks import TASK_NAMES, DataInfo, Task, get_task

_LAZY_FROM_IMAGES = ("make_datasets",)


def __getattr__(name):
    # tf.data lives in `images`; load it on first use so that listing
    # datasets stays fast.
    if name in _LAZY_FROM_IMAGES:
        from vgzoo.data import images

        return getattr(images, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASET_METADATA",
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "DataInfo",
    "TASK_NAMES",
    "Task",
    "get_task",
    "OFFLINE_ENV",
    "load_arrays",
    "make_datasets",
]
