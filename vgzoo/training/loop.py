"""Training: model, data, optimizer and callbacks wired into one observed `fit()`.

The observed train step records gradients; `resume` keeps runs safe from
interruption; `config` holds every option. This module only decides what is
trained, how, and where its outputs go.
"""
import dataclasses
import sys

import keras
import tensorflow as tf

from vgzoo import keras_internals
from vgzoo.architectures import factory, registry
from vgzoo.data.tasks import DataInfo, get_task
from vgzoo.errors import TrainingDiverged, VgzooError
from vgzoo.observe import hparams, selection, summaries
from vgzoo.observe.heldout import TEST_FOLDER, TestCurve
from vgzoo.observe.watch import watch
from vgzoo.pretrained import weights as weights_file
from vgzoo.training import config as train_config
from vgzoo.training import cluster, faults, resume, runs, signals
from vgzoo.training.objective import take_objective
from vgzoo.training.distribute import make_strategy
from vgzoo.training.optim import DEFAULT_LEARNING_RATES, build_optimizer

# Sequence tasks stream fresh examples for ever; an "epoch" is this many steps.
DEFAULT_STREAM_STEPS = 100
CUSTOM_DATA = "custom"


@dataclasses.dataclass
class TrainResult:
    run_dir: object
    history: dict
    model: keras.Model
    interrupted: bool = False
    resumed_from_epoch: int = 0
    step: int = 0
    signal: object = None  # the signal that interrupted it (SIGINT or SIGTERM)


def split_options(options):
    """(TrainConfig fields, knobs) from `train()`'s keyword arguments."""
    fields = set(train_config.field_names())
    chosen = {key: value for key, value in options.items() if key in fields}
    knobs = {key: value for key, value in options.items() if key not in fields}
    unknown = sorted(set(knobs) - set(registry.KNOB_TYPES))
    if unknown:
        from vgzoo.errors import unknown_choice

        raise unknown_choice("option", unknown[0], sorted(fields | set(registry.KNOB_TYPES)))
    return chosen, knobs


def _tf_dataset_info(dataset, num_classes):
    inputs_spec = dataset.element_spec[0]
    return DataInfo(name=CUSTOM_DATA, input_shape=tuple(inputs_spec.shape[1:]),
                    num_classes=num_classes, train_size=None, val_size=0)


def _load_data(config, data, num_classes):
    """(train, validation, info) from a task name, arrays or a tf.data.Dataset."""
    if isinstance(data, tf.data.Dataset):
        return data, None, _tf_dataset_info(data, num_classes)
    if data is not None:
        from vgzoo.data.images import make_datasets

        return make_datasets(None, data=data, batch_size=config.batch_size, seed=config.seed,
                             validation_split=config.validation_split, limit=config.limit,
                             num_classes=num_classes)
    return get_task(config.dataset).datasets(
        batch_size=config.batch_size, seed=config.seed, seq_len=config.seq_len, limit=config.limit,
        validation_split=config.validation_split, source_split=config.source_split,
    )


def _build_model(model, info, knobs):
    if isinstance(model, keras.Model):
        if knobs:
            raise VgzooError(f"knobs {sorted(knobs)} apply to registry names, not to a built model.")
        return model, {"name": model.name, "knobs": {}}
    if info.num_classes is None:
        raise VgzooError("training a registry model on a tf.data.Dataset needs num_classes=.")
    spec = registry.get_spec(model)
    if "head" in spec.knobs:
        knobs = dict(knobs, head=knobs.get("head", info.head))
    built = factory.create_model(model, info.input_shape, info.num_classes, **knobs)
    arguments = spec.resolve(knobs)
    if arguments.get("match_params") is not None:
        from vgzoo.architectures.recurrent import effective_width

        # The width trained, not the default that match_params overrode.
        arguments["width"] = effective_width(info.input_shape, info.num_classes, **arguments)
    description = {
        "name": spec.name,
        "family": spec.family,
        "partner": spec.partner,
        "knobs": {key: value for key, value in knobs.items() if key != "head"},
        "arguments": arguments,
    }
    return built, description


def _steps_per_epoch(train_data, requested):
    cardinality = int(train_data.cardinality())
    if resume.is_stream(train_data):
        return DEFAULT_STREAM_STEPS if requested is None else requested
    if requested is not None and requested != cardinality:
        raise VgzooError(
            f"steps_per_epoch applies to streamed sequence tasks; this data set has {cardinality} batches."
        )
    if cardinality < 1:
        raise VgzooError("the training data is empty or of unknown length; pass steps_per_epoch.")
    return cardinality


def _compile(observed, config, run, total_steps, objective):
    optimizer = objective.optimizer
    if optimizer is None:
        optimizer = build_optimizer(
            name=config.optimizer, learning_rate=run["learning_rate"], momentum=config.momentum,
            weight_decay=config.weight_decay, schedule=config.schedule, total_steps=total_steps,
            warmup_steps=config.warmup_steps, clipnorm=config.clipnorm,
            global_clipnorm=config.global_clipnorm,
        )
    loss = run["loss"] if objective.loss is None else objective.loss
    metrics = list(run["metrics"]) if objective.metrics is None else objective.metrics
    # Summary ops cannot be compiled by XLA.
    observed.compile(optimizer=optimizer, loss=loss, loss_weights=objective.loss_weights,
                     metrics=metrics, jit_compile=False)


def _learning_rate(config, objective):
    if objective.optimizer is not None:
        return objective.learning_rate()
    return config.learning_rate or DEFAULT_LEARNING_RATES[config.optimizer]


def _run_record(built, model_description, info, config, steps_per_epoch, histogram_layers, replicas,
                objective):
    """config.json: the TrainConfig as given, beside what was resolved from it."""
    given = objective.describe()
    record = {
        "model": model_description,
        # Depth order, which the vgzoo tab draws layers in (tags sort alphabetically).
        "layer_order": summaries.layers_in_order(built.trainable_variables),
        "train": config.to_json(),
        "dataset": dataclasses.asdict(info),
        "learning_rate": _learning_rate(config, objective),
        "loss": given.get("loss", info.loss),
        "metrics": given.get("metrics", info.metrics),
        "steps_per_epoch": steps_per_epoch,
        "histogram_layers": histogram_layers,
        "replicas": replicas,
        "command": " ".join(sys.argv),
        "versions": runs.library_versions(),
    }
    if "optimizer" in given:
        record["optimizer"] = given["optimizer"]
    if "loss_weights" in given:
        record["loss_weights"] = given["loss_weights"]
    record["fingerprint"] = resume.fingerprint(train_config.fingerprint_source(model_description, config, given))
    return record


def train(model, *, data=None, num_classes=None, config=None, **options):
    """Train `model` (a registry name or a Keras model) with gradients recorded.

    Options are the fields of `vgzoo.training.config.TrainConfig` (dataset,
    epochs, batch_size, optimizer, learning_rate, ...; `config=` gives them
    all at once) and, for registry names, the model's knobs. Data is a
    dataset or task name (`dataset="mnist"`), `data=(x, y)` arrays, or a
    batched `tf.data.Dataset` of (inputs, labels). An interrupted run with
    the same settings is resumed unless `resume=False`; `weights=` starts
    from a checkpoint. Returns a `TrainResult` with the run folder, the Keras
    history and the model.
    """
    objective = take_objective(options)
    chosen, knobs = split_options(options)
    if data is not None and "dataset" not in chosen and config is None:
        chosen["dataset"] = CUSTOM_DATA
    if config is None and "dataset" not in chosen:
        raise VgzooError("say what to train on: dataset='mnist' (or cifar10, cifar100, adding, ...) "
                         "or data=(x, y).")
    config = (config or train_config.TrainConfig(dataset=chosen["dataset"])).replace(**chosen)
    if config.optimizer == train_config.FROM_PYTHON and objective.optimizer is None:
        raise VgzooError("this configuration's optimizer was given from Python (see 'optimizer' in "
                         "its config.json): pass it again as optimizer=.")
    if data is None:
        get_task(config.dataset)
    if isinstance(model, str):
        registry.get_spec(model).resolve(knobs)  # fail on bad knobs before loading data

    # The strategy first: it may lay out devices, which must precede any op.
    distribution = make_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    train_data, validation_data, info = _load_data(config, data, num_classes)
    steps_per_epoch = _steps_per_epoch(train_data, config.steps_per_epoch)
    with distribution.scope():
        built, model_description = _build_model(model, info, knobs)
    if config.weights:
        weights_file.load_into(built, config.weights, f"{built.name} as configured",
                               "it was saved from another architecture or knobs")
    histogram_layers = selection.select_layers(built, config.log_layers)
    record = _run_record(built, model_description, info, config, steps_per_epoch, histogram_layers,
                         distribution.num_replicas_in_sync, objective)
    dataset_label = info.name if data is None else CUSTOM_DATA
    # Several workers share one run: the chief writes it, the others a scratch folder.
    opener = cluster.open_run if config.strategy == "multiworker" else resume.open_run
    run = opener(config.logdir, dataset_label, built.name, config.run_name, record, config.resume)
    try:
        with faults.reported(run.run_dir, started=run.state is not None), distribution.scope(), \
                cluster.reported(run):
            return cluster.as_run(run, _fit(built, run, record, config, objective, train_data,
                                            validation_data))
    except VgzooError:
        if run.state is None and not resume.read_state(run.run_dir):
            faults.remove_if_empty(run.run_dir)
        raise
    finally:
        run.lock.release()


def _test_curve(built, record, config, run_dir):
    task = get_task(record["dataset"]["name"])
    if not task.images:
        raise VgzooError("test_every needs a named image dataset (mnist, cifar10, cifar100).")
    dataset = task.test_dataset(batch_size=500, mean=record["dataset"]["mean"],
                                std=record["dataset"]["std"])
    writer = summaries.create_writer(run_dir / TEST_FOLDER)
    return TestCurve(built, dataset, writer, config.test_every), writer


def _fit(built, run, record, config, objective, train_data, validation_data):
    run_dir, state = run.run_dir, run.state
    if state:
        resume.truncate_run_events(run_dir, state)
    with signals.InterruptFlag() as interrupt:
        interrupt = cluster.agreed_interrupt(run, interrupt)  # a signal stops every worker alike
        # Held updates: a diverged run's weights, and its checkpoints, stay the last finite ones.
        observed = watch(built, run_dir, config.hist_every, record["histogram_layers"], keep_finite=True,
                         run_config=None if state else record, stop=interrupt.stop)
        recording = observed.recording.value
        steps_per_epoch = record["steps_per_epoch"]
        _compile(observed, config, record, steps_per_epoch * config.epochs, objective)
        initial_epoch = state["epoch"] if state else 0
        if state:
            train_data = resume.restore(observed, run_dir, state, train_data, steps_per_epoch)
        else:
            hparams.write_run_start(run_dir, record, run_dir.name)
        callbacks, test_writer = [], None
        if config.test_every:
            curve, test_writer = _test_curve(built, record, config, run_dir)
            callbacks.append(curve)
        # Last, so a saved state comes after every summary of its epoch but the
        # pictures, which the painter writes while the next epoch trains.
        monitor = "val_loss" if validation_data else "loss"
        callbacks.extend(cluster.callbacks(interrupt))
        callbacks.append(resume.TrainingState(run_dir, interrupt, monitor, best=(state or {}).get("best")))
        try:
            history = observed.fit(
                train_data,
                validation_data=validation_data,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                # Finite data sets are re-read each epoch; streams are not.
                steps_per_epoch=steps_per_epoch if resume.is_stream(train_data) else None,
                callbacks=callbacks,
                verbose=config.verbose,
                shuffle=False,  # the tf.data pipeline shuffles, seeded
            )
        finally:
            recording.close()
            if test_writer is not None:
                test_writer.close()
    if interrupt.raised and interrupt.reason != "interrupted":
        hparams.write_run_end(run_dir, "failure")
        raise TrainingDiverged(
            f"{interrupt.reason}. The last good weights are in {run_dir / 'last.weights.h5'} and "
            f"the events so far in {run_dir}; lower the learning rate or clip gradients (--global-clipnorm)."
        )
    if not interrupt.raised:
        hparams.write_final_metrics(run_dir, history.history, config.epochs)
        resume.mark_finished(run_dir)
    return TrainResult(
        run_dir=run_dir,
        history=history.history,
        model=built,
        interrupted=interrupt.raised,
        resumed_from_epoch=initial_epoch,
        step=int(keras_internals.batch_counter(observed.optimizer).numpy()),
        signal=interrupt.signal,
    )
