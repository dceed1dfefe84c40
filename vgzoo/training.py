"""Fit wiring: model, data, optimizer, callbacks and the run folder.

The observed train step records gradients; `resume` keeps runs safe from
interruption; this module only decides what is trained, how, and where its
outputs go.
"""
import dataclasses
import sys

import keras
import tensorflow as tf

from vgzoo import registry, resume, runs
from vgzoo.distribute import STRATEGIES, make_strategy
from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.observe.epoch import EpochLogger, RecordedFigure
from vgzoo.observe.events import truncate_events
from vgzoo.observe.explosion import ExplosionGuard, TrainingDiverged
from vgzoo.observe.painter import Painter
from vgzoo.observe.test_curve import TEST_FOLDER, TestCurve
from vgzoo.observe.step import ObservedModel
from vgzoo.observe import comparison, figures, selection, summaries
from vgzoo.optim import DEFAULT_LEARNING_RATES, OPTIMIZERS, SCHEDULES, build_optimizer

CLASSIFICATION_LOSS = "sparse_categorical_crossentropy"
KERAS_ITERATORS_PER_EPOCH = 2
# Sequence tasks stream fresh examples for ever; an "epoch" is this many steps.
DEFAULT_STREAM_STEPS = 100


@dataclasses.dataclass
class TrainResult:
    run_dir: object
    history: dict
    model: keras.Model
    interrupted: bool = False
    resumed_from_epoch: int = 0
    step: int = 0


def _positive(name, value, kind=(int, float)):
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise VgzooError(f"{name} must be a positive number, got {value!r}.")
    return value


def _check_options(epochs, batch_size, hist_every, optimizer, schedule, strategy):
    _positive("epochs", epochs, int)
    _positive("batch_size", batch_size, int)
    _positive("hist_every", hist_every, int)
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    if schedule not in SCHEDULES:
        raise unknown_choice("schedule", schedule, SCHEDULES)
    if strategy not in STRATEGIES:
        raise unknown_choice("strategy", strategy, STRATEGIES)


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


def _load_data(dataset, data, num_classes, **options):
    from vgzoo.datasets import DATASET_NAMES, make_datasets

    if isinstance(data, tf.data.Dataset):
        return data, None, _dataset_info(data, num_classes)
    seq_len = options.pop("seq_len")
    if data is not None:
        return make_datasets(None, data=data, **options)
    from vgzoo.datasets.sequences import SEQUENCE_TASKS, make_sequence_datasets

    if dataset in SEQUENCE_TASKS:
        return make_sequence_datasets(dataset, seq_len=seq_len, **options)
    if dataset not in DATASET_NAMES:
        raise unknown_choice("dataset", dataset, DATASET_NAMES + SEQUENCE_TASKS)
    if seq_len is not None:
        raise VgzooError(f"seq_len applies to the sequence tasks {', '.join(SEQUENCE_TASKS)}, not to images.")
    return make_datasets(dataset, **options)


def _build_model(model, info, knobs):
    if isinstance(model, keras.Model):
        if knobs:
            raise VgzooError(f"knobs {sorted(knobs)} apply to registry names, not to a built model.")
        return model, {"name": model.name}
    if info.num_classes is None:
        raise VgzooError("training a registry model on a tf.data.Dataset needs num_classes=.")
    spec = registry.get_spec(model)
    head = getattr(info, "head", None)
    if head and "head" in spec.knobs:
        knobs = dict(knobs, head=knobs.get("head", head))
    built = registry.create_model(model, info.input_shape, info.num_classes, **knobs)
    description = {
        "name": spec.name,
        "family": spec.family,
        "partner": spec.partner,
        "arguments": spec.resolve(knobs),
    }
    return built, description


def _is_stream(train_data):
    return int(train_data.cardinality()) == tf.data.INFINITE_CARDINALITY


def _steps_per_epoch(train_data, requested):
    cardinality = int(train_data.cardinality())
    if _is_stream(train_data):
        return DEFAULT_STREAM_STEPS if requested is None else _positive("steps_per_epoch", requested, int)
    if requested is not None and requested != cardinality:
        raise VgzooError(
            f"steps_per_epoch applies to streamed sequence tasks; this data set has {cardinality} batches."
        )
    if cardinality < 1:
        raise VgzooError("the training data is empty or of unknown length; pass steps_per_epoch.")
    return cardinality


def _load_initial_weights(model, path):
    try:
        model.load_weights(path)
    except FileNotFoundError:
        raise VgzooError(f"no checkpoint at {path}.") from None
    except (ValueError, OSError, KeyError) as error:
        raise VgzooError(
            f"the checkpoint {path} does not fit {model.name} as configured "
            f"(it was saved from another architecture or knobs): {str(error).splitlines()[0]}"
        ) from None


def _open_run(logdir, dataset_label, model_name, run_name, config, allow_resume):
    """The run folder, locked: an interrupted run of the same config, or a new one."""
    config["fingerprint"] = runs.fingerprint(config)
    parent = runs.run_parent(logdir, dataset_label, model_name)
    run_dir = lock = None
    if allow_resume and not run_name:
        run_dir, lock = runs.claim_resumable(parent, config["fingerprint"], resume.is_resumable)
    if run_dir is None:
        run_dir = runs.new_run_dir(logdir, dataset_label, model_name, run_name)
        lock = runs.RunLock(run_dir)
        if not lock.acquire():
            raise VgzooError(f"another process is training into {run_dir}; choose another --run-name.")
    state = resume.read_state(run_dir) if resume.is_resumable(run_dir) else None
    if state and runs.read_config(run_dir).get("fingerprint") != config["fingerprint"]:
        lock.release()
        raise VgzooError(f"{run_dir} holds a run with other settings; choose another --run-name.")
    if state is None:
        runs.save_config(run_dir, config)
    return run_dir, lock, state


def _compile(observed, options, total_steps, loss):
    observed.compile(
        optimizer=build_optimizer(total_steps=total_steps, **options),
        loss=loss,
        metrics=["accuracy"] if loss == CLASSIFICATION_LOSS else [],
        # Summary ops cannot be compiled by XLA.
        jit_compile=False,
    )


# More lines than this hide one another, and each one slows the drawing.
FLOW_LINES = 8


def _figure_callbacks(observed, writer, hist_every, painter):
    """Gradient flow against depth each epoch; through time too for sequences."""
    flow = RecordedFigure(
        writer, figures.FLOW_TAG, observed.latest_layer_mean_abs.value, hist_every, painter,
        "gradient_flow_png", leading=(list(observed.layer_order),), options={"title": observed.name},
        max_rows=FLOW_LINES,
    )
    if not observed.watch_inputs:
        return [flow]
    heatmap = RecordedFigure(
        writer, figures.HEATMAP_TAG, observed.latest_timestep_norms.value, hist_every, painter,
        "heatmap_png", cumulative=True,
    )
    return [flow, heatmap]


def observer_callbacks(observed, train_writer, validation_writer, config, stop, painter, write_config=True):
    """What records a run besides its train step: epochs, explosions, pictures.

    The pictures are drawn by `painter` while training goes on; call its
    `finish()` before closing `train_writer`.
    """
    return [
        EpochLogger(train_writer, validation_writer, config, write_config=write_config),
        ExplosionGuard(observed.explosion_note.value, observed.trainable_variables, stop),
        *_figure_callbacks(observed, train_writer, config["hist_every"], painter),
    ]


def _test_data(config):
    """The test split of a named image dataset, standardised as training was."""
    from vgzoo.datasets.images import make_test_dataset

    dataset = config["dataset"]
    if dataset.get("mean") is None:
        raise VgzooError("test_every needs a named image dataset (mnist, cifar10, cifar100).")
    return make_test_dataset(dataset["name"], dataset["mean"], dataset["std"])


def _resume_from(observed, run_dir, state, train_data, steps_per_epoch):
    """Weights and optimizer restored; the data where the interrupted run left it."""
    resume.restore(observed, run_dir)
    if _is_stream(train_data):
        # fit() reads a stream through one iterator across epochs.
        return train_data.skip(state["epoch"] * steps_per_epoch)
    # Every iterator opened on the data advances its seeded reshuffle. Keras 3
    # opens two per epoch on data of known length (one when an epoch ends,
    # another when the next begins), so the uninterrupted run's epoch e read
    # the order of iterator 2e + 1. test_resume checks this bitwise.
    for _ in range(KERAS_ITERATORS_PER_EPOCH * state["epoch"]):
        iter(train_data)
    return train_data


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
    clipnorm=None,
    global_clipnorm=None,
    warmup_steps=0,
    test_every=0,
    seed=0,
    hist_every=50,
    log_layers=None,
    logdir=runs.DEFAULT_LOGDIR,
    limit=None,
    validation_split=0.1,
    source_split="train",
    num_classes=None,
    seq_len=None,
    steps_per_epoch=None,
    weights=None,
    run_name=None,
    resume_run=True,
    strategy="default",
    verbose="auto",
    **knobs,
):
    """Train `model` (a registry name or a Keras model) with gradients recorded.

    Data is a dataset name (`mnist`, `cifar10`, `cifar100`), `data=(x, y)`
    arrays, or a batched `tf.data.Dataset` of (inputs, labels). An
    interrupted run with the same settings is resumed unless
    `resume_run=False`; `weights=` starts from a checkpoint. `log_layers`
    (globs on layer names, a list or comma-separated) picks the layers whose
    histograms are written every `hist_every` steps. Returns a
    `TrainResult` with the run folder, the Keras history and the model.
    """
    if dataset is None and data is None:
        raise VgzooError("say what to train on: dataset='mnist' (or cifar10, cifar100) or data=(x, y).")
    _check_options(epochs, batch_size, hist_every, optimizer, schedule, strategy)
    learning_rate = _positive("learning_rate", learning_rate or DEFAULT_LEARNING_RATES[optimizer])
    if isinstance(model, str):
        registry.get_spec(model).resolve(knobs)  # fail on bad knobs before loading data

    # The strategy first: it may lay out devices, which must precede any op.
    distribution = make_strategy(strategy)
    keras.utils.set_random_seed(seed)
    train_data, validation_data, info = _load_data(
        dataset,
        data,
        num_classes,
        batch_size=batch_size,
        validation_split=validation_split,
        limit=limit,
        seed=seed,
        source_split=source_split,
        seq_len=seq_len,
    )
    steps_per_epoch = _steps_per_epoch(train_data, steps_per_epoch)
    with distribution.scope():
        built, model_description = _build_model(model, info, knobs)
    if weights:
        _load_initial_weights(built, weights)
    histogram_layers = selection.select_layers(built, log_layers)
    optimizer_options = dict(
        name=optimizer,
        learning_rate=learning_rate,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=schedule,
        clipnorm=clipnorm,
        global_clipnorm=global_clipnorm,
    )
    if warmup_steps:
        optimizer_options["warmup_steps"] = int(warmup_steps)
    config = {
        "model": model_description,
        "dataset": dataclasses.asdict(info),
        "optimizer": optimizer_options,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "loss": getattr(info, "loss", CLASSIFICATION_LOSS),
        "batch_size": batch_size,
        "seed": seed,
        "hist_every": hist_every,
        **({"test_every": int(test_every)} if test_every else {}),
        "log_layers": selection.parse_globs(log_layers),
        "histogram_layers": histogram_layers,
        "strategy": strategy,
        "replicas": distribution.num_replicas_in_sync,
        "initial_weights": str(weights) if weights else None,
        "command": " ".join(sys.argv),
        "versions": runs.library_versions(),
    }
    dataset_label = dataset if data is None else "custom"
    run_dir, lock, state = _open_run(
        logdir, dataset_label, built.name, run_name, config, resume_run
    )
    try:
        with distribution.scope():
            return _fit(built, run_dir, state, config, train_data, validation_data, verbose)
    finally:
        lock.release()


def _fit(built, run_dir, state, config, train_data, validation_data, verbose):
    if state:
        # Before the writers open their new files, which must not be rewritten.
        for folder in ("train", "validation", TEST_FOLDER):
            truncate_events(run_dir / folder, state["epoch"], state["step"])
    train_writer = summaries.create_writer(run_dir / "train")
    validation_writer = summaries.create_writer(run_dir / "validation") if validation_data else None
    observed = ObservedModel(built, train_writer, config["hist_every"], config["histogram_layers"])
    steps_per_epoch = config["steps_per_epoch"]
    _compile(observed, config["optimizer"], steps_per_epoch * config["epochs"], config["loss"])
    initial_epoch = state["epoch"] if state else 0
    if state:
        train_data = _resume_from(observed, run_dir, state, train_data, steps_per_epoch)
    else:
        comparison.write_run_start(run_dir, config, run_dir.name)
    monitor = "val_loss" if validation_data else "loss"
    painter = Painter()
    with resume.InterruptFlag() as interrupt:
        callbacks = observer_callbacks(
            observed, train_writer, validation_writer, config, interrupt.stop, painter,
            write_config=not state,
        )
        test_writer = None
        if config.get("test_every"):
            test_writer = summaries.create_writer(run_dir / TEST_FOLDER)
            callbacks.append(TestCurve(built, _test_data(config), test_writer, config["test_every"]))
        # Last, so a saved state comes after every summary of its epoch but the
        # pictures, which the painter writes while the next epoch trains.
        callbacks.append(resume.TrainingState(run_dir, interrupt, monitor, best=(state or {}).get("best")))
        try:
            history = observed.fit(
                train_data,
                validation_data=validation_data,
                epochs=config["epochs"],
                initial_epoch=initial_epoch,
                # Finite data sets are re-read each epoch; streams are not.
                steps_per_epoch=steps_per_epoch if _is_stream(train_data) else None,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,  # the tf.data pipeline shuffles, seeded
            )
        finally:
            painter.close()  # the last epoch's pictures, before their writer closes
            for writer in (train_writer, validation_writer, test_writer):
                if writer is not None:
                    writer.close()
    if interrupt.raised and interrupt.reason != "interrupted":
        raise TrainingDiverged(
            f"{interrupt.reason}. The last good weights are in {run_dir / 'last.weights.h5'} and "
            f"the events so far in {run_dir}; lower the learning rate or clip gradients (--global-clipnorm)."
        )
    if not interrupt.raised:
        comparison.write_final_metrics(run_dir, history.history, config["epochs"])
        resume.mark_finished(run_dir)
    return TrainResult(
        run_dir=run_dir,
        history=history.history,
        model=built,
        interrupted=interrupt.raised,
        resumed_from_epoch=initial_epoch,
        step=int(observed.optimizer.iterations.numpy()),
    )
