"""Nothing lost, nothing let in: the fault matrix a hostile user ran, kept as tests.

Each case uses real commands on real files: `vgzoo` in this process where
no signal is involved (it is the same `main` the console script runs), real
child processes and real signals where one is. The slow ones (several
TensorFlow start-ups each) carry the `slow` marker; `.ci/run` runs them too.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from vgzoo.cli import commands as cli
from vgzoo.pretrained import manifest
from vgzoo.storage import TEMPORARY_PREFIX, file_digest

ADDING = ["--dataset", "adding", "--seq-len", "20", "--steps-per-epoch", "10", "--width", "8", "--verbose", "0"]


def _train(logdir, *extra, epochs=2):
    return cli.main(["train", "lstm", *ADDING, "--epochs", str(epochs), "--logdir", str(logdir), *extra])


def _one_error_line(capsys):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vgzoo: error: "), lines
    return lines[0]


def _snapshot(folder):
    return {path.relative_to(folder): file_digest(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "run.lock"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("finished") / "logs"
    assert _train(logdir, "--run-name", "same") == 0
    return logdir, logdir / "adding" / "lstm" / "same"


def test_a_finished_run_is_never_overwritten(finished_run, capsys):
    logdir, run_dir = finished_run
    before = _snapshot(run_dir)
    capsys.readouterr()
    assert _train(logdir, "--run-name", "same", "--lr", "0.01") == 2
    assert "already holds a finished run" in _one_error_line(capsys)
    assert _train(logdir, "--run-name", "same") == 2  # the very same command too
    assert _snapshot(run_dir) == before


def _interrupted_copy(run_dir, tmp_path):
    """A copy of a finished run whose state says it stopped after epoch 1 of 2."""
    copy = tmp_path / "logs" / "adding" / "lstm" / "cut"
    shutil.copytree(run_dir, copy)
    state = json.loads((copy / "state.json").read_text())
    state.pop("finished")
    state.update(epoch=1, step=10)
    (copy / "state.json").write_text(json.dumps(state))
    return copy, state


def test_an_interrupted_copy_resumes_and_finishes(finished_run, tmp_path, capsys):
    copy, _ = _interrupted_copy(finished_run[1], tmp_path)
    assert _train(tmp_path / "logs", "--run-name", "cut") == 0
    assert "resumed" in capsys.readouterr().out
    assert json.loads((copy / "state.json").read_text())["finished"] is True


@pytest.mark.parametrize("damage, expected", [
    ("truncated weights", "state-epoch2.weights.h5 is damaged"),
    ("corrupt state.json", "state.json is damaged"),
    ("corrupt config.json", "config.json is damaged"),
])
def test_a_damaged_state_is_reported_and_never_silently_replaced(finished_run, tmp_path, capsys, damage, expected):
    copy, state = _interrupted_copy(finished_run[1], tmp_path)
    if damage == "truncated weights":
        weights = copy / state["weights"]
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        (copy / damage.split()[1]).write_text("{ half a fi")
    events_before = sorted(copy.rglob("events.out.tfevents.*"))
    capsys.readouterr()
    for extra in (["--run-name", "cut"], []):  # named, and found by its fingerprint
        assert _train(tmp_path / "logs", *extra) == 2
        line = _one_error_line(capsys)
        assert expected in line and "--no-resume" in line
    assert sorted(copy.rglob("events.out.tfevents.*")) == events_before
    assert sorted(p.name for p in (tmp_path / "logs" / "adding" / "lstm").iterdir()) == ["cut"]


def test_no_resume_on_an_interrupted_named_run_is_refused(finished_run, tmp_path, capsys):
    _interrupted_copy(finished_run[1], tmp_path)
    capsys.readouterr()
    assert _train(tmp_path / "logs", "--run-name", "cut", "--no-resume") == 2
    assert "holds an interrupted run: drop --no-resume" in _one_error_line(capsys)


def test_run_files_get_ordinary_permissions_and_no_leftovers(finished_run):
    run_dir = finished_run[1]
    for name in ("config.json", "best.weights.h5", "last.weights.h5", "state.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~_umask(), name
    assert not list(run_dir.glob(f"{TEMPORARY_PREFIX}*"))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_killed_writers_leftovers_are_removed_on_resume(finished_run, tmp_path):
    copy, _ = _interrupted_copy(finished_run[1], tmp_path)
    leftover = copy / f"{TEMPORARY_PREFIX}last.weights.h5.abc123.weights.h5"
    leftover.write_bytes(b"half a file")
    assert _train(tmp_path / "logs", "--run-name", "cut") == 0
    assert not leftover.exists()


# ------------------------------------------------------------- the manifest
def _models_with(tmp_path, monkeypatch, **changes):
    repo_models = Path(__file__).resolve().parents[1] / "models"
    folder = tmp_path / "models"
    shutil.copytree(repo_models, folder)
    entries = manifest.read_manifest(folder)
    entries[0].update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del entries[0][key]
    (folder / "manifest.json").write_text(json.dumps(entries))
    monkeypatch.setenv(manifest.MODELS_DIR_ENV, str(folder))
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    return folder, entries[0]


@pytest.mark.parametrize("changes, expected", [
    (dict(file="/etc/passwd"), "not a plain *.weights.h5 name"),
    (dict(file="../../../../etc/passwd"), "not a plain *.weights.h5 name"),
    (dict(file="../escape.weights.h5"), "not a plain *.weights.h5 name"),
    (dict(file=None), "has no valid 'file'"),
    (dict(model=None), "has no valid 'model'"),
    (dict(knobs="width=8"), "has no valid 'knobs'"),
    (dict(sha256=None), "has no 'sha256'"),
])
@pytest.mark.parametrize("command", [["verify"], ["list", "--pretrained"]])
def test_a_manifest_entry_cannot_point_anywhere(tmp_path, monkeypatch, capsys, changes, expected, command):
    _models_with(tmp_path, monkeypatch, **changes)
    capsys.readouterr()
    assert cli.main(command) == 2
    line = _one_error_line(capsys)
    assert expected in line and "entry 1 of" in line
    assert "sha256 " not in line.split("entry 1")[0]  # nothing outside was read or hashed


def test_loading_through_a_bad_entry_is_one_line_and_creates_nothing(tmp_path, monkeypatch):
    import vgzoo

    _models_with(tmp_path, monkeypatch, file="../../outside/x.weights.h5")
    monkeypatch.delenv("VGZOO_OFFLINE")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(vgzoo.VgzooError, match="not a plain"):
        vgzoo.load("rnn", dataset="adding")
    assert not (tmp_path / "outside").exists() and not (tmp_path / "keras").exists()


# --------------------------------------------------------------- publishing
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A 2-epoch and a 1-epoch run of the same checkpoint."""
    logdir = tmp_path_factory.mktemp("publish") / "logs"
    assert _train(logdir, "--run-name", "long", epochs=2) == 0
    assert _train(logdir, "--run-name", "short", epochs=1) == 0
    return logdir / "adding" / "lstm" / "long", logdir / "adding" / "lstm" / "short"


def test_publish_refuses_a_shorter_run_without_force(two_runs, tmp_path, monkeypatch, capsys):
    long_run, short_run = two_runs
    monkeypatch.setenv(manifest.MODELS_DIR_ENV, str(tmp_path / "models"))
    assert cli.main(["publish", str(long_run)]) == 0
    published = manifest.read_manifest(tmp_path / "models")
    capsys.readouterr()
    assert cli.main(["publish", str(short_run)]) == 2
    assert "trained 10 steps, the published one 20" in _one_error_line(capsys)
    assert manifest.read_manifest(tmp_path / "models") == published
    assert cli.main(["publish", str(short_run), "--force"]) == 0
    (entry,) = manifest.read_manifest(tmp_path / "models")
    assert entry["steps"] == 10
    files = sorted(p.name for p in (tmp_path / "models").glob("*.weights.h5"))
    assert files == [entry["file"]], "the replaced file goes once the manifest names the new one"


def _consistent(folder):
    """Every entry of the manifest names a file that matches its sha256."""
    entries = manifest.read_manifest(folder)
    return all(file_digest(folder / entry["file"]) == entry["sha256"] for entry in entries)


@pytest.mark.slow
def test_a_kill_during_publish_leaves_a_valid_checkpoint(two_runs, tmp_path):
    long_run, short_run = two_runs
    folder = tmp_path / "models"
    environment = dict(os.environ, VGZOO_MODELS_DIR=str(folder), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "vgzoo", "publish", "--force"]
    subprocess.run([*command, str(long_run)], env=environment, check=True, capture_output=True)
    started = time.monotonic()
    subprocess.run([*command, str(short_run)], env=environment, check=True, capture_output=True)
    duration = time.monotonic() - started
    for fraction in (0.5, 0.8, 0.9, 0.95, 0.99):
        child = subprocess.Popen([*command, str(long_run)], env=environment,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        child.kill()
        child.wait()
        assert _consistent(folder), f"manifest and file disagree after a kill at {fraction:.0%}"


@pytest.mark.slow
def test_two_publishes_at_once_keep_both_entries(two_runs, tmp_path):
    logdir = tmp_path / "logs"
    assert cli.main(["train", "rnn", *ADDING, "--epochs", "1", "--logdir", str(logdir), "--run-name", "r"]) == 0
    folder = tmp_path / "models"
    environment = dict(os.environ, VGZOO_MODELS_DIR=str(folder), TF_CPP_MIN_LOG_LEVEL="3")
    runs_to_publish = (two_runs[0], logdir / "adding" / "rnn" / "r")
    children = [subprocess.Popen([sys.executable, "-m", "vgzoo", "publish", str(run)], env=environment,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for run in runs_to_publish]
    for child in children:
        assert child.wait(timeout=300) == 0, child.stderr.read()
    assert sorted(entry["model"] for entry in manifest.read_manifest(folder)) == ["lstm", "rnn"]
    assert _consistent(folder)


# ------------------------------------------------------------------ signals
def _training_child(logdir, *extra, session=False):
    command = [sys.executable, "-m", "vgzoo", "train", "lstm", *ADDING, "--epochs", "40",
               "--logdir", str(logdir), "--run-name", "long", *extra]
    return subprocess.Popen(command, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=session)


def _wait_for_epoch(run_dir, epoch, child, limit=240):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if json.loads((run_dir / "state.json").read_text())["epoch"] >= epoch:
                return
        except (OSError, ValueError, KeyError):
            pass
        assert child.poll() is None, child.communicate()
        time.sleep(0.2)
    raise AssertionError(f"no epoch {epoch} within {limit} s")


@pytest.mark.slow
@pytest.mark.parametrize("signal_number, status, word", [
    (signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_stops_after_the_step_saves_and_says_where(tmp_path, signal_number, status, word):
    run_dir = tmp_path / "logs" / "adding" / "lstm" / "long"
    child = _training_child(tmp_path / "logs", session=True)
    _wait_for_epoch(run_dir, 2, child)
    os.killpg(child.pid, signal_number)  # the whole process group, as Ctrl-C and Slurm do
    out, err = child.communicate(timeout=120)
    assert child.returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and word in lines[0] and str(run_dir) in lines[0], err
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] >= 2 and not state.get("finished")
    # Rerunning the same command resumes from the last completed epoch.
    again = _training_child(tmp_path / "logs", "--epochs", str(state["epoch"] + 1))
    out, err = again.communicate(timeout=300)
    assert again.returncode == 2 and "other settings" in err  # epochs is part of what is trained
    again = _training_child(tmp_path / "logs")
    _wait_for_epoch(run_dir, state["epoch"] + 1, again)
    again.send_signal(signal.SIGTERM)
    out, err = again.communicate(timeout=120)
    assert f"resumed {run_dir} from epoch {state['epoch']}" in out


# ---------------------------------------------------------------- full disk
def _small_disk(tmp_path, megabytes):
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (needs root and CAP_SYS_ADMIN)")
    return mount


@pytest.fixture
def small_disk(tmp_path):
    mount = _small_disk(tmp_path, 2)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_disk_that_fills_up_during_training_is_one_line(small_disk):
    command = [sys.executable, "-m", "vgzoo", "train", "lstm", *ADDING, "--epochs", "500", "--hist-every", "1",
               "--logdir", str(small_disk / "logs"), "--run-name", "full"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "is full" in lines[0] and "free some space" in lines[0], result.stderr[-3000:]


def test_a_disk_full_at_start_leaves_no_run_folder(small_disk, capsys):
    (small_disk / "logs" / "adding" / "lstm").mkdir(parents=True)
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    assert _train(small_disk / "logs", "--run-name", "nospace") == 2
    assert "is full" in _one_error_line(capsys)
    assert not (small_disk / "logs" / "adding" / "lstm" / "nospace").exists()


# ------------------------------------------------------------------- inputs
def test_mirrored_with_one_replica_works_like_the_default(tmp_path, capsys):
    assert cli.main(["train", "lstm", *ADDING, "--epochs", "1", "--strategy", "mirrored",
                     "--logdir", str(tmp_path)]) == 0


def test_user_labels_beyond_num_classes_and_nan_inputs_are_refused(tmp_path):
    import numpy as np

    import vgzoo

    images = np.random.default_rng(0).uniform(size=(32, 8, 8, 1)).astype("float32")
    labels = np.arange(32) % 11
    with pytest.raises(vgzoo.VgzooError, match="holds label 10 but num_classes=10"):
        vgzoo.train("mlp10", data=(images, labels), num_classes=10, epochs=1, logdir=tmp_path, verbose=0)
    images[3, 0, 0, 0] = np.nan
    with pytest.raises(vgzoo.VgzooError, match="NaN or infinite values .image 3"):
        vgzoo.train("mlp10", data=(images, labels % 10), epochs=1, logdir=tmp_path, verbose=0)
    assert not any(tmp_path.rglob("*"))


def test_match_params_records_the_width_it_trained(tmp_path):
    assert cli.main(["train", "lstm", *ADDING, "--epochs", "1", "--match-params", "600",
                     "--logdir", str(tmp_path), "--run-name", "m"]) == 0
    config = json.loads((tmp_path / "adding" / "lstm" / "m" / "config.json").read_text())
    with h5py.File(tmp_path / "adding" / "lstm" / "m" / "best.weights.h5") as weights:
        shapes = []
        weights.visititems(lambda name, item: shapes.append(item.shape) if hasattr(item, "shape") else None)
    assert config["model"]["arguments"]["width"] * 4 in {shape[-1] for shape in shapes if len(shape) == 2}
