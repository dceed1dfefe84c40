"""The one training configuration: a typed dataclass, as Flax examples keep one.

`TrainConfig` lists every option of a run once. The `vgzoo train` flags are
made from its fields (`add_flags`, `from_flags`), `config.json` stores it
under "train" beside what was resolved from it, the resume fingerprint
hashes it, and the reproduce command is rebuilt from it (`to_command`), so an
option added here reaches all four. `vgzoo train --config run.json` replays a
run from its `config.json`.

Fields marked `where` say where a run goes or how it prints, not what it
trains: they are left out of the fingerprint and of reproduce commands.
"""
import dataclasses
import json
import math
import numbers
import re
import shlex
from pathlib import Path

from vgzoo.errors import VgzooError, unknown_choice

DEFAULT_LOGDIR = "tensorboard_logs"
OPTIMIZERS = ("sgd", "adam")
# config.json's optimizer for a Keras optimizer given to `vgzoo.train` from Python (described beside it).
FROM_PYTHON = "python"
SCHEDULES = ("step", "cosine", "constant")
STRATEGIES = ("default", "mirrored", "multiworker")
SOURCE_SPLITS = ("train", "test")


def _option(default, help, flag=None, where=False, choices=None, positive=False, minimum=None,
            python_only=()):
    metadata = dict(help=help, flag=flag, where=where, choices=choices, positive=positive,
                    minimum=minimum, python_only=python_only)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run is trained with besides the model and its knobs."""

    dataset: str = _option("mnist", "mnist, cifar10, cifar100, or a sequence task: adding, copy, "
                           "seqmnist, pmnist")
    epochs: int = _option(10, "passes over the data (streams: steps_per_epoch steps each)",
                          positive=True)
    batch_size: int = _option(128, "examples per step", positive=True)
    optimizer: str = _option("sgd", "sgd or adam (from Python: any Keras optimizer)", choices=OPTIMIZERS,
                             python_only=(FROM_PYTHON,))
    learning_rate: float = _option(None, "default 0.1 (sgd), 1e-3 (adam)", flag="--lr",
                                   positive=True)
    momentum: float = _option(0.9, "SGD momentum, in [0, 1)", minimum=0.0)
    weight_decay: float = _option(1e-4, "decoupled weight decay", minimum=0.0)
    schedule: str = _option("step", "step (He et al.: /10 at 50% and 75%), cosine or constant",
                            choices=SCHEDULES)
    warmup_steps: int = _option(0, "steps at a tenth of the rate before the step schedule "
                                "(He et al. 2016, ResNet-110)", minimum=0)
    clipnorm: float = _option(None, "clip each gradient's norm", positive=True)
    global_clipnorm: float = _option(None, "clip the global norm", positive=True)
    seed: int = _option(0, "seeds weights, data order and augmentation", minimum=0)
    hist_every: int = _option(50, "steps between histograms", positive=True)
    log_layers: object = _option(None, "GLOB[,GLOB...]: layers whose histograms are written "
                              "(default: stem, head and the first and last block of each stage)")
    test_every: int = _option(0, "measure the test split every N steps, for figures only "
                              "(never for selection)", minimum=0)
    limit: int = _option(None, "use the first N examples", positive=True)
    validation_split: float = _option(0.1, "last fraction of the training split held out",
                                      minimum=0.0)
    source_split: str = _option("train", "train (default) or test: smoke runs only",
                                flag="--data-split", choices=SOURCE_SPLITS)
    seq_len: int = _option(None, "T for the adding and copy tasks", positive=True)
    steps_per_epoch: int = _option(None, "steps between epoch summaries on streamed sequence "
                                   "tasks (default 100)", positive=True)
    weights: object = _option(None, "start from this .weights.h5 checkpoint")
    strategy: str = _option("default", "default, mirrored (all GPUs; VGZOO_CPU_REPLICAS=N splits "
                            "the CPU) or multiworker (TF_CONFIG)", choices=STRATEGIES)
    logdir: str = _option(DEFAULT_LOGDIR, "the log folder", where=True)
    run_name: str = _option(None, "run folder name (default: time-stamp)", where=True)
    resume: bool = _option(True, "start a new run even if an interrupted one with the same "
                           "settings exists", flag="--no-resume", where=True)
    verbose: object = _option("auto", "1: progress bar (default), 2: one line per epoch, "
                              "0: silent", where=True, choices=("auto", 0, 1, 2))

    def __post_init__(self):
        # Plain JSON values, so config.json, the fingerprint and the command agree.
        if self.logdir is not None:
            object.__setattr__(self, "logdir", str(self.logdir))
        if self.weights is not None:
            object.__setattr__(self, "weights", str(self.weights))
        if isinstance(self.log_layers, (list, tuple)):
            object.__setattr__(self, "log_layers", ",".join(self.log_layers))
        for field in dataclasses.fields(self):
            _check_field(field, getattr(self, field.name))
        if self.momentum >= 1:
            raise VgzooError(f"momentum must be in [0, 1), got {self.momentum!r}.")
        if self.run_name is not None:
            check_run_name(self.run_name)
        if self.validation_split >= 1:
            raise VgzooError(f"validation_split must be in [0, 1), got {self.validation_split!r}; "
                             "for example 0.1 keeps the last 10% for validation.")

    def replace(self, **changes):
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise unknown_choice("training option", unknown[0], field_names())
        return dataclasses.replace(self, **changes)

    def trained(self):
        """The fields that decide what is trained (not where it goes)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if not field.metadata["where"]}

    def to_json(self):
        return dataclasses.asdict(self)


# A run name is one folder name: nothing that climbs out of the log folder or hides.
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_name(run_name):
    """Refuse a run name that is not a plain folder name inside the log folder."""
    if run_name is None:
        return None
    if not isinstance(run_name, str) or not _RUN_NAME.match(run_name) or ".." in run_name:
        raise VgzooError(
            f"--run-name {run_name!r} is not a plain folder name: use letters, digits, '.', '_' "
            "and '-' (starting with a letter or digit), without '/' or '..'."
        )
    return run_name


def field_names():
    return tuple(field.name for field in dataclasses.fields(TrainConfig))


def _check_field(field, value):
    meta = field.metadata
    if value is None and field.default is None:
        return
    expected = field.type if isinstance(field.type, type) else type(field.default)
    if expected is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise VgzooError(f"{field.name} must be a finite number, got {value!r}.")
    elif expected is int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise VgzooError(f"{field.name} must be an integer, got {value!r}.")
    elif expected in (str, bool) and not isinstance(value, expected):
        raise VgzooError(f"{field.name} must be a {expected.__name__}, got {value!r}.")
    if meta["choices"] is not None and value not in meta["choices"] + meta["python_only"]:
        raise unknown_choice(field.name, value, [str(c) for c in meta["choices"]])
    if meta["positive"] and value <= 0:
        raise VgzooError(f"{field.name} must be a positive number, got {value!r}.")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise VgzooError(f"{field.name} must be at least {meta['minimum']}, got {value!r}.")


def _flag(field):
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def add_flags(parser):
    """One flag per field, with the field's default and help."""
    for field in dataclasses.fields(TrainConfig):
        flag, help_text = _flag(field), field.metadata["help"]
        if field.type is bool or isinstance(field.default, bool):
            parser.add_argument(flag, dest=field.name, action="store_false" if field.default
                                else "store_true", help=help_text)
        elif field.name == "verbose":
            parser.add_argument(flag, dest=field.name, type=int, choices=(0, 1, 2),
                                default=None, help=help_text)
        else:
            kind = {int: int, float: float}.get(field.type, str)
            parser.add_argument(flag, dest=field.name, type=kind, default=None, help=help_text)


def from_flags(args, base=None):
    """A TrainConfig from parsed flags: those given override `base` (default: defaults)."""
    base = base or TrainConfig()
    changes = {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if field.type is bool or isinstance(field.default, bool):
            if value != field.default:
                changes[field.name] = value
        elif value is not None:
            if value in field.metadata["python_only"]:
                raise unknown_choice(field.name, value, field.metadata["choices"])
            changes[field.name] = value
    return base.replace(**changes)


def to_command(model, knobs, config):
    """The `vgzoo train` command that trains `model` with `knobs` and `config` again."""
    if config.optimizer == FROM_PYTHON:
        raise VgzooError(f"{model} was trained with a Keras optimizer given from Python (see 'optimizer' "
                         "in its config.json): no vgzoo train command reproduces it.")
    words = ["vgzoo", "train", model]
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        value = getattr(config, field.name)
        if field.metadata["where"] or value == getattr(defaults, field.name):
            continue
        if isinstance(value, bool):
            words.append(_flag(field))
        else:
            words += [_flag(field), str(value)]
    for key, value in knobs.items():
        words += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return shlex.join(words)


def fingerprint_source(model_description, config, objective=None):
    """What the resume fingerprint hashes: the model as built, what is trained, and Keras objects given from Python."""
    return {"model": model_description, "train": config.trained(), **(objective or {})}


def read_run_config(path):
    """(model name, knobs, TrainConfig) from a run's `config.json`, to replay it."""
    path = Path(path)
    try:
        stored = json.loads(path.read_text())
    except OSError as error:
        raise VgzooError(f"cannot read {path}: {error.strerror}.") from None
    except ValueError as error:
        raise VgzooError(f"{path} is not valid JSON ({error}); give the config.json "
                         "of a vgzoo run.") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("train"), dict) \
            or not isinstance(stored.get("model"), dict):
        raise VgzooError(f"{path} is not the config.json of a vgzoo run (no 'train' and 'model').")
    known = set(field_names())
    unknown = sorted(set(stored["train"]) - known)
    if unknown:
        raise unknown_choice("training option", unknown[0], sorted(known), where=f" in {path}")
    model = stored["model"]
    return model["name"], dict(model.get("knobs", {})), TrainConfig(**stored["train"])
