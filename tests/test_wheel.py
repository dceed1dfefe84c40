"""Installed from a wheel, vgzoo lists and loads its shipped checkpoints offline from any folder;
a checkpoint that is not shipped is fetched only from a URL the user sets, else a one-line error."""
import configparser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import vgzoo
from vgzoo.pretrained import manifest, weights
from vgzoo.storage import file_digest

ROOT = Path(__file__).resolve().parents[1]
# What a build reads. The wheel is built from a copy so that its build/ and *.egg-info stay
# out of the checkout and nothing untracked (run logs, caches) can slip into it.
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE", "vgzoo", "models")
# The environment variables that would point vgzoo elsewhere than the installed package.
REDIRECTS = ("VGZOO_MODELS_DIR", "VGZOO_WEIGHTS_URL", "PYTHONHOME", "PYTHONSTARTUP")
LOAD = """
import json, sys
import numpy as np
import vgzoo
from vgzoo.pretrained import manifest, weights
entry = manifest.find_entry("lstm", "adding", 200)
model = vgzoo.load("lstm", dataset="adding", seq_len=200)
fresh = vgzoo.load("lstm", dataset="adding", seq_len=200, pretrained=False)
print(json.dumps({
    "vgzoo": vgzoo.__file__, "models_dir": str(manifest.models_dir()),
    "weights": str(weights.locate(entry)), "params": model.count_params(),
    "trained": any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights())),
}))
"""


def _published_files(folder):
    return sorted(entry["file"] for entry in manifest.published(manifest.read_manifest(folder)))


def test_every_subpackage_is_listed_in_setup_cfg():
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "vgzoo").rglob("__init__.py")}
    missing = sorted(found - listed)
    assert not missing, (f"add {', '.join(missing)} to [options] packages in setup.cfg: "
                         "a wheel leaves out every package not listed there")
    assert "vgzoo.models" in listed, "the published checkpoints ship as the package vgzoo.models"


def _can_build_offline():
    """setuptools (>= 64) and wheel here: the wheel builds without fetching a build environment."""
    try:
        import setuptools
    except ImportError:
        return False
    major = int(setuptools.__version__.split(".")[0])
    return major >= 64 and (major >= 71 or importlib.util.find_spec("wheel") is not None)


def _run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed with --target into a folder of its own."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).is_file():
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    isolation = ["--no-build-isolation"] if _can_build_offline() else []  # else pip fetches setuptools
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
          "--wheel-dir", str(work / "dist"), str(source)], cwd=work)
    (wheel,) = (work / "dist").glob("vgzoo-*.whl")
    site = work / "site"
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
          "--target", str(site), str(wheel)], cwd=work)
    elsewhere = work / "elsewhere"  # a working directory with no vgzoo and no models/ in it
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in REDIRECTS}
    # The wheel's vgzoo first; TensorFlow and Keras from this interpreter's site-packages.
    env.update(PYTHONPATH=str(site), VGZOO_OFFLINE="1", KERAS_HOME=str(work / "keras"),
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    return wheel, site, elsewhere, env


def test_the_wheel_ships_the_published_checkpoints_and_bounds_keras_and_tensorflow(installed):
    wheel, _, _, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip().replace(" ", "")
                    for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    assert "vgzoo/models/manifest.json" in names
    missing = [file for file in _published_files(ROOT / "models") if f"vgzoo/models/{file}" not in names]
    assert not missing, f"the wheel leaves out the published checkpoints {missing}"
    assert not [name for name in names if name.startswith("models/")], "models/ must ship inside vgzoo"
    # Data beside the code (the TensorBoard plugin's page, say) ships only if package_data names it.
    data = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "vgzoo").rglob("*")
                  if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts)
    unshipped = [name for name in data if name not in names]
    assert not unshipped, f"the wheel leaves out {unshipped}: add them to [options.package_data] in setup.cfg"
    for package, major in (("keras", "3"), ("tensorflow", "2")):
        (bound,) = [r for r in requires if r.split(";")[0].rstrip("<>=!~.,0123456789") == package]
        next_major = f"<{int(major) + 1}"
        assert f">={major}." in bound and next_major in bound, f"{package} needs both bounds, not {bound}"


def test_the_installed_wheel_lists_and_loads_offline_from_another_folder(installed):
    _, site, elsewhere, env = installed
    script = site / "bin" / "vgzoo"  # the console script, run by this interpreter
    listing = _run([sys.executable, str(script), "list", "--pretrained"], cwd=elsewhere, env=env)
    published = _published_files(ROOT / "models")
    assert f"{len(published)} published;" in listing and "lstm" in listing

    out = _run([sys.executable, "-c", LOAD], cwd=elsewhere, env=env)
    report = json.loads(out.strip().splitlines()[-1])
    package = (site / "vgzoo").resolve()
    assert Path(report["vgzoo"]).resolve().parent == package, f"vgzoo came from {report['vgzoo']}, not the wheel"
    assert Path(report["models_dir"]).resolve() == package / "models"
    assert Path(report["weights"]).resolve() == package / "models" / "lstm-adding-T200.weights.h5"
    assert report["params"] > 0 and report["trained"], "the loaded lstm still has its initial weights"


@pytest.fixture
def unshipped(tmp_path, monkeypatch):
    """A models folder with the manifest but not the weight file of its first published entry."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy2(ROOT / "models" / manifest.MANIFEST_NAME, folder)
    for name in ("VGZOO_OFFLINE", weights.WEIGHTS_URL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(manifest.MODELS_DIR_ENV, str(folder))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty download cache
    return folder, manifest.published()[0]


def test_no_shipped_file_and_no_url_is_a_one_line_error(unshipped, monkeypatch):
    folder, entry = unshipped
    assert all("github.com/vgzoo" not in (e.get("url") or "") for e in manifest.read_manifest()), \
        "the made-up release URL is back in the manifest"
    with pytest.raises(vgzoo.VgzooError) as refused:
        weights.locate(entry)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"the checkpoint file {entry['file']} for {manifest.label(entry)} is not "
                              f"here and has no download URL: put it in {folder}")
    assert f"set {weights.WEIGHTS_URL_ENV} to a base URL that serves it" in message

    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    with pytest.raises(vgzoo.VgzooError, match=rf"forbids downloading it: put it in {folder} .*"
                       rf"or unset VGZOO_OFFLINE and set {weights.WEIGHTS_URL_ENV} to"):
        weights.locate(entry)


def test_a_file_not_shipped_is_fetched_from_the_url_the_user_sets(unshipped, tmp_path, monkeypatch):
    folder, entry = unshipped
    # The user's base URL wins over an entry's own url (here one that goes nowhere).
    entries = manifest.read_manifest(folder)
    for other in entries:
        other["url"] = (tmp_path / "nowhere" / other["file"]).as_uri()
    manifest.write_manifest(entries, folder)
    monkeypatch.setenv(weights.WEIGHTS_URL_ENV, (ROOT / "models").as_uri() + "/")
    assert weights.origin(entry) == (ROOT / "models" / entry["file"]).as_uri()
    path = weights.locate(entry)
    assert path == tmp_path / "keras" / manifest.CACHE_SUBDIR / entry["file"]
    assert file_digest(path) == entry["sha256"]
