"""Publishing finished runs as checkpoints, and checking published ones.

- `publish(run_dir)`: copy a finished run's weights into the models folder
  under the manifest's name, evaluate them on the held-out test split, and
  write sha256, size, metrics, the training command, date and versions into
  the manifest. A run that saw the test split is refused.
- `verify()`: re-evaluate every published checkpoint on a regenerated
  held-out set and compare with the manifest, metric by metric.
- `reproduce(entry)`: run an entry's recorded command, then publish the run
  (`make pretrained`).
"""
import datetime
import shlex
import subprocess
import sys
from pathlib import Path

from vgzoo.architectures import factory, registry
from vgzoo.data.tasks import TASKS, get_task
from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.pretrained import manifest, store
from vgzoo.pretrained import weights as weights_file
from vgzoo.training import runs
from vgzoo.training.config import TrainConfig, to_command

RUN_WEIGHTS = ("best", "last")
# The held-out set a checkpoint is measured on; generated tasks draw it from
# their own `test` seed stream, which training never reads.
EVALUATION = {"split": "test", "size": 1000, "seed": 0}
EVAL_BATCH_SIZE = 250
# Flags that say where a run goes or how it prints, not what it trains.
_LOCATION_FLAGS = ("--logdir", "--run-name", "--verbose")
_REPUBLISH = "the manifest entry needs republishing"


def test_data(entry, batch_size=EVAL_BATCH_SIZE):
    """The held-out test set of an entry's dataset, as a batched tf.data.Dataset."""
    task = get_task(entry["dataset"])
    evaluation = entry.get("evaluation", EVALUATION)
    stats = entry.get("normalization", {})
    return task.test_dataset(
        batch_size=batch_size, seq_len=entry.get("dataset_options", {}).get("seq_len"),
        size=evaluation.get("size"), seed=evaluation.get("seed", 0),
        mean=stats.get("mean"), std=stats.get("std"),
    )


def evaluate(model, entry):
    """`{"test_loss": ..., "test_accuracy": ...}` of `model` on the entry's test set."""
    task = get_task(entry["dataset"])
    model.compile(loss=task.loss, metrics=task.metrics, jit_compile=False)
    results = model.evaluate(test_data(entry), verbose=0, return_dict=True)
    return {f"test_{name}": float(value) for name, value in sorted(results.items())}


def _check_publishable(run_dir, config):
    if not config:
        raise VgzooError(f"{run_dir} is not a vgzoo run folder (no config.json): give the "
                         "folder that `vgzoo train` printed as its run folder.")
    dataset = config["dataset"]
    name = dataset["name"]
    if name not in TASKS:
        raise VgzooError(f"{run_dir} was trained on your own data ({name}); only runs on the "
                         "named datasets can be published, since verify must regenerate them.")
    task = TASKS[name]
    split = dataset.get("source_split")
    if not task.generated and split != "train":
        trained_on = (f"it was trained on the {task.display} {split} split (source_split in config.json)"
                      if split else f"its config.json does not record which {task.display} split it saw")
        raise VgzooError(
            f"refusing to publish {run_dir}: {trained_on}, and a pretrained checkpoint must never "
            f"have seen its test set. Train it on the training split."
        )
    from vgzoo.training.resume import read_state

    if not (read_state(run_dir) or {}).get("finished"):
        raise VgzooError(f"{run_dir} has not finished training; run its command again to "
                         "complete it, then publish.")


def _normalization(dataset):
    """The per-channel statistics training standardised images with."""
    if dataset.get("mean") is not None:
        return {"mean": list(dataset["mean"]), "std": list(dataset["std"])}
    from vgzoo.data import load_arrays
    from vgzoo.data.images import channel_stats

    x, _ = load_arrays(dataset["name"], "train")
    mean, std = channel_stats(x[: dataset["train_size"]], 1 / 255)
    return {"mean": mean.tolist(), "std": std.tolist()}


def _expected_input(task, dataset, normalization):
    """What a user must feed the model, as timm's pretrained configs say it."""
    shape = list(dataset["input_shape"])
    if normalization:
        return {"shape": shape, "dtype": "float32",
                "preprocessing": "pixels scaled to [0, 1], then (x - mean) / std per channel",
                "mean": normalization["mean"], "std": normalization["std"]}
    return {"shape": shape, "dtype": "float32",
            "preprocessing": f"as vgzoo.data.tasks.get_task({task.name!r}) makes it ({task.description})"}


def _entry_from_run(config, trained_from, tolerance):
    dataset, model = config["dataset"], config["model"]
    task = get_task(dataset["name"])
    spec = registry.get_spec(model["name"])
    seq_len = dataset.get("seq_len") if task.takes_seq_len else None
    file = manifest.file_name(spec.name, dataset["name"], seq_len)
    normalization = _normalization(dataset) if task.images else None
    entry = {
        "model": spec.name,
        "dataset": dataset["name"],
        "dataset_options": {"seq_len": seq_len} if seq_len else {},
        "knobs": {key: value for key, value in model["arguments"].items() if key in spec.knobs},
        "input_shape": list(dataset["input_shape"]),
        "num_classes": dataset["num_classes"],
        "input": _expected_input(task, dataset, normalization),
        "file": file,
        "size": None,
        "sha256": None,
        "url": None,
        "metrics": {},
        "tolerance": tolerance,
        "evaluation": dict(EVALUATION) if task.generated else {"split": "test"},
        "command": train_command(config),
        "trained_from": trained_from,
        "date": datetime.date.today().isoformat(),
        "versions": {key: config["versions"][key] for key in ("tensorflow", "keras")},
        "steps": config["train"]["epochs"] * config["steps_per_epoch"],
        "published": True,
    }
    if normalization:
        entry["normalization"] = normalization
    return entry


def publish(run_dir, folder=None, weights="best", tolerance=manifest.DEFAULT_TOLERANCE, force=False):
    """Publish a finished run's `best` (or `last`) weights; returns the manifest entry.

    The previous checkpoint stays valid at every instant (see `store`), and
    is replaced by one from a shorter or worse run only with `force`.
    """
    if weights not in RUN_WEIGHTS:
        raise unknown_choice("weights", weights, RUN_WEIGHTS)
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    _check_publishable(run_dir, config)
    source = run_dir / f"{weights}.weights.h5"
    if not source.is_file():
        raise VgzooError(f"{run_dir} has no {source.name}; publish --weights "
                         f"{'last' if weights == 'best' else 'best'} instead.")
    entry = _entry_from_run(config, source.name, tolerance)
    model = weights_file.load_into(factory.build(entry), source, manifest.label(entry), _REPUBLISH)
    entry["metrics"] = evaluate(model, entry)
    with store.locked(folder or manifest.models_dir()) as models:
        entries = manifest.read_manifest(models)
        store.check_replacement(store.previous_entry(entries, entry), entry, force)
        # Saved from the rebuilt model, not copied: a run's files carry the optimizer's
        # slots too (twice the weights again, for Adam), which a published model does not need.
        store.save_versioned(model, models, entry)
        store.switch(models, entries, entry)
    return entry


def verify(entries=None):
    """One row per published metric: the manifest's value, the measured one, ok or not."""
    rows = []
    for entry in manifest.published(entries):
        path = weights_file.locate(entry)
        model = weights_file.load_into(factory.build(entry), path, manifest.label(entry), _REPUBLISH)
        measured = evaluate(model, entry)
        for metric, expected in sorted(entry["metrics"].items()):
            value = measured.get(metric, float("nan"))
            rows.append({
                "checkpoint": manifest.label(entry), "metric": metric, "manifest": expected,
                "measured": value, "ok": abs(value - expected) <= entry["tolerance"],
            })
    return rows


def train_command(config):
    """The `vgzoo train` command of a run: as it was typed, or rebuilt from its config."""
    words = shlex.split(config.get("command") or "")
    if len(words) > 1 and words[1] == "train" and Path(words[0]).name in ("vgzoo", "__main__.py"):
        kept, skip = ["vgzoo"], False
        for word in words[1:]:
            flag = word.split("=", 1)[0]
            if skip or flag in _LOCATION_FLAGS:
                skip = not skip and flag == word
                continue
            kept.append(word)
        return shlex.join(kept)
    return _command_from_config(config)


def _command_from_config(config):
    """For runs started from Python: the flags that reproduce what they trained."""
    model = config["model"]
    return to_command(model["name"], model.get("knobs", {}), TrainConfig(**config["train"]))


def reproduce(entry, logdir, folder=None):
    """Train an entry from its recorded command into `logdir`, then publish the run."""
    words = shlex.split(entry["command"])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_name = f"{entry['file'].removesuffix('.weights.h5')}-{stamp}"
    argv = [sys.executable, "-m", "vgzoo", *words[1:], "--logdir", str(logdir),
            "--run-name", run_name, "--verbose", "2"]
    print("$ " + shlex.join(argv), flush=True)
    status = subprocess.run(argv, check=False).returncode
    if status != 0:
        raise VgzooError(f"training {manifest.label(entry)} failed (exit status {status}); "
                         "see its message above.")
    run_dir = next(Path(logdir).glob(f"*/*/{run_name}"))
    return publish(run_dir, folder)
