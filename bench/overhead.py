"""What recording gradients costs: vgzoo's observed fit against plain Keras `fit`.

For each model, five copies (same builder, seed, data and optimizer) train in
one process, taking turns so that a busy machine slows all of them alike:

  plain        model.fit, no callbacks (the baseline)
  vgzoo        the observed step and vgzoo's callbacks at the default cadence
  vgzoo-every  the same, recording every step (hist_every=1)
  vgzoo-nohold the default cadence, the other way round as to holding updates:
  vgzoo-hold   the zoo's models are observed as vgzoo.train observes them,
               each update held until every gradient is known to be finite,
               and nohold applies it as Keras' own step does; the user's
               model is observed as vgzoo.watch's default, unheld, and hold
               holds them (keep_finite=True)
  keras-tb     model.fit with keras.callbacks.TensorBoard(histogram_freq=1)

Every round builds the five afresh: two builds of the very same model differ
in speed by up to 5% for as long as they live (memory placement), so a
comparison of one build each is a comparison of their luck. In a round each
configuration runs one `fit` of --epochs epochs of --steps batches (the
same cached batches for all, see `steady_batches`), in an order that
rotates from round to round, so per-epoch work (vgzoo's pictures, Keras'
weight histograms) is in the figures, amortised over --steps: 200 by
default, where a CIFAR epoch has 390 at batch 128 and a vgzoo sequence
epoch 100. vgzoo draws an epoch's pictures (at most every 20 s of a fit,
and its last epoch's) in a child process while the next epoch trains, so
the drawing of all but the last epoch competes with training for the CPU,
as in a run; the last one is waited for after the fit, untimed, as a run
waits once at its end. Each model also runs at --large-batch (128, the
CIFAR recipe's) over as many examples an epoch. Then the
train step alone: the configurations take turns 5 steps at a time. A
configuration's first 2 steps trace its functions and are not timed.
A fit is timed over its epochs (`EpochClock`), every callback's work
included. Printed: median steps/second and the median over rounds of each
round's ratio to plain fit (the verdict), and beside it the ratio of the
median rates: where the two disagree, the machine was noisier than the
difference being measured. Checkpointing is not measured: plain fit has none.

    python bench/overhead.py                      # ~30 minutes on 2 idle cores
    python bench/overhead.py --only lstm --large-batch 0 --rounds 9
    python bench/overhead.py --only user-cnn --large-batch 0 --configs vgzoo,vgzoo-every --rounds 24
"""
import argparse
import contextlib
import inspect
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import vgzoo  # noqa: E402
from vgzoo.data.sequences import generate  # noqa: E402
from vgzoo.training.config import TrainConfig  # noqa: E402
from vgzoo.observe.watch import watch  # noqa: E402

DEFAULT_HIST_EVERY = TrainConfig().hist_every
FIT_STEPS = 200  # steps an epoch of a timed fit
FIT_EPOCHS = 3  # epochs a timed fit
# Ratios to plain fit: the zoo's models (issue "Recording nearly free"), a user's own model through watch.
TARGETS = {"resnet20": {"vgzoo": 0.97, "vgzoo-every": 0.85}, "lstm": {"vgzoo": 0.97, "vgzoo-every": 0.85},
           "user-cnn": {"vgzoo": 0.95, "vgzoo-every": 0.80}}


def resnet20_task(examples, seed):
    random = np.random.default_rng(seed)
    x = random.standard_normal((examples, 32, 32, 3), dtype=np.float32)
    y = random.integers(0, 10, examples)
    build = lambda: vgzoo.create_model("resnet20", (32, 32, 3), 10)  # noqa: E731
    return build, x, y, "sparse_categorical_crossentropy"


def lstm_task(examples, seed, seq_len=100):
    x, y = generate("adding", examples, seq_len, seed=seed)
    build = lambda: vgzoo.create_model("lstm", (seq_len, 2), 1, head="value", width=128)  # noqa: E731
    return build, x.astype(np.float32), y.astype(np.float32), "mse"


def user_cnn_task(examples, seed):
    """A user's own small Keras CNN, not from the zoo, observed through `vgzoo.watch`."""
    random = np.random.default_rng(seed)
    x = random.standard_normal((examples, 32, 32, 3), dtype=np.float32)
    y = random.integers(0, 10, examples)

    def build():
        layers = keras.layers
        return keras.Sequential([
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax"),
        ], name="user_cnn")

    return build, x, y, "sparse_categorical_crossentropy"


TASKS = {"resnet20": ("resnet20, CIFAR-shaped", resnet20_task), "lstm": ("lstm, adding task T=100", lstm_task),
         "user-cnn": ("a user's own Keras CNN through vgzoo.watch", user_cnn_task)}
# Whether a model's default holds each update until its gradients are known to be finite: the zoo's
# as `vgzoo.train` observes them (it does), the user's as `vgzoo.watch` does by default (read from it).
HOLDS = {"resnet20": True, "lstm": True,
         "user-cnn": inspect.signature(watch).parameters["keep_finite"].default}


def configurations(name):
    """The five configurations of a model's rows; the fourth is its default cadence with the other hold."""
    return ("plain", "vgzoo", "vgzoo-every", "vgzoo-nohold" if HOLDS[name] else "vgzoo-hold", "keras-tb")


def chosen_configurations(name, wanted=None):
    """`configurations(name)`, or plain and those of them named in `wanted` (comma-separated)."""
    every = configurations(name)
    if not wanted:
        return every
    names = {config.strip() for config in wanted.split(",") if config.strip()}
    unknown = sorted(names - set(every))
    if unknown:
        raise SystemExit(f"bench/overhead.py: no configuration {', '.join(unknown)} for {name}; "
                         f"it has {', '.join(every)}")
    return tuple(config for config in every if config == "plain" or config in names)


def step_configurations(configs):
    # train_on_batch runs no callbacks, so keras-tb would be plain again.
    return tuple(config for config in configs if config != "keras-tb")


class Trainer:
    """One configuration: a model, its compiled function and its callbacks.

    `hist_every` replaces a vgzoo configuration's cadence (bench/profile_step.py's fits).
    """

    def __init__(self, config, build, loss, logdir, seed, holds, hist_every=None):
        keras.utils.set_random_seed(seed)
        model = build()
        self.callbacks = []
        if config.startswith("vgzoo"):
            hist_every = hist_every or (1 if config == "vgzoo-every" else DEFAULT_HIST_EVERY)
            keep_finite = {"vgzoo-hold": True, "vgzoo-nohold": False}.get(config, holds)
            model = watch(model, logdir, hist_every, keep_finite=keep_finite)
        elif config == "keras-tb":
            self.callbacks = [keras.callbacks.TensorBoard(str(logdir), histogram_freq=1)]
        # Summary ops cannot be XLA-compiled, so vgzoo compiles without XLA;
        # plain fit keeps Keras' default ("auto": no XLA on a CPU-only machine).
        jit = False if config.startswith("vgzoo") else "auto"
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, jit_compile=jit)
        self.model = model

    def seconds(self, batches, epochs=1):
        """Seconds the fit spent in its epochs, every callback's epoch work included."""
        clock = EpochClock()
        self.model.fit(
            batches, epochs=epochs, shuffle=False, verbose=0, callbacks=[clock.start, *self.callbacks, clock.stop]
        )
        return clock.seconds


class EpochClock:
    """Times epochs from the first callback's `on_epoch_begin` to the last one's `on_epoch_end`.

    Keras' own set-up and tear-down of a fit, the same for every
    configuration, stay out: on this machine, releasing the data iterator
    as `fit` returns sometimes stalls for up to 5 s, which made a third of
    a 5-second fit random.
    """

    def __init__(self):
        self.seconds = 0.0
        self.started = None
        self.start = keras.callbacks.LambdaCallback(on_epoch_begin=self._begin)
        self.stop = keras.callbacks.LambdaCallback(on_epoch_end=self._end)

    def _begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def _end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.started


def rotated(configs, shift):
    """`configs` starting at `shift`, so that no configuration always runs first."""
    shift %= len(configs)
    return configs[shift:] + configs[:shift]


def steady_batches(x, y, batch_size):
    """The batches every configuration's fit reads: cut once, cached, no autotuned threads.

    Given arrays, Keras slices each epoch in a tf.data pipeline whose
    autotuned threads compete with training for the 2 cores, and identical
    fits then spread far more than the few percent the targets are about
    (docs/overhead.md gives the figures).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().with_options(options)
    for _ in batches:  # fills the cache, so no timed epoch is the first
        pass
    return batches


def measure(name, args, logdir):
    """Seconds per fit and per single step, by configuration: fresh builds every round."""
    build, x, y, loss = TASKS[name][1](args.steps * args.batch_size, args.seed)
    batches = steady_batches(x, y, args.batch_size)
    configs = chosen_configurations(name, args.configs)
    fit_times = {config: [] for config in configs}
    step_times = {config: [] for config in step_configurations(configs)}
    for round_ in range(args.rounds):
        # Every build (and its keras.utils.set_random_seed, which clears TensorFlow's caches of
        # instantiated functions) before any warm-up: a model warmed up before the next build's
        # seeding builds its functions again inside its timed fit (0.07 s at the first quiet step,
        # 0.2-0.3 s at the first recorded one, on the user's CNN).
        trainers = {config: Trainer(config, build, loss, logdir / f"{config}-{round_}", args.seed, HOLDS[name])
                    for config in configs}
        for config, seconds in timed_fits(trainers, batches, args.epochs, round_).items():
            fit_times[config].append(seconds)
        for config, seconds in measure_steps(trainers, tuple(step_times), x, y, args, round_).items():
            step_times[config].extend(seconds)
    return fit_times, step_times if args.step_rounds else None


def timed_fits(trainers, batches, epochs, round_, warm_up=lambda config: contextlib.nullcontext()):
    """Seconds of one fit of each trainer, by configuration, in `round_`'s rotated order.

    Each trainer first fits 2 batches inside `warm_up(config)`, which traces
    its functions; the caller builds every trainer before this warms any.
    """
    for config, trainer in trainers.items():
        with warm_up(config):
            trainer.seconds(batches.take(2))
    return {config: trainers[config].seconds(batches, epochs) for config in rotated(tuple(trainers), round_)}


def measure_steps(trainers, configs, x, y, args, round_):
    """Seconds per step of `train_on_batch`, the configurations taking turns every 5 steps.

    Finer-grained than the fits, so less exposed to a shared machine's slow
    spells; it times the train step alone (no callbacks, no pictures).
    """
    batch = slice(0, args.batch_size)
    configs = rotated(configs, round_)
    times = {config: [] for config in configs}
    for _ in range(args.step_rounds):
        for config in configs:
            model = trainers[config].model
            start = time.perf_counter()
            for _ in range(5):
                model.train_on_batch(x[batch], y[batch])
            times[config].append((time.perf_counter() - start) / 5)
    return times


def ratios_to_plain(times, config):
    """The median of the paired (same round or turn) ratios, and the ratio of the median times."""
    paired = statistics.median(p / t for p, t in zip(times["plain"], times[config]))
    return paired, statistics.median(times["plain"]) / statistics.median(times[config])


def report_steps(times):
    print(f"  single steps, taking turns 5 at a time, median of {len(times['plain'])}:")
    for config in times:
        ratio, rate_ratio = ratios_to_plain(times, config)
        print(f"  {config:<14}{1000 * statistics.median(times[config]):>7.1f} ms{ratio:>16.3f}{rate_ratio:>12.3f}")
    sys.stdout.flush()


def report(name, times, steps, epochs, targets):
    print(f"\n{name}: {epochs} epochs of {steps} steps a round, median of {len(times['plain'])} rounds")
    print(f"  {'configuration':<14}{'steps/s':>9}{'ratio to plain':>16}{'rate ratio':>12}{'target':>9}"
          f"{'rounds, min-max':>22}")
    ratios = {}
    for config in times:
        rate = steps * epochs / statistics.median(times[config])
        ratios[config], rate_ratio = ratios_to_plain(times, config)
        target = targets.get(config)
        verdict = "" if target is None else f">={target:.2f} {'ok' if ratios[config] >= target else 'MISSED'}"
        rounds = [p / t for p, t in zip(times["plain"], times[config])]
        spread = f"{min(rounds):.3f}-{max(rounds):.3f}"  # the scatter a verdict must beat
        print(f"  {config:<14}{rate:>9.2f}{ratios[config]:>16.3f}{rate_ratio:>12.3f}  {verdict:<13}{spread:>13}")
    if not {"vgzoo", "keras-tb"} <= set(times):
        sys.stdout.flush()
        return
    # Paired within rounds too: the rounds in which vgzoo's default beat Keras' TensorBoard callback.
    wins = sum(tb >= vg for tb, vg in zip(times["keras-tb"], times["vgzoo"]))
    verdict = "ok" if ratios["vgzoo"] >= ratios["keras-tb"] else "MISSED"
    print(f"  vgzoo (default) against keras-tb: {ratios['vgzoo']:.3f} >= {ratios['keras-tb']:.3f} {verdict}"
          f" (faster in {wins} of {len(times['plain'])} rounds)")
    sys.stdout.flush()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per configuration (default 7)")
    parser.add_argument("--steps", type=int, default=FIT_STEPS, help=f"steps per epoch (default {FIT_STEPS})")
    parser.add_argument("--epochs", type=int, default=FIT_EPOCHS, help=f"epochs per round (default {FIT_EPOCHS})")
    parser.add_argument(
        "--step-rounds", type=int, default=6,
        help="turns of 5 single train steps per configuration and round (default 6; 0 skips)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--large-batch", type=int, default=128,
                        help="a second batch size (the CIFAR recipe's), its epochs as many examples "
                        "long as the first one's; 0 skips it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=sorted(TASKS), default=None, help="one model only")
    parser.add_argument("--configs", default=None,
                        help="comma-separated configurations to run beside plain (default: all five); "
                        "fewer take their turns more often in the same time")
    return parser.parse_args(argv)


def picture_seconds(repeats=9):
    """Median seconds to draw an epoch's pictures: resnet20's flow picture and a T=100 heat map."""
    from vgzoo.observe import figures

    layers = [variable.path.rsplit("/", 1)[0] for variable in vgzoo.create_model("resnet20").trainable_variables]
    layers = list(dict.fromkeys(layers))
    random = np.random.default_rng(0)
    flow_rows = [random.uniform(1e-4, 1e-1, len(layers)) for _ in range(8)]
    heat_rows = [random.uniform(1e-6, 1e-1, 100) for _ in range(12)]
    timings = {"flow picture (resnet20, 8 lines)": lambda: figures.gradient_flow_png(layers, list(range(8)), flow_rows),
               "heat map (T=100, 12 rows)": lambda: figures.heatmap_png(list(range(12)), heat_rows)}
    measured = {}
    for label, draw in timings.items():
        draw()  # matplotlib's first figure pays for its imports and fonts
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            draw()
            seconds.append(time.perf_counter() - start)
        measured[label] = statistics.median(seconds)
    return measured


def report_pictures(measured):
    print("\nan epoch's pictures alone (drawn in the painter's child process, beside training):")
    for label, seconds in measured.items():
        print(f"  {label:<36}{1000 * seconds:>8.1f} ms")
    sys.stdout.flush()


def batch_settings(args):
    """(batch size, steps per epoch): the default, then the large batch over as many examples."""
    settings = [(args.batch_size, args.steps)]
    if args.large_batch:
        settings.append((args.large_batch, max(1, args.steps * args.batch_size // args.large_batch)))
    return settings


def main(argv=None):
    args = parse_args(argv)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
          f"vgzoo default hist_every={DEFAULT_HIST_EVERY}")
    with tempfile.TemporaryDirectory(prefix="vgzoo-bench-") as folder:
        for batch_size, steps in batch_settings(args):
            settings = argparse.Namespace(**dict(vars(args), batch_size=batch_size, steps=steps))
            for name, (label, _) in TASKS.items():
                if args.only in (None, name):
                    times, step_times = measure(name, settings, Path(folder) / f"{name}-{batch_size}")
                    report(f"{label}, batch {batch_size}", times, steps, args.epochs, TARGETS[name])
                    if step_times:
                        report_steps(step_times)
    report_pictures(picture_seconds())


if __name__ == "__main__":
    main()
