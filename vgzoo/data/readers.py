"""Pure numpy readers for the dataset files as their authors distribute them.

Readers parse; they do not locate or verify (that is `files.py`), so tests can
feed them fixtures written in the real formats. Every reader returns
`(x, y)`: x uint8 NHWC, y int64 of shape (N,). A file that cannot be parsed
raises `VgzooError` naming it.
"""
import contextlib
import gzip
import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from vgzoo.errors import VgzooError

# IDX files: https://yann.lecun.com/exdb/mnist/ ("FILE FORMATS" section).
IDX_UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
MNIST_PREFIX = {"train": "train", "test": "t10k"}

# The python-pickle CIFAR releases: https://www.cs.toronto.edu/~kriz/cifar.html
CIFAR_LAYOUT = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "label_key": b"labels",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ("train",),
        "test": ("test",),
        "label_key": b"fine_labels",
    },
}
CIFAR_SIDE = 32
CIFAR_ROW_BYTES = 3 * CIFAR_SIDE * CIFAR_SIDE

# The batches are pickled dicts holding numpy arrays; rebuilding those needs
# only these globals. Refusing anything else keeps a tampered file from
# running code through a pickle `__reduce__` (the same rule Keras applies).
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}

# Errors that mean "these bytes are not a valid file of the expected format".
_PARSE_ERRORS = (
    OSError, EOFError, ValueError, KeyError, IndexError, TypeError,
    AttributeError, struct.error, zlib.error, pickle.UnpicklingError,
    tarfile.TarError, zipfile.BadZipFile,
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


@contextlib.contextmanager
def _reading(path):
    """Turn any parse failure into a one-line VgzooError naming `path`."""
    try:
        yield
    except VgzooError:
        raise
    except _PARSE_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise VgzooError(
            f"could not read {path}: {reason}. The file is damaged or not in the "
            "expected format; delete it and download it again."
        ) from exc


def open_maybe_gzip(path):
    # Sniff the magic bytes rather than trust the extension: people gunzip
    # files and keep the name, or download them already decompressed.
    with open(path, "rb") as handle:
        head = handle.read(2)
    return gzip.open(path, "rb") if head == GZIP_MAGIC else open(path, "rb")


def read_idx(path):
    """An IDX file of unsigned bytes (MNIST), gzipped or raw, as an array."""
    path = Path(path)
    with _reading(path), open_maybe_gzip(path) as handle:
        data = handle.read()
        if len(data) < 4 or data[:2] != b"\x00\x00":
            raise ValueError("not an IDX file (bad magic number)")
        if data[2] != IDX_UBYTE:
            raise ValueError(f"IDX element type {data[2]:#04x} is not unsigned byte")
        ndim = data[3]
        shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
        body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        if body.size != int(np.prod(shape)):
            raise ValueError(f"header says shape {shape} but {body.size} bytes follow")
        return body.reshape(shape)


def read_mnist_idx(images_path, labels_path):
    """MNIST from its two IDX files -> x (N, 28, 28, 1) uint8, y (N,) int64."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise VgzooError(
            f"{images_path} holds shape {images.shape} and {labels_path} holds "
            f"shape {labels.shape}; expected (N, 28, 28) images and N labels. "
            "Delete both files and download them again."
        )
    return images[..., np.newaxis], labels.astype(np.int64)


def read_mnist_npz(path, split):
    """MNIST from Keras' `mnist.npz` (arrays x_train, y_train, x_test, y_test)."""
    with _reading(path), np.load(path, allow_pickle=False) as arrays:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"].reshape(-1)
        if x.ndim != 3 or len(x) != len(y):
            raise ValueError(f"x_{split} has shape {x.shape} for {len(y)} labels")
    return x.astype(np.uint8)[..., np.newaxis], y.astype(np.int64)


def _cifar_batch_from_bytes(raw, label_key, where):
    with _reading(where):
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
        if data.ndim != 2 or data.shape[1] != CIFAR_ROW_BYTES or len(data) != len(labels):
            raise ValueError(
                f"data has shape {data.shape} and {len(labels)} labels; expected "
                f"(N, {CIFAR_ROW_BYTES}) and N labels"
            )
    # Each row is the red plane, then green, then blue, each 32x32 row-major.
    images = data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _concatenate(batches):
    xs, ys = zip(*batches)
    return np.concatenate(xs), np.concatenate(ys)


def _cifar_layout(name, split):
    if name not in CIFAR_LAYOUT or split not in ("train", "test"):
        raise VgzooError(f"no CIFAR layout for dataset {name!r}, split {split!r}")
    layout = CIFAR_LAYOUT[name]
    return layout, layout[split]


def read_cifar_folder(folder, name, split):
    """CIFAR from an extracted `cifar-10-batches-py/` or `cifar-100-python/`."""
    layout, members = _cifar_layout(name, split)
    batches = []
    for member in members:
        path = Path(folder) / member
        with _reading(path):
            raw = path.read_bytes()
        batches.append(_cifar_batch_from_bytes(raw, layout["label_key"], path))
    return _concatenate(batches)


def read_cifar_archive(path, name, split):
    """CIFAR straight from the distributed `.tar.gz`, without extracting it."""
    layout, members = _cifar_layout(name, split)
    wanted = [f"{layout['folder']}/{member}" for member in members]
    raw_by_name = {}
    # One forward pass: seeking back in a gzip stream means decompressing again.
    with _reading(path), tarfile.open(path, "r:*") as archive:
        for entry in archive:
            entry_name = entry.name.removeprefix("./")  # some re-packs add "./"
            if entry_name in wanted and entry.isfile():
                raw_by_name[entry_name] = archive.extractfile(entry).read()
        missing = [member for member in wanted if member not in raw_by_name]
        if missing:
            raise KeyError(f"the archive has no member {', '.join(missing)}")
    return _concatenate(
        _cifar_batch_from_bytes(raw_by_name[member], layout["label_key"], f"{path}:{member}")
        for member in wanted
    )
