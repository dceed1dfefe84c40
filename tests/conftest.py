import os
from pathlib import Path

import keras
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def mnist_data_dir(monkeypatch):
    """The real MNIST test split: $VGZOO_DATA_DIR, else ../shared/data beside the repo."""
    folder = Path(os.environ.get("VGZOO_DATA_DIR") or SHARED_DATA)
    if not (folder / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the MNIST test split is not in {folder}")
    monkeypatch.setenv("VGZOO_DATA_DIR", str(folder))
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    return folder


@pytest.fixture(scope="module")
def mnist_data_dir_for_module():
    """As `mnist_data_dir`, for module-scoped fixtures that train once."""
    folder = Path(os.environ.get("VGZOO_DATA_DIR") or SHARED_DATA)
    if not (folder / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the MNIST test split is not in {folder}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VGZOO_DATA_DIR", str(folder))
        patch.setenv("VGZOO_OFFLINE", "1")
        yield folder


@pytest.fixture(scope="session")
def tiny_log_folder(tmp_path_factory):
    """A tiny real log folder of a convnet pair and a sequence pair (tests/browser/tiny_runs.py)."""
    import sys
    import warnings

    folder = Path(os.environ.get("VGZOO_DATA_DIR") or SHARED_DATA)
    if not (folder / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the MNIST test split is not in {folder}")
    sys.path.insert(0, str(Path(__file__).parent / "browser"))
    import tiny_runs

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("VGZOO_DATA_DIR", str(folder))
        patch.setenv("VGZOO_OFFLINE", "1")
        warnings.simplefilter("ignore", UserWarning)  # training on the MNIST test split, on purpose
        return tiny_runs.folder(tmp_path_factory)


@pytest.fixture
def float64():
    """Float64 keeps summation-order noise (~1e-5 in float32) out of comparisons."""
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(previous_floatx)
    keras.config.set_dtype_policy(previous_policy)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: real processes, 10 s or more each (TensorFlow start-ups, signals, a bench run); "
        "`make test-slow` runs them, and CI runs both")
