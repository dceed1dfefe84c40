"""Where dataset files live, what they must hash to, and how to get them.

Search order for `load_arrays`:
  1. `$VGZOO_DATA_DIR` when set (an error when set to a folder that does not exist);
  2. the Keras cache, `$KERAS_HOME/datasets` or `~/.keras/datasets`;
  3. the standard `keras.datasets.<name>.load_data()` download, unless
     `$VGZOO_OFFLINE` is set to a true value (1, true, yes) or `download=False`.
Layouts accepted in each folder: MNIST as `mnist/<idx files>`, `<idx files>`
(gzipped or not) or `mnist.npz`; CIFAR as `cifar-10-batches-py/`,
`cifar-100-python/` (also inside Keras 3's `<name>-target/`) or the `.tar.gz`.
Every local file is checked against its published checksum before it is parsed.

Importing this module does not import TensorFlow; only the download step does.
"""
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgzoo.data import readers
from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.storage import file_digest

DATA_DIR_ENV = "VGZOO_DATA_DIR"
OFFLINE_ENV = "VGZOO_OFFLINE"
SPLITS = ("train", "test")

DATASET_METADATA = {
    "mnist": {
        "input_shape": (28, 28, 1), "num_classes": 10,
        "train_size": 60000, "test_size": 10000,
        "description": "MNIST handwritten digits, 28x28 grayscale (LeCun et al. 1998)",
    },
    "cifar10": {
        "input_shape": (32, 32, 3), "num_classes": 10,
        "train_size": 50000, "test_size": 10000,
        "description": "CIFAR-10 natural images, 32x32 RGB, 10 classes (Krizhevsky 2009)",
    },
    "cifar100": {
        "input_shape": (32, 32, 3), "num_classes": 100,
        "train_size": 50000, "test_size": 10000,
        "description": "CIFAR-100 natural images, 32x32 RGB, 100 fine classes (Krizhevsky 2009)",
    },
}
DATASET_NAMES = tuple(DATASET_METADATA)

# MNIST's IDX files are checked by the sha256 of their decompressed payload, so
# the official archives, recompressed ones and uncompressed IDX files (as
# torchvision's MNIST/raw/ keeps them) are all accepted: gzip bytes depend on
# the compressor, the payload does not. Values from shared/data/README.md,
# matched against the official t10k archives.
MNIST_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Other files' published checksums, keyed by the file's name in its canonical
# layout. Sources: torchvision datasets/cifar.py (md5 of the official files);
# keras src/datasets/{mnist,cifar10,cifar100}.py (sha256 `file_hash`).
CHECKSUMS = {
    "mnist.npz": {"sha256": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},
    "cifar-10-python.tar.gz": {
        "md5": "c58f30108f718f92721af3b95e74349a",
        "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    },
    "cifar-10-batches-py/data_batch_1": {"md5": "c99cafc152244af753f735de768cd75f"},
    "cifar-10-batches-py/data_batch_2": {"md5": "d4bba439e000b95fd0a9bffe97cbabec"},
    "cifar-10-batches-py/data_batch_3": {"md5": "54ebc095f3ab1f0389bbae665268c751"},
    "cifar-10-batches-py/data_batch_4": {"md5": "634d18415352ddfa80567beed471001a"},
    "cifar-10-batches-py/data_batch_5": {"md5": "482c414d41f54cd18b22e5b47cb7c3cb"},
    "cifar-10-batches-py/test_batch": {"md5": "40351d587109b95175f43aff81a1287e"},
    "cifar-100-python.tar.gz": {
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "sha256": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    },
    "cifar-100-python/train": {"md5": "16019d7e3df5f24257cddd939b257f8d"},
    "cifar-100-python/test": {"md5": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
}

# The same archive under the names torchvision, Keras 2 and Keras 3 give it
# (Keras 3 saves `<fname>_archive` and extracts into `<fname>/`).
CIFAR_ARCHIVES = {
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz",
                "cifar-10-batches-py-target_archive"),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python-target_archive"),
}
_HASH_CHUNK = 1 << 20
_verified = set()  # (path, size, mtime) already hashed: repeat loads skip it


@dataclass(frozen=True)
class Located:
    """Files that together hold one split, each paired with its checksum key."""

    kind: str  # "idx", "npz", "cifar_folder" or "cifar_archive"
    files: tuple
    root: Path


def keras_cache_dir():
    """The folder where `keras.datasets` caches its downloads."""
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "datasets"


def search_folders():
    """The folders to look in, in order; refuses a VGZOO_DATA_DIR that is not there."""
    folders = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise VgzooError(
                f"{DATA_DIR_ENV}={data_dir} is not an existing folder; create it and "
                f"put the dataset files there, or unset {DATA_DIR_ENV}."
            )
        folders.append(path)
    folders.append(keras_cache_dir())
    return folders


def payload_digest(path):
    """sha256 of a file's content, decompressed first when it is gzipped."""
    digest = hashlib.sha256()
    with readers.open_maybe_gzip(path) as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected_digest(key):
    """(what is hashed, algorithm, expected hex digest, digest function) for `key`."""
    if key in MNIST_PAYLOAD_SHA256:
        return "decompressed IDX payload", "sha256", MNIST_PAYLOAD_SHA256[key], payload_digest
    known = CHECKSUMS[key]
    algorithm = "sha256" if "sha256" in known else "md5"
    return "file", algorithm, known[algorithm], lambda path: file_digest(path, algorithm)


def verify_file(path, key):
    """Raise VgzooError unless `path` matches the published checksum for `key`."""
    path = Path(path)
    what, algorithm, expected, digest_of = _expected_digest(key)
    try:
        stat = path.stat()
        seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if seen in _verified:
            return
        actual = digest_of(path)
    except (OSError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
        raise VgzooError(f"could not read {path} to verify its checksum ({reason}): the file is "
                         "damaged or unreadable; delete it and download it again.") from exc
    if actual != expected:
        raise VgzooError(
            f"checksum mismatch for {path}: expected {algorithm} {expected} of the {what}, "
            f"got {actual}. The file is damaged or not the official release; "
            "delete it and download it again."
        )
    _verified.add(seen)


def _first_existing(paths):
    return next((path for path in paths if path.is_file()), None)


def _incomplete(where, missing):
    return VgzooError(
        f"{where} is incomplete: {', '.join(str(p) for p in missing)} not found; "
        "restore the missing files or delete the folder and download it again."
    )


def _locate_mnist(folder, split):
    prefix = readers.MNIST_PREFIX[split]
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    for base in (folder / "mnist", folder):
        found = [_first_existing([base / f"{n}.gz", base / n]) for n in names]
        if all(found):
            return Located("idx", tuple((p, n) for p, n in zip(found, names)), base)
        if any(found):
            missing = [base / f"{n}.gz" for n, path in zip(names, found) if path is None]
            raise _incomplete(base, missing)
    npz = folder / "mnist.npz"
    return Located("npz", ((npz, "mnist.npz"),), npz) if npz.is_file() else None


def _locate_cifar(folder, name, split):
    layout = readers.CIFAR_LAYOUT[name]
    inner = layout["folder"]
    for batches in (folder / inner, folder / f"{inner}-target" / inner):
        if batches.is_dir():
            paths = [batches / member for member in layout[split]]
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise _incomplete(batches, missing)
            checked = tuple((p, f"{inner}/{p.name}") for p in paths)
            return Located("cifar_folder", checked, batches)
    archive = _first_existing([folder / n for n in CIFAR_ARCHIVES[name]])
    if archive is None:
        return None
    return Located("cifar_archive", ((archive, CIFAR_ARCHIVES[name][0]),), archive)


def locate(name, split, folder):
    """The files in `folder` that hold `name`/`split`, or None when there are none."""
    folder = Path(folder)
    if name == "mnist":
        return _locate_mnist(folder, split)
    return _locate_cifar(folder, name, split)


def read_located(located, name, split):
    """Verify every file of `located`, then parse it into (x, y)."""
    for path, key in located.files:
        verify_file(path, key)
    if located.kind == "idx":
        return readers.read_mnist_idx(*(path for path, _ in located.files))
    if located.kind == "npz":
        return readers.read_mnist_npz(located.root, split)
    if located.kind == "cifar_folder":
        return readers.read_cifar_folder(located.root, name, split)
    return readers.read_cifar_archive(located.root, name, split)


def _expected_files(name, split):
    if name == "mnist":
        prefix = readers.MNIST_PREFIX[split]
        return (f"mnist/{prefix}-images-idx3-ubyte.gz and "
                f"mnist/{prefix}-labels-idx1-ubyte.gz (or mnist.npz)")
    folder = readers.CIFAR_LAYOUT[name]["folder"]
    return f"{folder}/ (or {CIFAR_ARCHIVES[name][0]})"


def _not_found(name, split, folders, reason):
    where = ", ".join(str(folder) for folder in folders)
    data_dir = os.environ.get(DATA_DIR_ENV) or "<unset>"
    return VgzooError(
        f"{name} {split} split not found ({reason}): looked for "
        f"{_expected_files(name, split)} in {where}. Put the files in "
        f"${DATA_DIR_ENV} (now {data_dir}), or run once with network access "
        f"and {OFFLINE_ENV} unset so keras.datasets downloads them."
    )


def offline():
    """True when $VGZOO_OFFLINE asks never to download."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _keras_load_data(name):
    # Imported here because keras brings TensorFlow, which takes seconds.
    from keras import datasets as keras_datasets

    if name == "cifar100":
        return keras_datasets.cifar100.load_data(label_mode="fine")
    return getattr(keras_datasets, name).load_data()


def _download(name, split, folders):
    try:
        train, test = _keras_load_data(name)
    except Exception as exc:  # keras raises bare Exception for URL failures
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise _not_found(name, split, folders, f"keras.datasets download failed: {reason}") from exc
    x, y = train if split == "train" else test
    x = np.asarray(x, dtype=np.uint8)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    elif x.shape[1] == 3 and x.shape[-1] != 3:
        x = x.transpose(0, 2, 3, 1)  # keras.json asked for channels_first
    return np.ascontiguousarray(x), np.asarray(y, dtype=np.int64).reshape(-1)


def _check_arrays(name, split, x, y):
    meta = DATASET_METADATA[name]
    if x.shape[1:] != meta["input_shape"] or len(x) != len(y):
        raise VgzooError(
            f"{name} {split} split has images {x.shape} and labels {y.shape}; expected "
            f"(N, {', '.join(map(str, meta['input_shape']))}) and (N,). Re-download it."
        )
    if len(y) and (y.min() < 0 or y.max() >= meta["num_classes"]):
        raise VgzooError(
            f"{name} {split} split has labels outside 0..{meta['num_classes'] - 1}; "
            "re-download it."
        )


def load_arrays(name, split="train", *, download=None):
    """`(x, y)` for a named dataset: x uint8 NHWC, y int64 of shape (N,).

    `download=None` downloads through keras.datasets only when no local copy
    was found and $VGZOO_OFFLINE is not set; `False` never downloads.
    """
    if name not in DATASET_METADATA:
        raise unknown_choice("dataset", name, DATASET_NAMES)
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    folders = search_folders()
    for folder in folders:
        located = locate(name, split, folder)
        if located is not None:
            x, y = read_located(located, name, split)
            break
    else:
        allowed = not offline() if download is None else bool(download)
        if not allowed:
            switch = f"{OFFLINE_ENV} is set" if download is None else "download=False"
            raise _not_found(name, split, folders, f"downloads are off: {switch}")
        x, y = _download(name, split, folders)
    _check_arrays(name, split, x, y)
    return x, y
