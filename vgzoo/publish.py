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

from vgzoo import checkpoints, registry, runs
from vgzoo.datasets.files import DATASET_METADATA
from vgzoo.datasets.sequences import MNIST_TASKS, SEQUENCE_METADATA, SEQUENCE_TASKS, SYNTHETIC_TASKS
from vgzoo.errors import VgzooError, unknown_choice

RUN_WEIGHTS = ("best", "last")
# The held-out set a checkpoint is measured on; generated tasks draw it from
# their own `test` seed stream, which training never reads.
EVALUATION = {"split": "test", "size": 1000, "seed": 0}
EVAL_BATCH_SIZE = 250
# Flags that say where a run goes or how it prints, not what it trains.
_LOCATION_FLAGS = ("--logdir", "--run-name", "--verbose")
_DISPLAY_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def _loss_of(entry):
    meta = SEQUENCE_METADATA.get(entry["dataset"])
    return meta["loss"] if meta else "sparse_categorical_crossentropy"


def _image_test_data(entry, batch_size):
    from vgzoo.datasets import load_arrays
    from vgzoo.datasets.images import _pipeline

    x, y = load_arrays(entry["dataset"], "test")
    # Standardised with the training statistics the model was trained with.
    stats = entry["normalization"]
    return _pipeline(x, y, 1 / 255, stats["mean"], stats["std"], batch_size)


def test_data(entry, batch_size=EVAL_BATCH_SIZE):
    """The held-out test set of an entry's dataset, as a batched tf.data.Dataset."""
    if entry["dataset"] not in SEQUENCE_TASKS:
        return _image_test_data(entry, batch_size)
    from vgzoo.datasets.sequences import make_sequence_test_dataset

    evaluation = entry.get("evaluation", EVALUATION)
    return make_sequence_test_dataset(
        entry["dataset"], seq_len=entry.get("dataset_options", {}).get("seq_len"),
        batch_size=batch_size, test_size=evaluation["size"], seed=evaluation["seed"],
    )


def evaluate(model, entry):
    """`{"test_loss": ..., "test_accuracy": ...}` of `model` on the entry's test set."""
    loss = _loss_of(entry)
    classifies = loss == "sparse_categorical_crossentropy"
    model.compile(loss=loss, metrics=["accuracy"] if classifies else [], jit_compile=False)
    results = model.evaluate(test_data(entry), verbose=0, return_dict=True)
    return {f"test_{name}": float(value) for name, value in sorted(results.items())}


def _check_publishable(run_dir, config):
    if not config:
        raise VgzooError(f"{run_dir} is not a vgzoo run folder (no config.json): give the "
                         "folder that `vgzoo train` printed as its run folder.")
    dataset = config["dataset"]
    name = dataset["name"]
    if name not in SEQUENCE_TASKS and name not in DATASET_METADATA:
        raise VgzooError(f"{run_dir} was trained on your own data ({name}); only runs on the "
                         "named datasets can be published, since verify must regenerate them.")
    split = dataset.get("source_split", "train" if name in SYNTHETIC_TASKS else None)
    if split != "train":
        source = "MNIST" if name in MNIST_TASKS else _DISPLAY_NAMES.get(name, name)
        trained_on = (f"it was trained on the {source} {split} split (source_split in config.json)"
                      if split else f"its config.json does not record which {source} split it saw")
        raise VgzooError(
            f"refusing to publish {run_dir}: {trained_on}, and a pretrained checkpoint must never "
            f"have seen its test set. Train it on the training split."
        )
    from vgzoo.resume import read_state

    if not (read_state(run_dir) or {}).get("finished"):
        raise VgzooError(f"{run_dir} has not finished training; run its command again to "
                         "complete it, then publish.")


def _normalization(dataset):
    """The per-channel statistics training standardised images with."""
    from vgzoo.datasets import load_arrays
    from vgzoo.datasets.images import _channel_stats

    x, _ = load_arrays(dataset["name"], "train")
    mean, std = _channel_stats(x[: dataset["train_size"]], 1 / 255)
    return {"mean": mean.tolist(), "std": std.tolist()}


def _entry_from_run(config, trained_from, tolerance):
    dataset, model = config["dataset"], config["model"]
    spec = registry.get_spec(model["name"])
    seq_len = dataset.get("seq_len") if dataset["name"] in SYNTHETIC_TASKS else None
    file = checkpoints.file_name(spec.name, dataset["name"], seq_len)
    entry = {
        "model": spec.name,
        "dataset": dataset["name"],
        "dataset_options": {"seq_len": seq_len} if seq_len else {},
        "knobs": {key: value for key, value in model["arguments"].items() if key in spec.knobs},
        "input_shape": list(dataset["input_shape"]),
        "num_classes": dataset["num_classes"],
        "file": file,
        "size": None,
        "sha256": None,
        "url": checkpoints.RELEASE_URL.format(file=file),
        "metrics": {},
        "tolerance": tolerance,
        "evaluation": dict(EVALUATION) if dataset["name"] in SEQUENCE_TASKS else {"split": "test"},
        "command": train_command(config),
        "trained_from": trained_from,
        "date": datetime.date.today().isoformat(),
        "versions": {key: config["versions"][key] for key in ("tensorflow", "keras")},
        "published": True,
    }
    if dataset["name"] in DATASET_METADATA:
        entry["normalization"] = _normalization(dataset)
    return entry


def _same_checkpoint(a, b):
    return (a["model"], a["dataset"], a.get("dataset_options", {})) == (
        b["model"], b["dataset"], b.get("dataset_options", {}))


def publish(run_dir, folder=None, weights="best", tolerance=checkpoints.DEFAULT_TOLERANCE):
    """Publish a finished run's `best` (or `last`) weights; returns the manifest entry."""
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
    model = checkpoints.load_weights(checkpoints.build(entry), source, entry)
    entry["metrics"] = evaluate(model, entry)
    folder = Path(folder or checkpoints.models_dir())
    folder.mkdir(parents=True, exist_ok=True)
    # Saved from the rebuilt model, not copied: a run's files carry the optimizer's
    # slots too (twice the weights again, for Adam), which a published model does not need.
    from vgzoo.resume import atomic_save_weights

    atomic_save_weights(model, folder / entry["file"])
    entry["size"] = (folder / entry["file"]).stat().st_size
    entry["sha256"] = checkpoints.sha256_of(folder / entry["file"])
    entries = checkpoints.read_manifest(folder)
    kept = [old for old in entries if not _same_checkpoint(old, entry)]
    position = next((i for i, old in enumerate(entries) if _same_checkpoint(old, entry)), len(kept))
    kept.insert(position, entry)
    checkpoints.write_manifest(kept, folder)
    return entry


def verify(entries=None):
    """One row per published metric: the manifest's value, the measured one, ok or not."""
    rows = []
    for entry in checkpoints.published(entries):
        path = checkpoints.locate(entry)
        model = checkpoints.load_weights(checkpoints.build(entry), path, entry)
        measured = evaluate(model, entry)
        for metric, expected in sorted(entry["metrics"].items()):
            value = measured.get(metric, float("nan"))
            rows.append({
                "checkpoint": checkpoints.label(entry), "metric": metric, "manifest": expected,
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
    dataset, optimizer = config["dataset"], config["optimizer"]
    spec = registry.get_spec(config["model"]["name"])
    flags = {"--dataset": dataset["name"], "--seq-len": dataset.get("seq_len")
             if dataset["name"] in SYNTHETIC_TASKS else None,
             "--optimizer": optimizer["name"], "--lr": optimizer["learning_rate"],
             "--momentum": optimizer["momentum"] if optimizer["name"] == "sgd" else None,
             "--weight-decay": optimizer["weight_decay"], "--schedule": optimizer["schedule"],
             "--clipnorm": optimizer["clipnorm"], "--global-clipnorm": optimizer["global_clipnorm"],
             "--batch-size": config["batch_size"], "--epochs": config["epochs"],
             "--steps-per-epoch": config["steps_per_epoch"] if dataset.get("train_size") is None
             else None, "--seed": config["seed"]}
    for key, value in config["model"]["arguments"].items():
        # The head follows from the dataset; other knobs only where not the default.
        if key in spec.knobs and key != "head" and value != spec.defaults.get(key):
            flags[f"--{key.replace('_', '-')}"] = str(value).lower() if isinstance(value, bool) else value
    text = " ".join(f"{flag} {value}" for flag, value in flags.items() if value is not None)
    return f"vgzoo train {spec.name} {text}"


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
        raise VgzooError(f"training {checkpoints.label(entry)} failed (exit status {status}); "
                         "see its message above.")
    run_dir = next(Path(logdir).glob(f"*/*/{run_name}"))
    return publish(run_dir, folder)
