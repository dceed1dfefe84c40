"""What `vgzoo.train` takes from Python beyond the command line: any Keras optimizer, loss and metrics.

The command line (and `TrainConfig`) builds SGD or Adam from flags, He et
al.'s recipe. From Python, `optimizer=` may be any Keras optimizer, by name
("rmsprop", "adamw") or as an instance with its schedule, clipping, weight
decay or gradient accumulation set on it; `loss=`, `loss_weights=` and
`metrics=` take what `keras.Model.compile` takes. They go to `compile` as
given; config.json describes them in Keras' own serialization, and that
description enters the resume fingerprint, so a rerun resumes a run only
with the same objective.
"""
import dataclasses
import json

import keras

from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.training.config import FROM_PYTHON, OPTIMIZERS

# The TrainConfig fields that build vgzoo's SGD or Adam; a Keras optimizer carries its own.
OPTIMIZER_FIELDS = ("learning_rate", "momentum", "weight_decay", "schedule", "warmup_steps",
                    "clipnorm", "global_clipnorm")
COMPILE_OPTIONS = ("loss", "loss_weights", "metrics")


@dataclasses.dataclass
class Objective:
    """The Keras objects given to `train()`; None: vgzoo's own (the config's optimizer, the task's loss)."""

    optimizer: object = None
    loss: object = None
    loss_weights: object = None
    metrics: object = None

    def describe(self):
        """What was given, as JSON: for config.json and the resume fingerprint."""
        described = {}
        if self.optimizer is not None:
            described["optimizer"] = _as_json(keras.optimizers.serialize(self.optimizer))
            # Keras numbers the names of optimizers built in one process (adam_w, adam_w_1):
            # not a setting, so left out of what a rerun must match.
            described["optimizer"]["config"].pop("name", None)
        for name in COMPILE_OPTIONS:
            value = getattr(self, name)
            if value is not None:
                described[name] = _as_json(keras.tree.map_structure(_serialized, value))
        return described

    def learning_rate(self):
        """The optimizer's constant rate, or None for a schedule."""
        # Its learning_rate property gives a schedule's current value; its config keeps the schedule.
        rate = keras.optimizers.serialize(self.optimizer)["config"].get("learning_rate")
        return float(rate) if isinstance(rate, (int, float)) else None


def take_objective(options):
    """Removes the Keras objects from `train()`'s keyword arguments and returns them.

    A name among vgzoo's own optimizers stays an option of the config; any
    other optimizer sets the config's to "python", and the config's
    optimizer options given beside it are refused (they belong on it).
    """
    objective = Objective(**{name: options.pop(name) for name in COMPILE_OPTIONS if name in options})
    if objective.loss is not None:
        keras.tree.map_structure(_check_loss, objective.loss)
    given = options.get("optimizer")
    if given is None or (isinstance(given, str) and given in OPTIMIZERS):
        return objective
    objective.optimizer = _keras_optimizer(given)
    options["optimizer"] = FROM_PYTHON
    clashing = sorted(set(OPTIMIZER_FIELDS) & set(options))
    if clashing:
        raise VgzooError(
            f"{', '.join(clashing)} configure vgzoo's sgd or adam; with a Keras optimizer "
            f"({type(objective.optimizer).__name__}) set them on the optimizer itself."
        )
    return objective


def keras_optimizer_names():
    """Keras' optimizer names, lower case, as `keras.optimizers.get` takes them."""
    names = []
    for name in dir(keras.optimizers):
        value = getattr(keras.optimizers, name)
        if isinstance(value, type) and issubclass(value, keras.optimizers.Optimizer) \
                and value not in (keras.optimizers.Optimizer, keras.optimizers.LossScaleOptimizer):
            names.append(name.lower())
    return sorted(names)


def _keras_optimizer(given):
    if isinstance(given, keras.optimizers.Optimizer):
        return given
    if isinstance(given, str):
        if given.lower() not in keras_optimizer_names():
            raise unknown_choice("optimizer", given, keras_optimizer_names())
        return keras.optimizers.get(given.lower())
    raise VgzooError(f"optimizer must be a Keras optimizer or its name (e.g. 'adamw'), "
                     f"got {type(given).__name__}.")


def _check_loss(loss):
    if isinstance(loss, str):
        try:
            keras.losses.get(loss)
        except ValueError:
            raise VgzooError(f"unknown loss {loss!r}: give a Keras loss name "
                             "(e.g. 'sparse_categorical_crossentropy'), a keras.losses.Loss or a function.") from None


def _serialized(value):
    """A loss or metric as Keras serializes it; a plain function by its qualified name."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        return keras.saving.serialize_keras_object(value)
    except (TypeError, ValueError):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"


def _as_json(value):
    """Plain JSON: values Keras leaves as numpy or other objects become numbers or strings."""
    return json.loads(json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else str(item)))
