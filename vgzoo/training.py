"""Fit wiring: model, data, optimizer, schedule, callbacks and the run folder.

The observed train step records gradients; this module only decides what is
trained, how, and where its outputs go.
"""
import dataclasses
import sys

import keras
import tensorflow as tf

from vgzoo import registry, runs
from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.observe.epoch import EpochLogger
from vgzoo.observe.step import ObservedModel

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "cosine", "constant")
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}


@dataclasses.dataclass
class TrainResult:
    run_dir: object
    history: dict
    model: keras.Model


def _positive(name, value, kind=(int, float)):
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise VgzooError(f"{name} must be a positive number, got {value!r}.")
    return value


def learning_rate_schedule(name, learning_rate, total_steps):
    """He et al. 2016 divide by 10 at 50% and 75% of training ("step")."""
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
    if name == "step":
        boundaries = [max(total_steps // 2, 1), max(3 * total_steps // 4, 2)]
        values = [learning_rate, learning_rate / 10, learning_rate / 100]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    raise unknown_choice("schedule", name, SCHEDULES)


def build_optimizer(name, learning_rate, momentum, weight_decay, schedule, total_steps):
    if name not in OPTIMIZERS:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    rate = learning_rate_schedule(schedule, learning_rate, total_steps)
    decay = weight_decay or None
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=momentum, weight_decay=decay)
    return keras.optimizers.Adam(rate, weight_decay=decay)


def _dataset_info(dataset, num_classes):
    from vgzoo.datasets import DatasetInfo

    inputs_spec = dataset.element_spec[0]
    return DatasetInfo(
        name="custom",
        input_shape=tuple(inputs_spec.shape[1:]),
        num_classes=num_classes,
        train_size=None,
        val_size=0,
        source_split=None,
    )


def _load_data(dataset, data, batch_size, validation_split, limit, seed, source_split, num_classes):
    from vgzoo.datasets import make_datasets

    if isinstance(data, tf.data.Dataset):
        return data, None, _dataset_info(data, num_classes)
    return make_datasets(
        dataset if data is None else None,
        data=data,
        batch_size=batch_size,
        source_split=source_split,
        validation_split=validation_split,
        limit=limit,
        seed=seed,
    )


def _build_model(model, info, knobs):
    if isinstance(model, keras.Model):
        if knobs:
            raise VgzooError(f"knobs {sorted(knobs)} apply to registry names, not to a built model.")
        return model, {"name": model.name}
    if info.num_classes is None:
        raise VgzooError("training a registry model on a tf.data.Dataset needs num_classes=.")
    spec = registry.get_spec(model)
    built = registry.create_model(model, info.input_shape, info.num_classes, **knobs)
    description = {
        "name": spec.name,
        "family": spec.family,
        "partner": spec.partner,
        "arguments": spec.resolve(knobs),
    }
    return built, description


def train(
    model,
    *,
    dataset=None,
    data=None,
    epochs=10,
    batch_size=128,
    optimizer="sgd",
    learning_rate=None,
    momentum=0.9,
    weight_decay=1e-4,
    schedule="step",
    seed=0,
    hist_every=50,
    logdir=runs.DEFAULT_LOGDIR,
    limit=None,
    validation_split=0.1,
    source_split="train",
    num_classes=None,
    run_name=None,
    verbose="auto",
    **knobs,
):
    """Train `model` (a registry name or a Keras model) with gradients recorded.

    Data is a dataset name (`mnist`, `cifar10`, `cifar100`), `data=(x, y)`
    arrays, or a batched `tf.data.Dataset` of (inputs, labels). Returns a
    `TrainResult` with the run folder, the Keras history and the model.
    """
    if dataset is None and data is None:
        raise VgzooError("say what to train on: dataset='mnist' (or cifar10, cifar100) or data=(x, y).")
    _positive("epochs", epochs, int)
    _positive("batch_size", batch_size, int)
    _positive("hist_every", hist_every, int)
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    if schedule not in SCHEDULES:
        raise unknown_choice("schedule", schedule, SCHEDULES)
    learning_rate = _positive(
        "learning_rate", learning_rate or DEFAULT_LEARNING_RATES[optimizer]
    )
    if isinstance(model, str):
        registry.get_spec(model).resolve(knobs)  # fail on bad knobs before loading data

    keras.utils.set_random_seed(seed)
    train_data, validation_data, info = _load_data(
        dataset, data, batch_size, validation_split, limit, seed, source_split, num_classes
    )
    built, model_description = _build_model(model, info, knobs)
    steps_per_epoch = int(train_data.cardinality())
    total_steps = max(steps_per_epoch, 1) * epochs

    dataset_label = dataset if data is None else "custom"
    run_dir = runs.new_run_dir(logdir, dataset_label, built.name, run_name)
    config = {
        "model": model_description,
        "dataset": dataclasses.asdict(info),
        "optimizer": {
            "name": optimizer,
            "learning_rate": learning_rate,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "schedule": schedule,
        },
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "hist_every": hist_every,
        "command": " ".join(sys.argv),
        "versions": runs.library_versions(),
    }
    runs.save_config(run_dir, config)

    train_writer = tf.summary.create_file_writer(str(run_dir / "train"))
    validation_writer = (
        tf.summary.create_file_writer(str(run_dir / "validation")) if validation_data else None
    )
    observed = ObservedModel(built, train_writer, hist_every)
    observed.compile(
        optimizer=build_optimizer(
            optimizer, learning_rate, momentum, weight_decay, schedule, total_steps
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        # Summary ops cannot be compiled by XLA.
        jit_compile=False,
    )
    monitor = "val_loss" if validation_data else "loss"
    callbacks = [
        EpochLogger(train_writer, validation_writer, config),
        keras.callbacks.ModelCheckpoint(str(run_dir / "last.weights.h5"), save_weights_only=True),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.weights.h5"),
            save_weights_only=True,
            save_best_only=True,
            monitor=monitor,
        ),
    ]
    try:
        history = observed.fit(
            train_data,
            validation_data=validation_data,
            epochs=epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the tf.data pipeline shuffles, seeded
        )
    finally:
        for writer in (train_writer, validation_writer):
            if writer is not None:
                writer.close()
    return TrainResult(run_dir=run_dir, history=history.history, model=built)
