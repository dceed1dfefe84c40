import os
from pathlib import Path

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
