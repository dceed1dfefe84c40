"""Several workers, one run: `--strategy multiworker` with two real workers on loopback ports.

Each worker is a `vgzoo train` process with its own TF_CONFIG, as on two
machines. The workers train on the batches one process would (each keeps its
rows of every batch), so a single-process run of the same command is the
reference the losses are held to.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo
from vgzoo.analysis.events import scalar_series
from vgzoo.errors import VgzooError
from vgzoo.training import cluster, resume

SEQUENCE = ["lstm", "--dataset", "adding", "--seq-len", "20", "--steps-per-epoch", "10",
            "--width", "8", "--optimizer", "adam", "--hist-every", "5"]
SEQUENCE_RUN = [*SEQUENCE, "--epochs", "3"]
IMAGES = ["mlp10", "--dataset", "mnist", "--data-split", "test", "--limit", "600",
          "--validation-split", "0.2", "--width", "16", "--batch-size", "64", "--optimizer", "sgd"]
# The same batches, summed in another order across workers: float32 rounding only.
LOSS_RTOL = 1e-5
WORKERS = 2
TIMEOUT = 150


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _environment(tmp_path, tf_config=None):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp_path / "tmp"),
                       VGZOO_OFFLINE="1", PYTHONWARNINGS="ignore")
    environment.pop("TF_CONFIG", None)
    if tf_config is not None:
        environment["TF_CONFIG"] = json.dumps(tf_config)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return environment


def _command(args, logdir, strategy):
    return [sys.executable, "-m", "vgzoo", "train", *args, "--logdir", str(logdir),
            "--strategy", strategy, "--verbose", "2"]


def _start_workers(tmp_path, args, logdir):
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(WORKERS)]
    return [
        subprocess.Popen(
            _command(args, logdir, "multiworker"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_environment(tmp_path, {"cluster": {"worker": addresses},
                                                   "task": {"type": "worker", "index": index}}),
        )
        for index in range(WORKERS)
    ], addresses


def _finish(processes, timeout=TIMEOUT):
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        results.append((process.returncode, out, err))
    return results


def _train_workers(tmp_path, args, logdir):
    processes, _ = _start_workers(tmp_path, args, logdir)
    results = _finish(processes)
    for returncode, out, err in results:
        assert returncode == 0, err[-3000:]
    return results


def _train_alone(tmp_path, args, logdir, strategy="default"):
    result = subprocess.run(_command(args, logdir, strategy), capture_output=True, text=True,
                            env=_environment(tmp_path), timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return _run_folder(result.stdout)


def _run_folder(stdout):
    return Path(re.search(r"^run folder: (.+)$", stdout, re.MULTILINE).group(1))


def _events(run_dir):
    events = EventAccumulator(str(run_dir / "train"), size_guidance={"histograms": 0, "tensors": 0})
    events.Reload()
    return events


def _files(logdir):
    """Every file under `logdir`, the time, host and process id taken out of event file names."""
    return sorted(re.sub(r"tfevents\.\d+\.[^.]+\.\d+\.", "tfevents.", str(path.relative_to(run)))
                  for run in _runs(logdir) for path in run.rglob("*") if path.is_file())


def _runs(logdir):
    return sorted(path for path in Path(logdir).glob("*/*/*") if path.is_dir())


def _assert_losses_match(run_dir, reference_dir):
    losses = scalar_series(_events(run_dir), "step_loss")
    reference = scalar_series(_events(reference_dir), "step_loss")
    assert [step for step, _ in losses] == [step for step, _ in reference]
    np.testing.assert_allclose([value for _, value in losses], [value for _, value in reference],
                               rtol=LOSS_RTOL)
    return max(abs(a - b) / abs(b) for (_, a), (_, b) in zip(losses, reference))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the sequence command in one process, no strategy."""
    folder = tmp_path_factory.mktemp("one-process")
    return folder, _train_alone(folder, SEQUENCE_RUN, folder / "logs")


@pytest.mark.slow
def test_two_workers_train_one_run_as_one_process_would(tmp_path, one_process):
    """A sequence model with Adam: one run folder, written by the chief alone."""
    results = _train_workers(tmp_path, SEQUENCE_RUN, tmp_path / "multi")
    run_dir = _run_folder(results[0][1])
    assert _run_folder(results[1][1]) == run_dir, "every worker names the one run folder"
    assert run_dir.name.startswith(cluster.RUN_PREFIX)
    reference_logs, reference_dir = one_process[0] / "logs", one_process[1]

    worst = _assert_losses_match(run_dir, reference_dir)
    print(f"largest relative step_loss difference over 30 steps: {worst:.2e}")
    events, reference = _events(run_dir), _events(reference_dir)
    model = vgzoo.create_model("lstm", (20, 2), 1, width=8, head="value")
    for variable in model.trainable_variables:
        tag = f"gradients/{variable.path}"
        recorded = events.Histograms(tag)
        assert [event.step for event in recorded] == [event.step for event in reference.Histograms(tag)] \
            == list(range(0, 30, 5))
        # The all-reduced gradient the optimizer applied, written once.
        for mine, theirs in zip(recorded, reference.Histograms(tag)):
            mine, theirs = mine.histogram_value, theirs.histogram_value
            assert mine.num == theirs.num
            np.testing.assert_allclose([mine.min, mine.max, mine.sum], [theirs.min, theirs.max, theirs.sum],
                                       rtol=1e-4, atol=1e-7)
    # Nothing else: the files one process writes, from one process, and no scratch left over.
    assert _runs(tmp_path / "multi") == [run_dir]
    assert _files(tmp_path / "multi") == _files(reference_logs)
    writers = {re.search(r"\.(\d+)\.\d+\.[^.]+$", path.name).group(1)
               for path in run_dir.rglob("events.out.tfevents.*")}
    assert len(writers) == 1, f"event files from several processes: {writers}"
    assert not list((tmp_path / "tmp").glob(cluster.Scratch.PREFIX + "*")), "no scratch left over"
    assert json.loads((run_dir / "config.json").read_text())["replicas"] == WORKERS


@pytest.mark.slow
def test_two_workers_train_an_image_model_with_sgd(tmp_path, mnist_data_dir):
    """MNIST, shuffled: the reference is one process under a strategy too, which reads the
    shuffled order the workers read (Keras opens one more iterator under any strategy)."""
    args = [*IMAGES, "--epochs", "2"]
    run_dir = _run_folder(_train_workers(tmp_path, args, tmp_path / "multi")[0][1])
    reference_dir = _train_alone(tmp_path, args, tmp_path / "single", strategy="mirrored")
    worst = _assert_losses_match(run_dir, reference_dir)
    print(f"largest relative step_loss difference over 16 steps, a short last batch each epoch: {worst:.2e}")
    validation = EventAccumulator(str(run_dir / "validation"), size_guidance={"tensors": 0})
    validation.Reload()
    assert [step for step, _ in scalar_series(validation, "epoch_loss")] == [0, 1]


def _wait_for_epoch(logdir, process, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in Path(logdir).glob("*/*/*/state.json"):
            if (resume.read_state(path.parent) or {}).get("epoch", 0) >= 1:
                return path.parent
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError("no epoch was saved in time")


@pytest.mark.slow
def test_killed_worker_stops_the_other_and_both_resume(tmp_path, one_process):
    args = SEQUENCE_RUN
    logdir = tmp_path / "multi"
    started = time.monotonic()
    processes, addresses = _start_workers(tmp_path, args, logdir)
    run_dir = _wait_for_epoch(logdir, processes[0])
    processes[0].send_signal(signal.SIGKILL)  # the chief, which also leads the cluster
    killed_at = time.monotonic()
    print(f"epoch 1 saved after {killed_at - started:.0f} s")
    (returncode, _, err), = _finish(processes[1:], timeout=90)
    stopped_after = time.monotonic() - killed_at
    processes[0].wait()
    last_line = err.strip().splitlines()[-1]
    assert returncode == 2, err[-3000:]
    assert last_line.startswith(f"vgzoo: error: worker 0 ({addresses[0]}) stopped answering"), err[-3000:]
    saved = resume.read_state(run_dir)["epoch"]
    assert f"keeps epoch {saved}: start every worker again with the same command" in last_line
    assert stopped_after < 60, f"the survivor took {stopped_after:.0f} s to stop"

    print(f"the survivor stopped {stopped_after:.0f} s after the kill")
    rerun = time.monotonic()
    results = _train_workers(tmp_path, args, logdir)  # fresh ports: the run is found by its settings
    for _, out, _ in results:
        assert f"resumed {run_dir} from epoch {saved}" in out
    print(f"the rerun took {time.monotonic() - rerun:.0f} s")
    # Every step once, cut back to the saved epoch and continued: as one uninterrupted process.
    _assert_losses_match(run_dir, one_process[1])
    assert _runs(logdir) == [run_dir]
    assert not list((tmp_path / "tmp").glob(cluster.Scratch.PREFIX + "*")), "no scratch left over"


# The parts that need no cluster.

def _tf_config(task_type="worker", index=0, jobs=None):
    jobs = jobs or {"worker": ["a:1", "b:1", "c:1"]}
    return {"TF_CONFIG": json.dumps({"cluster": jobs, "task": {"type": task_type, "index": index}})}


def test_the_chief_is_worker_0_or_the_chief_task():
    assert cluster.from_environment(_tf_config("worker", 0)).is_chief
    second = cluster.from_environment(_tf_config("worker", 1))
    assert (second.is_chief, second.index, second.workers, second.address) == (False, 1, 3, "b:1")
    jobs = {"chief": ["c:1"], "worker": ["w:1", "w:2"]}
    assert cluster.from_environment(_tf_config("chief", 0, jobs)).is_chief
    worker = cluster.from_environment(_tf_config("worker", 0, jobs))
    assert (worker.is_chief, worker.index, worker.workers) == (False, 1, 3)


@pytest.mark.parametrize("environment, message", [
    ({}, "needs the cluster in TF_CONFIG"),
    ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not a cluster"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})}, "KeyError"),
    (_tf_config("ps", 0, {"ps": ["a:1"], "worker": ["b:1"]}), "'chief' and 'worker' tasks"),
    (_tf_config("worker", 3), "task worker 3 is not in the cluster"),
])
def test_a_bad_tf_config_is_one_line(environment, message):
    with pytest.raises(VgzooError, match=re.escape(message)):
        cluster.from_environment(environment)


def test_collective_timeout_is_checked():
    assert cluster.collective_timeout({}) == cluster.DEFAULT_COLLECTIVE_TIMEOUT
    assert cluster.collective_timeout({cluster.COLLECTIVE_TIMEOUT_ENV: "0"}) == 0
    with pytest.raises(VgzooError, match="number of seconds"):
        cluster.collective_timeout({cluster.COLLECTIVE_TIMEOUT_ENV: "soon"})


def _save_state(run_dir, **state):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / resume.STATE_FILE).write_text(json.dumps(state))


def test_workers_agree_on_the_run_folder_by_its_settings(tmp_path):
    base = cluster.RUN_PREFIX + "f00d"
    assert cluster.agreed_run_name(tmp_path, "f00d", True) == base
    _save_state(tmp_path / base, epoch=1, weights="w.h5")
    assert cluster.agreed_run_name(tmp_path, "f00d", True) == base, "an interrupted run is resumed"
    assert cluster.agreed_run_name(tmp_path, "f00d", False) == base + "-2"
    _save_state(tmp_path / base, finished=True)
    assert cluster.agreed_run_name(tmp_path, "f00d", True) == base + "-2", "a finished run is kept"


def _interrupted_run(logdir, record):
    run_dir = logdir / "adding" / "lstm" / (cluster.RUN_PREFIX + record["fingerprint"])
    _save_state(run_dir, epoch=2, step=20, weights="state-epoch2.weights.h5", best=None, monitor="loss")
    with h5py.File(run_dir / "state-epoch2.weights.h5", "w") as weights:
        weights["layer"] = np.zeros(3)
    (run_dir / "config.json").write_text(json.dumps(record))
    return run_dir


def test_a_worker_resumes_from_a_copy_in_its_scratch_and_removes_it(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    record = {"fingerprint": "cafe"}
    run_dir = _interrupted_run(tmp_path / "logs", record)
    before = sorted(path.name for path in run_dir.iterdir())
    worker = cluster.from_environment(_tf_config("worker", 1))
    run = cluster.open_run(tmp_path / "logs", "adding", "lstm", None, record, True, worker)
    assert run.shared_dir == run_dir and run.state["epoch"] == 2
    assert run.run_dir.parent == tmp_path and run.run_dir.name.startswith(cluster.Scratch.PREFIX)
    assert (run.run_dir / "state-epoch2.weights.h5").is_file()
    assert sorted(path.name for path in run_dir.iterdir()) == before, "the run folder is only read"
    run.lock.release()
    assert not run.run_dir.exists()


def test_a_killed_workers_scratch_is_removed_by_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(cluster, "_SCRATCH_GRACE_SECONDS", 0)
    worker = cluster.from_environment(_tf_config("worker", 1))
    abandoned = tmp_path / f"{cluster.Scratch.PREFIX}worker1-old"
    abandoned.mkdir()
    (abandoned / "run.lock").touch()  # nobody holds it: its worker died
    live = cluster.Scratch(worker)
    assert not abandoned.exists()
    other = cluster.Scratch(worker)
    assert live.path.exists(), "a live worker's scratch is locked, so kept"
    other.release()
    live.release()


def test_a_lost_worker_is_named_with_what_to_do(tmp_path):
    from tensorflow import errors

    worker = cluster.from_environment(_tf_config("worker", 1))
    run = cluster.ClusterRun(tmp_path, None, None, shared_dir=tmp_path, cluster=worker)
    _save_state(tmp_path, epoch=3, weights="w.h5")
    text = ("{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:1/"
            "device:CPU:0}} Collective ops is aborted by: Error reported from /job:worker/task:0: "
            "The following tasks are unhealthy (stopped sending heartbeats):\n"
            "/job:worker/replica:0/task:0\nThe tasks have crashed.")
    with pytest.raises(VgzooError) as raised, cluster.reported(run):
        raise errors.UnavailableError(None, None, text)
    assert str(raised.value) == (
        "worker 0 (a:1) stopped answering (its heartbeats stopped), so this worker (worker 1) "
        "stopped too; "
        f"{tmp_path} keeps epoch 3: start every worker again with the same command to resume from there.")
    with pytest.raises(VgzooError, match="kept this one waiting longer than VGZOO_COLLECTIVE_TIMEOUT"), \
            cluster.reported(run):
        raise errors.DeadlineExceededError(None, None, "Collective has timed out")
    with pytest.raises(errors.UnavailableError), cluster.reported(resume.OpenRun(tmp_path, None, None)):
        raise errors.UnavailableError(None, None, "not a cluster run: passed through")


def test_mirrored_with_one_replica_trains_like_the_default(tmp_path):
    """One GPU, or one CPU: the same streamed batches and the same losses as no strategy."""
    options = dict(dataset="adding", seq_len=20, steps_per_epoch=5, epochs=2, width=8,
                   optimizer="adam", verbose=0)
    default = vgzoo.train("lstm", logdir=tmp_path / "default", **options)
    mirrored = vgzoo.train("lstm", logdir=tmp_path / "mirrored", strategy="mirrored", **options)
    assert json.loads((mirrored.run_dir / "config.json").read_text())["replicas"] == 1
    np.testing.assert_allclose(mirrored.history["loss"], default.history["loss"], rtol=LOSS_RTOL)


class _Workers:
    """A strategy's `run` and `reduce` as seen by one worker, the others' flags given."""

    def __init__(self, others):
        self.others = others

    def run(self, function):
        return function()

    def reduce(self, op, value, axis):
        assert (op, axis) == ("SUM", None)
        return float(value) + sum(self.others)


class _Model:
    def __init__(self, others):
        self.distribute_strategy = _Workers(others)


def test_a_signal_on_any_worker_stops_all_after_the_same_step():
    from vgzoo.training.signals import InterruptFlag

    flag = InterruptFlag()
    alone = cluster.agreed_interrupt(resume.OpenRun(Path("."), None, None), flag)
    assert alone is flag and cluster.callbacks(alone) == [], "one process reads its own flag"

    run = cluster.ClusterRun(Path("."), None, None, shared_dir=Path("."), cluster=None)
    agreed = cluster.agreed_interrupt(run, flag)
    assert cluster.callbacks(agreed) == [agreed]
    agreed.set_model(_Model(others=[0.0]))
    flag.raised, flag.reason, flag.signal = True, "interrupted", signal.SIGTERM
    assert not agreed.raised, "the signal is seen only once the workers agree"
    agreed.on_train_batch_end(0)
    assert (agreed.raised, agreed.reason, agreed.signal) == (True, "interrupted", signal.SIGTERM)

    other = cluster.agreed_interrupt(run, InterruptFlag())  # another worker, not signalled
    other.set_model(_Model(others=[1.0]))
    other.on_epoch_end(0)
    assert (other.raised, other.reason, other.signal) == (True, "interrupted", None)
    other.stop("loss is NaN")  # a diverged run keeps its reason
    assert other.reason == "loss is NaN"
