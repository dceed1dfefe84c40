"""Tests for vgzoo.data: readers on real-format fixtures, file location and
checksums, and the tf.data pipelines. No test touches the network: the
`offline` fixture sets VGZOO_OFFLINE=1 and makes any download attempt fail.
"""
import gzip
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from vgzoo.data import files, readers
from vgzoo.errors import VgzooError

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _find_real_data():
    """The folder holding the real MNIST test split, or None."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data"]
    if os.environ.get(files.DATA_DIR_ENV):
        candidates.insert(0, Path(os.environ[files.DATA_DIR_ENV]))
    for folder in candidates:
        if all((folder / "mnist" / name).is_file() for name in MNIST_TEST_FILES):
            return folder
    return None


REAL_DATA = _find_real_data()  # read before any test rewrites the environment
needs_real_mnist = pytest.mark.skipif(
    REAL_DATA is None,
    reason="real MNIST test split not found in $VGZOO_DATA_DIR or ../shared/data/mnist",
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache, no data dir, and downloads that must not happen."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    monkeypatch.setenv(files.OFFLINE_ENV, "1")
    monkeypatch.delenv(files.DATA_DIR_ENV, raising=False)

    def no_network(name):
        raise AssertionError(f"a test tried to download {name}")

    monkeypatch.setattr(files, "_keras_load_data", no_network)
    return home


@pytest.fixture
def data_dir(offline, monkeypatch, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv(files.DATA_DIR_ENV, str(folder))
    return folder


# ---------------------------------------------------------------- fixtures
def _cifar_rows(count, marks):
    """Rows in the CIFAR layout: 3072 bytes = R plane, G plane, B plane, 32x32 each.

    `marks` maps image index -> (channel, row, col, value), written straight
    into the flat row so the test does not reuse the reader's own reshape.
    """
    data = np.zeros((count, readers.CIFAR_ROW_BYTES), dtype=np.uint8)
    for index, (channel, row, col, value) in marks.items():
        data[index, channel * 1024 + row * 32 + col] = value
    return data


def _write_batch(path, data, labels, label_key):
    batch = {b"batch_label": b"fixture", b"data": data, label_key: [int(v) for v in labels]}
    path.write_bytes(pickle.dumps(batch, protocol=4))


def write_cifar_folder(root, name, per_batch=3):
    """A fake cifar-10-batches-py/ or cifar-100-python/ under root; labels count up."""
    layout = readers.CIFAR_LAYOUT[name]
    folder = root / layout["folder"]
    folder.mkdir(parents=True)
    next_label = 0
    for member in layout["train"] + layout["test"]:
        labels = np.arange(next_label, next_label + per_batch) % 100
        next_label += per_batch
        data = _cifar_rows(per_batch, {0: (2, 5, 7, 200), 1: (0, 31, 0, 17)})
        _write_batch(folder / member, data, labels, layout["label_key"])
    return folder


def write_cifar_archive(root, name):
    folder = write_cifar_folder(root / "staging", name)
    archive = root / files.CIFAR_ARCHIVES[name][0]
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    shutil.rmtree(root / "staging")
    return archive


# ----------------------------------------------------------------- imports
def test_importing_datasets_does_not_import_tensorflow():
    code = ("import sys, vgzoo.data, vgzoo.data.files, vgzoo.data.readers; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_metadata():
    from vgzoo import data

    assert data.DATASET_NAMES == ("mnist", "cifar10", "cifar100")
    assert data.DATASET_METADATA["cifar100"]["num_classes"] == 100
    assert data.DATASET_METADATA["mnist"]["input_shape"] == (28, 28, 1)


# ------------------------------------------------------------ real MNIST
@needs_real_mnist
def test_real_mnist_test_split(offline, monkeypatch):
    monkeypatch.setenv(files.DATA_DIR_ENV, str(REAL_DATA))
    x, y = files.load_arrays("mnist", "test")
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert set(y.tolist()) == set(range(10))
    for name in MNIST_TEST_FILES:
        path = REAL_DATA / "mnist" / name
        payload = name.removesuffix(".gz")
        files.verify_file(path, payload)
        assert files.payload_digest(path) == files.MNIST_PAYLOAD_SHA256[payload]
    # The t10k archives are the official ones, byte for byte (shared/data/README.md).
    assert files.file_digest(REAL_DATA / "mnist" / MNIST_TEST_FILES[0]) == (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6")


needs_whole_mnist = pytest.mark.skipif(
    REAL_DATA is None or not (REAL_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file(),
    reason="the MNIST training split is not in $VGZOO_DATA_DIR or ../shared/data/mnist",
)


@needs_whole_mnist
def test_recompressed_training_archives_are_accepted_by_their_payload(offline, monkeypatch):
    monkeypatch.setenv(files.DATA_DIR_ENV, str(REAL_DATA))
    labels_archive = REAL_DATA / "mnist" / "train-labels-idx1-ubyte.gz"
    # Not the official archive's bytes (md5 d53e105e...), yet the same payload.
    assert hashlib.md5(labels_archive.read_bytes()).hexdigest() != "d53e105ee54ea40749a09fcbcd1e9432"
    x, y = files.load_arrays("mnist", "train")
    assert x.shape == (60000, 28, 28, 1) and y.shape == (60000,)
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@needs_whole_mnist
def test_default_split_trains_on_54000_and_validates_on_the_last_6000(offline, monkeypatch):
    from vgzoo.data import make_datasets

    monkeypatch.setenv(files.DATA_DIR_ENV, str(REAL_DATA))
    _, val_ds, info = make_datasets("mnist", batch_size=1000)
    assert (info.train_size, info.val_size, info.source_split) == (54000, 6000, "train")
    _, y = files.load_arrays("mnist", "train")
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in val_ds]), y[54000:])
    assert abs(info.mean[0] - 0.1307) < 2e-3 and abs(info.std[0] - 0.3081) < 2e-3


def _copy_test_payloads(folder, transform):
    """The t10k payloads written into `folder` by `transform(name, payload bytes)`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MNIST_TEST_FILES:
        with gzip.open(REAL_DATA / "mnist" / name) as packed:
            transform(folder, name.removesuffix(".gz"), packed.read())


@needs_real_mnist
def test_raw_idx_files_at_top_level_match_the_gzipped_ones(data_dir, monkeypatch):
    _copy_test_payloads(data_dir, lambda folder, name, payload: (folder / name).write_bytes(payload))
    x_raw, y_raw = files.load_arrays("mnist", "test")
    monkeypatch.setenv(files.DATA_DIR_ENV, str(REAL_DATA))
    x_gz, y_gz = files.load_arrays("mnist", "test")
    np.testing.assert_array_equal(x_raw, x_gz)
    np.testing.assert_array_equal(y_raw, y_gz)


@needs_real_mnist
def test_torchvision_raw_folder_and_a_recompressed_archive_are_accepted(data_dir):
    def recompress(folder, name, payload):
        (folder / f"{name}.gz").write_bytes(gzip.compress(payload, compresslevel=1, mtime=0))

    _copy_test_payloads(data_dir / "mnist", recompress)
    x, y = files.load_arrays("mnist", "test")
    assert x.shape == (10000, 28, 28, 1) and y.shape == (10000,)


@needs_real_mnist
def test_smoke_path_works_where_only_the_t10k_files_exist(data_dir):
    from vgzoo.data import make_datasets

    (data_dir / "mnist").mkdir()
    for name in MNIST_TEST_FILES:
        shutil.copyfile(REAL_DATA / "mnist" / name, data_dir / "mnist" / name)
    with pytest.warns(UserWarning, match="never present it as a pretrained"):
        _, _, info = make_datasets("mnist", source_split="test", limit=500)
    assert (info.train_size, info.val_size) == (450, 50)
    with pytest.raises(VgzooError, match="mnist train split not found"):
        make_datasets("mnist")


@needs_real_mnist
def test_a_damaged_payload_is_refused_by_checksum(data_dir):
    def damage_labels(folder, name, payload):
        raw = bytearray(payload)
        if "labels" in name:
            raw[100] ^= 0xFF
        (folder / f"{name}.gz").write_bytes(gzip.compress(bytes(raw), mtime=0))

    _copy_test_payloads(data_dir / "mnist", damage_labels)
    damaged = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(VgzooError, match="checksum mismatch") as caught:
        files.load_arrays("mnist", "test")
    message = str(caught.value)
    assert str(damaged) in message and "download it again" in message
    assert files.MNIST_PAYLOAD_SHA256["t10k-labels-idx1-ubyte"] in message
    assert files.payload_digest(damaged) in message and "decompressed IDX payload" in message
    assert "\n" not in message


@needs_real_mnist
def test_a_damaged_archive_is_a_one_line_error_naming_it(data_dir):
    (data_dir / "mnist").mkdir()
    for name in MNIST_TEST_FILES:
        shutil.copyfile(REAL_DATA / "mnist" / name, data_dir / "mnist" / name)
    damaged = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(damaged.read_bytes())
    raw[100] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    with pytest.raises(VgzooError, match="damaged") as caught:
        files.load_arrays("mnist", "test")
    message = str(caught.value)
    assert str(damaged) in message and "download it again" in message and "\n" not in message


# ----------------------------------------------------------- CIFAR readers
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("packed", [False, True], ids=["folder", "tar.gz"])
def test_cifar_reader_layout_and_labels(tmp_path, name, packed):
    if packed:
        archive = write_cifar_archive(tmp_path, name)
        read = lambda split: readers.read_cifar_archive(archive, name, split)  # noqa: E731
    else:
        folder = write_cifar_folder(tmp_path, name)
        read = lambda split: readers.read_cifar_folder(folder, name, split)  # noqa: E731
    x, y = read("train")
    batches = len(readers.CIFAR_LAYOUT[name]["train"])
    assert x.shape == (3 * batches, 32, 32, 3) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == list(range(3 * batches))
    # blue (channel 2) at row 5, column 7 of the first image of each batch
    assert x[0, 5, 7, 2] == 200 and x[1, 31, 0, 0] == 17
    assert x[3 * (batches - 1), 5, 7, 2] == 200
    assert int(x.astype(np.int64).sum()) == batches * (200 + 17)
    x_test, y_test = read("test")
    assert x_test.shape == (3, 32, 32, 3) and y_test.tolist() == [3 * batches + i for i in range(3)]


def test_archive_missing_a_member_is_a_vgzoo_error(tmp_path):
    folder = write_cifar_folder(tmp_path / "staging", "cifar10")
    (folder / "test_batch").unlink()
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    with pytest.raises(VgzooError, match="no member cifar-10-batches-py/test_batch"):
        readers.read_cifar_archive(archive, "cifar10", "test")


def test_cifar_batches_pickled_under_numpy_1_load_without_warnings(tmp_path, recwarn):
    # The official batches name `numpy.core.multiarray`, which numpy 2 renamed.
    batch = {b"data": _cifar_rows(2, {0: (1, 2, 3, 9)}), b"labels": [4, 5]}
    legacy = pickle.dumps(batch, protocol=3).replace(
        b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in legacy
    (tmp_path / "test_batch").write_bytes(legacy)
    x, y = readers.read_cifar_folder(tmp_path, "cifar10", "test")
    assert x[0, 2, 3, 1] == 9 and y.tolist() == [4, 5]
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]

def test_cifar_reader_refuses_code_in_a_pickle(tmp_path):
    folder = write_cifar_folder(tmp_path, "cifar100")
    (folder / "test").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(VgzooError, match="could not read .*test"):
        readers.read_cifar_folder(folder, "cifar100", "test")


def test_truncated_idx_is_a_vgzoo_error(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes(5))
    with pytest.raises(VgzooError, match="could not read"):
        readers.read_idx(path)


def test_mnist_npz_reader(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((4, 28, 28), np.uint8), y_train=np.arange(4, dtype=np.uint8),
             x_test=np.ones((2, 28, 28), np.uint8), y_test=np.array([7, 9], np.uint8))
    x, y = readers.read_mnist_npz(path, "test")
    assert x.shape == (2, 28, 28, 1) and y.tolist() == [7, 9] and y.dtype == np.int64


# ------------------------------------------------------- locating + checksums
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_generated_cifar_folder_is_refused_by_checksum(data_dir, name):
    write_cifar_folder(data_dir, name)
    member = readers.CIFAR_LAYOUT[name]["test"][0]
    with pytest.raises(VgzooError, match=f"checksum mismatch for .*{member}"):
        files.load_arrays(name, "test")


def test_generated_cifar_archive_is_refused_by_checksum(data_dir):
    write_cifar_archive(data_dir, "cifar100")
    with pytest.raises(VgzooError, match="checksum mismatch for .*cifar-100-python.tar.gz"):
        files.load_arrays("cifar100", "train")


def test_keras3_cache_layout_is_searched(offline):
    cache = offline / ".keras" / "datasets" / "cifar-10-batches-py-target"
    write_cifar_folder(cache, "cifar10")
    with pytest.raises(VgzooError, match="checksum mismatch for .*-target/cifar-10-batches-py/"):
        files.load_arrays("cifar10", "train")


def test_incomplete_cifar_folder_names_the_missing_file(data_dir):
    folder = write_cifar_folder(data_dir, "cifar10")
    (folder / "data_batch_3").unlink()
    with pytest.raises(VgzooError, match="incomplete: .*data_batch_3"):
        files.load_arrays("cifar10", "train")


def test_mnist_npz_in_data_dir_is_checked(data_dir):
    np.savez(data_dir / "mnist.npz", x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1))
    with pytest.raises(VgzooError, match="checksum mismatch for .*mnist.npz"):
        files.load_arrays("mnist", "test")


def test_missing_files_name_file_and_folders(data_dir, offline):
    with pytest.raises(VgzooError) as caught:
        files.load_arrays("mnist", "train")
    message = str(caught.value)
    assert "mnist/train-images-idx3-ubyte.gz" in message and "mnist.npz" in message
    assert str(data_dir) in message and str(offline / ".keras" / "datasets") in message
    assert files.OFFLINE_ENV in message and "\n" not in message


def test_missing_data_dir_is_an_error(offline, monkeypatch, tmp_path):
    monkeypatch.setenv(files.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(VgzooError, match="VGZOO_DATA_DIR=.*nowhere is not an existing folder"):
        files.load_arrays("mnist", "test")


def test_unknown_name_and_split(offline):
    with pytest.raises(VgzooError, match="Did you mean 'cifar10'"):
        files.load_arrays("cifar-10")
    with pytest.raises(VgzooError, match="unknown split"):
        files.load_arrays("mnist", "validation")


def test_download_failure_becomes_a_vgzoo_error(offline, monkeypatch):
    monkeypatch.delenv(files.OFFLINE_ENV)

    def unreachable(name):
        raise Exception("URL fetch failure on https://example.invalid/mnist.npz: None -- "
                        "[Errno -2] Name or service not known")

    monkeypatch.setattr(files, "_keras_load_data", unreachable)
    with pytest.raises(VgzooError, match="download failed: URL fetch failure"):
        files.load_arrays("mnist", "train")
    with pytest.raises(VgzooError, match="download=False"):
        files.load_arrays("mnist", "train", download=False)


def test_downloaded_keras_arrays_are_normalised(offline, monkeypatch):
    monkeypatch.delenv(files.OFFLINE_ENV)
    mnist = (np.zeros((5, 28, 28), np.uint8), np.arange(5, dtype=np.uint8))
    cifar = (np.zeros((4, 32, 32, 3), np.uint8), np.arange(4, dtype=np.uint8)[:, None])
    fake = {"mnist": (mnist, mnist), "cifar10": (cifar, cifar)}  # keras' shapes
    monkeypatch.setattr(files, "_keras_load_data", fake.__getitem__)
    x, y = files.load_arrays("mnist", "train")
    assert x.shape == (5, 28, 28, 1) and y.dtype == np.int64
    x, y = files.load_arrays("cifar10", "test")
    assert x.shape == (4, 32, 32, 3) and y.shape == (4,)


# ---------------------------------------------------------------- pipelines
@needs_real_mnist
def test_make_datasets_on_mnist_test_split(offline, monkeypatch):
    from vgzoo.data import make_datasets

    monkeypatch.setenv(files.DATA_DIR_ENV, str(REAL_DATA))
    with pytest.warns(UserWarning, match="never present it as a pretrained"):
        train_ds, val_ds, info = make_datasets(
            "mnist", source_split="test", limit=1000, validation_split=0.2, batch_size=128)
    assert (info.train_size, info.val_size, info.num_classes) == (800, 200, 10)
    assert info.input_shape == (28, 28, 1) and info.source_split == "test"
    images, labels = next(iter(train_ds))
    assert images.shape == (128, 28, 28, 1) and images.dtype.name == "float32"
    assert labels.shape == (128,) and labels.dtype.name == "int64"
    train_x = np.concatenate([b[0].numpy() for b in train_ds])
    assert train_x.shape[0] == 800
    assert abs(train_x.mean()) < 1e-3 and abs(train_x.std() - 1) < 1e-3
    _, y = files.load_arrays("mnist", "test")
    val_y = np.concatenate([b[1].numpy() for b in val_ds])
    np.testing.assert_array_equal(val_y, y[800:1000])  # the last 20%, in order
    epoch1, epoch2 = ([b[1].numpy() for b in train_ds] for _ in range(2))
    assert not np.array_equal(np.concatenate(epoch1), np.concatenate(epoch2))


def _random_cifar(count=64, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, count)


def test_augmentation_on_user_arrays():
    from vgzoo.data import make_datasets

    data = _random_cifar()
    plain, _, _ = make_datasets(data=data, batch_size=16, validation_split=0.25)
    augmented, val_ds, info = make_datasets(
        data=data, batch_size=16, validation_split=0.25, augment=True)
    again, _, _ = make_datasets(data=data, batch_size=16, validation_split=0.25, augment=True)
    assert (info.name, info.train_size, info.val_size, info.num_classes) == ("user", 48, 16, 10)
    plain_x, plain_y = next(iter(plain))
    aug_x, aug_y = next(iter(augmented))
    assert aug_x.shape == (16, 32, 32, 3) and aug_x.dtype.name == "float32"
    np.testing.assert_array_equal(plain_y, aug_y)  # same seed, same order
    assert not np.allclose(plain_x, aug_x)
    np.testing.assert_array_equal(aug_x, next(iter(again))[0])  # reproducible
    assert next(iter(val_ds))[0].shape == (16, 32, 32, 3)


def test_cifar_is_augmented_by_default(monkeypatch):
    from vgzoo.data import images

    monkeypatch.setattr(images, "load_arrays", lambda name, split: _random_cifar())
    default, _, info = images.make_datasets("cifar10", batch_size=8)
    plain, _, _ = images.make_datasets("cifar10", batch_size=8, augment=False)
    assert info.num_classes == 10 and info.train_size + info.val_size == 64
    assert not np.allclose(next(iter(default))[0], next(iter(plain))[0])


def test_grayscale_floats_get_a_channel_and_no_validation():
    from vgzoo.data import make_datasets

    x = np.random.default_rng(0).random((20, 8, 8)).astype(np.float64)
    train_ds, val_ds, info = make_datasets(data=(x, np.arange(20) % 3), validation_split=0)
    assert val_ds is None and info.input_shape == (8, 8, 1) and info.num_classes == 3
    batch = next(iter(train_ds))[0].numpy()
    assert batch.shape == (20, 8, 8, 1) and abs(batch.mean()) < 1e-5


GOOD_X = np.zeros((10, 8, 8, 3), np.uint8)
GOOD_Y = np.arange(10)


@pytest.mark.parametrize("data, match", [
    ((np.zeros((10, 8)), GOOD_Y), "data x has shape"),
    ((GOOD_X, GOOD_Y[:, None]), "data y has shape"),
    ((GOOD_X, GOOD_Y[:5]), "data y has shape"),
    ((GOOD_X, GOOD_Y.astype(float)), "class labels"),
    ((GOOD_X, GOOD_Y - 1), "class labels"),
    ((GOOD_X.astype(np.int16) + 300, GOOD_Y), "must be 0..255"),
    ((GOOD_X,), "pair"),
])
def test_bad_user_arrays(data, match):
    from vgzoo.data import make_datasets

    with pytest.raises(VgzooError, match=match):
        make_datasets(data=data)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"limit": 0}, "limit must be a positive integer"),
    ({"validation_split": 1.0}, r"validation_split must be a number in \[0, 1\)"),
    ({"validation_split": -0.1}, "validation_split must be"),
    ({"validation_split": "0.1"}, "validation_split must be"),
    ({"limit": 3}, "raise limit"),
])
def test_bad_arguments(kwargs, match):
    from vgzoo.data import make_datasets

    with pytest.raises(VgzooError, match=match):
        make_datasets(data=(GOOD_X, GOOD_Y), **kwargs)


def test_bad_names(offline):
    from vgzoo.data import make_datasets

    with pytest.raises(VgzooError, match="unknown dataset 'mnits'. Did you mean 'mnist'"):
        make_datasets("mnits")
    with pytest.raises(VgzooError, match="not both"):
        make_datasets("mnist", data=(GOOD_X, GOOD_Y))
    with pytest.raises(VgzooError, match="not both and not neither"):
        make_datasets()
    with pytest.raises(VgzooError, match="unknown source_split"):
        make_datasets("mnist", source_split="val")

