"""Several workers, one run: who is chief, which run folder, where each worker writes.

TF_CONFIG, the JSON that `tf.distribute.MultiWorkerMirroredStrategy` reads,
names every task of the cluster and this process's own. From it:
- the chief (task 0 of "chief" if there is one, else "worker" 0, as
  TensorFlow's `multi_worker_util.is_chief` says) writes the run: events,
  config.json, checkpoints and pictures;
- every other worker runs the same steps, saves and summaries (collective
  ops need every worker in each of them) into a temporary folder of its own,
  removed when it ends, as Keras' `BackupAndRestore` and TensorFlow's
  `distribute_file_utils` give non-chief workers temporary folders;
- all workers agree on one run folder without talking to one another:
  `--run-name` when given, else `multiworker-<fingerprint>`, the hash of what
  is trained (`resume.fingerprint`), with `-2`, `-3`, ... once a run of the
  same settings has finished there. Every worker sees the same folders as it
  starts: a run's state changes only at the end of an epoch, which needs all
  of them;
- a resumed run starts every worker from the chief's last saved epoch, read
  from the run folder: the log folder must be one that every worker sees
  (one machine, or a shared file system);
- a signal on any worker stops all of them after the same step
  (`AgreedInterrupt`), and a worker that dies stops the others with one
  line that names it (`reported`).
"""
import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from vgzoo.errors import VgzooError
from vgzoo.training import resume, runs

TF_CONFIG = "TF_CONFIG"
# Jobs that train; a parameter server or an evaluator does not run this loop.
TRAINING_JOBS = ("chief", "worker")
RUN_PREFIX = "multiworker-"
# How long a collective op waits for the other workers before it fails: a
# backstop, since TensorFlow's coordination service notices a worker that
# died within seconds. Longer than any pause between two steps: an epoch's
# end, with validation and checkpoints, runs between two collectives. 0: none.
COLLECTIVE_TIMEOUT_ENV = "VGZOO_COLLECTIVE_TIMEOUT"
DEFAULT_COLLECTIVE_TIMEOUT = 600.0


@dataclasses.dataclass(frozen=True)
class Cluster:
    jobs: dict  # job name -> list of "host:port" addresses
    task_type: str
    task_index: int

    @property
    def workers(self):
        return sum(len(self.jobs.get(job, ())) for job in TRAINING_JOBS)

    @property
    def index(self):
        """This worker's place among all of them: the chief first, then the workers."""
        if self.task_type == "chief":
            return 0
        return len(self.jobs.get("chief", ())) + self.task_index

    @property
    def is_chief(self):
        return self.index == 0

    @property
    def address(self):
        return self.jobs[self.task_type][self.task_index]


def _malformed(detail):
    return VgzooError(
        f"TF_CONFIG is not a cluster ({detail}); set it on every worker to the same cluster and "
        'that worker\'s own task, e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
        '"task": {"type": "worker", "index": 0}}.'
    )


def from_environment(environment=os.environ):
    """The cluster in TF_CONFIG; a missing or malformed one is told in one line."""
    text = environment.get(TF_CONFIG)
    if not text:
        raise VgzooError("--strategy multiworker needs the cluster in TF_CONFIG (see the README, "
                         "'Training on several machines').")
    try:
        config = json.loads(text)
        jobs, task = config["cluster"], config["task"]
        task_type, task_index = task["type"], int(task["index"])
    except (ValueError, TypeError, KeyError) as error:
        raise _malformed(f"{type(error).__name__}: {error}") from None
    if not isinstance(jobs, dict) or not all(isinstance(jobs.get(job, []), list) for job in jobs):
        raise _malformed("'cluster' must map job names to lists of addresses")
    if task_type not in TRAINING_JOBS:
        raise _malformed(f"task type {task_type!r}: vgzoo trains with 'chief' and 'worker' tasks")
    if not 0 <= task_index < len(jobs.get(task_type, ())):
        raise _malformed(f"task {task_type} {task_index} is not in the cluster")
    if len(jobs.get("chief", ())) > 1:
        raise _malformed("there can be one chief at most")
    return Cluster(jobs=jobs, task_type=task_type, task_index=task_index)


def collective_timeout(environment=os.environ):
    value = environment.get(COLLECTIVE_TIMEOUT_ENV, str(DEFAULT_COLLECTIVE_TIMEOUT))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise VgzooError(f"{COLLECTIVE_TIMEOUT_ENV} must be a number of seconds (0: no timeout), "
                         f"got {value!r}.")
    return seconds


def agreed_run_name(parent, run_fingerprint, allow_resume):
    """The run folder's name, the same on every worker of one cluster."""
    base = RUN_PREFIX + run_fingerprint
    for number in itertools.count(1):
        name = base if number == 1 else f"{base}-{number}"
        state = resume.read_state(Path(parent) / name)
        if state and (state.get("finished") or not allow_resume):
            continue  # never trained into again; --no-resume starts a new one beside it
        return name


@dataclasses.dataclass
class ClusterRun(resume.OpenRun):
    """A run opened by one worker: it writes into `run_dir`, the run lives in `shared_dir`."""

    shared_dir: Path = None
    cluster: Cluster = None


class Scratch:
    """A non-chief worker's temporary folder, standing in for the run lock: release removes it.

    It is locked while its worker lives, so a worker that starts later
    removes the folders that killed workers left behind.
    """

    PREFIX = "vgzoo-scratch-"

    def __init__(self, cluster):
        _remove_abandoned_scratch()
        prefix = f"{self.PREFIX}{cluster.task_type}{cluster.task_index}-"
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.lock = runs.RunLock(self.path)
        self.lock.acquire()

    def release(self):
        self.lock.release()
        shutil.rmtree(self.path, ignore_errors=True)


# A scratch folder this recent may be one whose worker is still about to lock it.
_SCRATCH_GRACE_SECONDS = 60


def _remove_abandoned_scratch():
    for folder in Path(tempfile.gettempdir()).glob(Scratch.PREFIX + "*"):
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime < _SCRATCH_GRACE_SECONDS:
                continue
            if not (folder / "run.lock").is_file():
                continue
            lock = runs.RunLock(folder)
            if lock.acquire():  # its worker is gone: the kernel dropped the lock
                shutil.rmtree(folder, ignore_errors=True)
                lock.release()


def open_run(logdir, dataset_label, model_name, run_name, record, allow_resume, cluster=None):
    """`resume.open_run` for one worker: the chief claims the run, the others take a scratch."""
    cluster = cluster or from_environment()
    runs.check_run_name(run_name)
    parent = runs.run_parent(logdir, dataset_label, model_name)
    name = run_name or agreed_run_name(parent, record["fingerprint"], allow_resume)
    if cluster.is_chief:
        run = resume.open_run(logdir, dataset_label, model_name, name, record, allow_resume)
        return ClusterRun(run.run_dir, run.lock, run.state, shared_dir=run.run_dir, cluster=cluster)
    shared_dir = parent / name
    # The chief's checks, read only: a run it refuses is refused here too.
    state = resume.check_resumable(shared_dir, record, allow_resume) if shared_dir.is_dir() else {}
    scratch = Scratch(cluster)
    if state:
        # Restored from a copy: this worker's saves must not touch the chief's files.
        for file_name in (resume.STATE_FILE, state["weights"]):
            shutil.copyfile(shared_dir / file_name, scratch.path / file_name)
    return ClusterRun(scratch.path, scratch, state or None, shared_dir=shared_dir, cluster=cluster)


def as_run(run, result):
    """The result names the run folder, not a non-chief worker's scratch."""
    if isinstance(run, ClusterRun):
        result.run_dir = run.shared_dir
    return result


class AgreedInterrupt(keras.callbacks.Callback):
    """The interrupt flag as all workers agree on it: a signal on any stops all after one step.

    A worker that stopped alone would run the epoch's end while the others
    wait in the next step's all-reduce. So this stands in for the flag that
    the signal handler sets: after each step and at each epoch's end, as a
    callback placed before the one that saves the state, the workers add up
    who was asked to stop, and all of them see the answer, never the signal.
    """

    def __init__(self, flag):
        super().__init__()
        self.flag = flag
        self.raised = False
        self.reason = None
        self.signal = None

    def stop(self, reason):
        """A diverged run: every worker sees the same explosion after the same step."""
        self.raised = True
        self.reason = reason

    def _agree(self):
        strategy = self.model.distribute_strategy
        asked = strategy.run(lambda: tf.constant(1.0 if self.flag.raised else 0.0))  # every replica
        if float(strategy.reduce("SUM", asked, axis=None)) and not self.raised:
            self.raised, self.reason = True, "interrupted"
            self.signal = self.flag.signal

    def on_train_batch_end(self, batch, logs=None):
        self._agree()

    def on_epoch_end(self, epoch, logs=None):
        self._agree()


def agreed_interrupt(run, flag):
    """The flag that training reads: agreed among the workers of a cluster, else `flag` itself."""
    return AgreedInterrupt(flag) if isinstance(run, ClusterRun) else flag


def callbacks(interrupt):
    """The agreement, to run before the callback that saves the state; none for one process."""
    return [interrupt] if isinstance(interrupt, AgreedInterrupt) else []


# Where TensorFlow's errors name the worker that went away.
_PEER = (re.compile(r"unhealthy[^/]*/job:(\w+)/replica:\d+/task:(\d+)"),
         re.compile(r"remote target /job:(\w+)/replica:\d+/task:(\d+)"))
_CAUSE = re.compile(r"aborted by: ([^\n\[]+)")


def _lost_worker(error, run):
    """One line for a collective op that failed because another worker stopped."""
    text = str(getattr(error, "message", error))
    peer = next((found for pattern in _PEER for found in [pattern.search(text)] if found), None)
    if peer:
        job, index = peer.group(1), int(peer.group(2))
        addresses = run.cluster.jobs.get(job, [])
        address = f" ({addresses[index]})" if index < len(addresses) else ""
        who = f"{job} {index}{address}"
    else:
        who = "another worker"
    cause = _CAUSE.search(text)
    if isinstance(error, tf.errors.DeadlineExceededError):
        what = f"{who} kept this one waiting longer than {COLLECTIVE_TIMEOUT_ENV}"
    else:
        if "stopped sending heartbeats" in text:
            detail = "its heartbeats stopped"
        else:
            detail = cause.group(1) if cause else (text.strip().splitlines() or [""])[0]
        what = f"{who} stopped answering ({detail.strip().rstrip('.')[:160]})"
    state = resume.read_state(run.shared_dir) or {}
    if state.get("epoch") and not state.get("finished"):
        again = (f"{run.shared_dir} keeps epoch {state['epoch']}: start every worker again with "
                 "the same command to resume from there")
    else:
        again = "no epoch was saved yet: start every worker again with the same command"
    return VgzooError(f"{what}, so this worker ({run.cluster.task_type} {run.cluster.task_index}) "
                      f"stopped too; {again}.")


@contextlib.contextmanager
def reported(run):
    """Turn a lost worker, seen as a failed collective op, into one line; other runs pass through."""
    if not isinstance(run, ClusterRun):
        yield
        return
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
            tf.errors.CancelledError) as error:
        raise _lost_worker(error, run) from None
