"""Nothing lost: real processes, real kills, and what is left on disk afterwards."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo

TRAIN = [
    sys.executable, "-m", "vgzoo", "train", "mlp10", "--width", "64", "--dataset", "mnist",
    "--data-split", "test", "--limit", "10000", "--validation-split", "0.2", "--batch-size", "16",
    "--epochs", "3", "--hist-every", "25", "--verbose", "0",
    # SGD at its default 0.1 diverges on this plain MLP within 20 steps; the guard would stop it.
    "--lr", "0.01",
]
STEPS_PER_EPOCH = 500


def start(logdir, *extra):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [*TRAIN, "--logdir", str(logdir), *extra], env=environment,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_dirs(logdir):
    return sorted((logdir / "mnist" / "mlp10").iterdir())


def wait_for_epoch(logdir, epoch, process, timeout=300):
    """Polls the run's saved state until `epoch` epochs are complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for run_dir in (logdir / "mnist" / "mlp10").glob("*"):
            state = run_dir / "state.json"
            if state.exists() and json.loads(state.read_text())["epoch"] >= epoch:
                return run_dir
        time.sleep(0.02)
    raise AssertionError(f"epoch {epoch} never completed")


def final_weights(run_dir):
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=64)
    model.load_weights(run_dir / "last.weights.h5")
    return [w.numpy() for w in model.weights]


def steps(run_dir, folder, tag):
    events = EventAccumulator(str(run_dir / folder), size_guidance={"tensors": 0})
    events.Reload()
    return [event.step for event in events.Tensors(tag)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_data_dir_for_module):
    logdir = tmp_path_factory.mktemp("uninterrupted")
    process = start(logdir)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    (run_dir,) = run_dirs(logdir)
    return run_dir


def test_sigkill_mid_epoch_then_the_same_command_resumes_bitwise(mnist_data_dir, uninterrupted, tmp_path):
    process = start(tmp_path)
    run_dir = wait_for_epoch(tmp_path, 1, process)
    time.sleep(0.3)  # into the second epoch
    process.kill()
    process.wait()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 1

    resumed = start(tmp_path)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert f"resumed {run_dir} from epoch 1" in stdout
    assert run_dirs(tmp_path) == [run_dir], "the resumed run appends to the same folder"

    for expected, actual in zip(final_weights(uninterrupted), final_weights(run_dir)):
        np.testing.assert_array_equal(actual, expected)  # bitwise: CPU kernels are deterministic
    assert steps(run_dir, "train", "step_loss") == list(range(3 * STEPS_PER_EPOCH))
    assert steps(run_dir, "train", "grad_norm/00_stem_dense") == list(range(0, 3 * STEPS_PER_EPOCH, 25))
    assert steps(run_dir, "train", "epoch_loss") == [0, 1, 2]
    assert steps(run_dir, "validation", "epoch_loss") == [0, 1, 2]
    assert steps(run_dir, "train", "config") == [0]


def test_sigint_stops_after_the_step_and_says_where_things_are(mnist_data_dir, tmp_path):
    process = start(tmp_path)
    run_dir = wait_for_epoch(tmp_path, 1, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted after step" in stderr and str(run_dir) in stderr
    assert "Traceback" not in stderr
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=64)
    model.load_weights(run_dir / "last.weights.h5")
    recorded = steps(run_dir, "train", "step_loss")
    assert recorded and recorded == sorted(set(recorded)), "events so far were written"
    assert json.loads((run_dir / "state.json").read_text())["epoch"] >= 1


def test_two_runs_started_together_never_share_a_folder(mnist_data_dir, tmp_path):
    processes = [start(tmp_path, "--epochs", "1", "--limit", "640") for _ in range(2)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    first, second = run_dirs(tmp_path)
    for run_dir in (first, second):
        assert len(list((run_dir / "train").glob("events.out.tfevents.*"))) == 1
        assert steps(run_dir, "train", "step_loss") == list(range(32))
        assert (run_dir / "last.weights.h5").is_file()


SAVE_LOOP = """
import sys, itertools, json
import keras, numpy as np
from vgzoo.training.resume import atomic_save_weights
from vgzoo.training.runs import atomic_write_text
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(512)])
print("ready", flush=True)
for i in itertools.count():
    model.layers[0].kernel.assign(np.full((64, 512), float(i), "float32"))
    atomic_save_weights(model, sys.argv[1] + "/model.weights.h5")
    atomic_write_text(sys.argv[1] + "/config.json", json.dumps({"i": i, "pad": "x" * 100000}))
"""


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.1])
def test_a_kill_during_saves_leaves_a_whole_file(tmp_path, delay):
    process = subprocess.Popen(
        [sys.executable, "-c", SAVE_LOOP, str(tmp_path)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert process.stdout.readline().strip() == "ready"
    time.sleep(delay)
    process.kill()
    process.wait()
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(512)])
    model.load_weights(tmp_path / "model.weights.h5")
    kernel = model.layers[0].kernel.numpy()
    assert np.all(kernel == kernel.flat[0]), "one save's weights, not a mix"
    assert json.loads((tmp_path / "config.json").read_text())["pad"] == "x" * 100000
    leftovers = {path.name for path in tmp_path.iterdir() if not path.name.startswith(".")}
    assert leftovers == {"model.weights.h5", "config.json"}
