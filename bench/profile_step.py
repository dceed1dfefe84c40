"""Where a recorded step's and an epoch end's time goes: ablations of the observed step.

Each variant is the observed step (`vgzoo.watch(model, logdir, hist_every=1)`,
holding updates as the model's row in bench/overhead.py does, `HOLDS`)
traced with one part replaced by nothing, built in the same process; the
variants take turns 5 `train_on_batch` steps at a time, so a busy machine
slows all alike, and the median per-step time of each is printed with its
difference to the full recorded step (what the removed part cost) and as a
share of the plain Keras step.

  plain          model.train_on_batch, no observer
  quiet          the observed step on a step it does not record
  full           the observed step recording everything (hist_every=1)
  -grad-hist     full without the per-variable gradient histograms
  -weight-hist   full without the per-variable weight histograms
  -update-ratio  full without the update ratios (the weight copy kept for the weight histograms)
  -weights-copy  full without the copy of the weights, the update ratios and the weight histograms
  -activations   full without activation histograms and dead units
  -encode        full with every histogram's statistics computed but not encoded nor written
                 (`encode_proto` and the writer's queue)
  -explosion-check  full applying its update unchecked (the check every step pays, quiet or not)
  quiet-explosion-check  the quiet step applying its update unchecked
  quiet-step-scalars     the quiet step without its per-step scalars (step_loss,
                 step_learning_rate, running/*)
  quiet-bare     the quiet step without both

These last three are measured against the quiet step, the others against
full; a last line gives the quiet step's own cost over plain.

With --fit-rounds N, the quiet variants are also timed in fits, as
bench/overhead.py times its rows: each round builds plain and each quiet
variant afresh (a build's speed is luck that lasts as long as it lives),
warms each under its patch, then runs one 3-epoch fit of each in a rotating
order, vgzoo's callbacks included; printed is the median over rounds of
each round's ratio to plain fit. A quiet step's small ops have cost a fit
more than they cost `train_on_batch` turns; what makes the difference was
not measured (docs/overhead.md).

Then one epoch's end of a watched fit at hist_every=1 (--epoch-steps
recorded steps): each callback's `on_epoch_end`, the writer's flush inside
it, the per-step reads of the pictures' rows, and the pictures' drawing
itself in this process (in a run, the painter's child draws it).

    python bench/profile_step.py                  # both models, ~4 minutes on 2 cores
    python bench/profile_step.py --only lstm --turns 10
    python bench/profile_step.py --only user-cnn --skip-epoch --variants full --variants=-explosion-check
    python bench/profile_step.py --only user-cnn --skip-epoch --turns 150 --variants quiet-explosion-check quiet-step-scalars
    python bench/profile_step.py --only user-cnn --skip-epoch --skip-steps --fit-rounds 16
"""
import argparse
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import (  # noqa: E402
    FIT_EPOCHS, FIT_STEPS, HOLDS, Trainer, lstm_task, resnet20_task, rotated, steady_batches, timed_fits,
    user_cnn_task,
)

from vgzoo.observe import activations, epoch, explosion, figures, histogram, summaries, updates, watch  # noqa: E402

TASKS = {"resnet20": resnet20_task, "lstm": lstm_task, "user-cnn": user_cnn_task}


@contextlib.contextmanager
def patched(owner, name, replacement):
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _without_kind(kind):
    by_variable = summaries.by_variable
    return patched(summaries, "by_variable",
                   lambda k, *rest: [] if k == kind else by_variable(k, *rest))


def _no_copy():
    stack = contextlib.ExitStack()
    stack.enter_context(patched(updates, "snapshot", lambda variables, record_now: list(variables)))
    stack.enter_context(patched(updates, "record_update_ratios", lambda *a, **k: None))
    stack.enter_context(patched(summaries, "record_weights", lambda *a, **k: tf.constant(False)))
    return stack


def _no_encode():
    def statistics_only(tags, statistics):
        parts = [tf.reduce_sum(statistics.table), *map(tf.reduce_sum, statistics.buckets())]
        return tf.strings.as_string(tf.add_n(parts))

    # What the statistics feed must outlive the graph's pruning: an op nothing
    # stateful reads is dropped, and the statistics with it.
    sink = tf.Variable(0, dtype=tf.int64, trainable=False)

    def unwritten(serialized, step=None):
        return sink.assign_add(tf.reduce_sum(tf.cast(tf.strings.length(serialized), tf.int64)))

    stack = contextlib.ExitStack()
    stack.enter_context(patched(histogram, "encode", statistics_only))
    stack.enter_context(patched(tf.summary.experimental, "write_raw_pb", unwritten))
    return stack


def _no_explosion_check():
    stack = contextlib.ExitStack()
    stack.enter_context(patched(explosion, "apply_if_finite", lambda apply, *rest: apply()))
    stack.enter_context(patched(explosion, "note_beside_update", lambda *rest: tf.constant(True)))
    return stack


def _no_step_scalars():
    # On a quiet step the only scalars written are step_loss, step_learning_rate and running/*.
    return patched(summaries, "write_scalars", lambda *a, **k: None)


def _bare_quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(_no_explosion_check())
    stack.enter_context(_no_step_scalars())
    return stack


VARIANTS = {
    "full": contextlib.nullcontext,
    "-grad-hist": lambda: _without_kind("gradients"),
    "-weight-hist": lambda: _without_kind("weights"),
    "-update-ratio": lambda: patched(updates, "record_update_ratios", lambda *a, **k: None),
    "-weights-copy": _no_copy,
    "-activations": lambda: patched(activations.WatchedLayers, "record", lambda *a, **k: None),
    "-encode": _no_encode,
    "-explosion-check": _no_explosion_check,
    # The quiet step's parts: these are quiet steps, compared with "quiet" rather than "full".
    "quiet-explosion-check": _no_explosion_check,
    "quiet-step-scalars": _no_step_scalars,
    "quiet-bare": _bare_quiet,
}
QUIET_PARTS = tuple(config for config in VARIANTS if config.startswith("quiet-"))
# A step is never recorded after the first (step 0, in the warm-up fit).
NEVER = 10**9


def reference(config):
    """The variant a variant's saving is measured against: the quiet step for its parts."""
    return "quiet" if config.startswith("quiet-") else "full"


def _paired_difference(minuend, subtrahend):
    """The median of the turn-by-turn differences: a slow spell that hits a turn hits both."""
    return statistics.median(a - b for a, b in zip(minuend, subtrahend))


def build(task, config, logdir, batch_size, holds):
    make, x, y, loss = task(batch_size * 2, 0)
    keras.utils.set_random_seed(0)
    model = make()
    if config != "plain":
        model = watch.watch(model, logdir / config, NEVER if config.startswith("quiet") else 1, keep_finite=holds)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss,
                  jit_compile=False if config != "plain" else "auto")
    return model, x[:batch_size], y[:batch_size]


def trace(config, model, x, y):
    context = VARIANTS.get(config, contextlib.nullcontext)
    with context():  # the step is traced (and the patch read) on its first call
        for _ in range(2):
            model.train_on_batch(x, y)


def under_patch(config):
    """The variant's patch (nothing for plain and quiet): what a warm-up traces inside it, its fit runs."""
    return VARIANTS.get(config, contextlib.nullcontext)()


def chosen_variants(args):
    return VARIANTS if args.variants is None else args.variants


def step_profile(task, args, logdir, holds):
    chosen = chosen_variants(args)
    # Each row's saving is measured against full or quiet, so both always run.
    configs = ["plain", "quiet", "full", *(config for config in chosen if config != "full")]
    models = {config: build(task, config, logdir, args.batch_size, holds) for config in configs}
    # Every build before any trace: keras.utils.set_random_seed clears TensorFlow's caches of
    # instantiated functions, so a variant traced before the next build's seeding would build
    # its functions again inside its first timed turn.
    for config, (model, x, y) in models.items():
        trace(config, model, x, y)
    times = {config: [] for config in configs}
    cpu = {config: [] for config in configs}
    for turn in range(args.turns):
        for config in rotated(configs, turn):
            model, x, y = models[config]
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(5):
                model.train_on_batch(x, y)
            times[config].append((time.perf_counter() - start) / 5)
            cpu[config].append((time.process_time() - start_cpu) / 5)
    # Each saving is the reference (full, or quiet for its parts) minus the variant, paired within a turn.
    plain = statistics.median(times["plain"])
    print(f"  {'variant':<22}{'ms/step':>9}{'IQR':>7}{'CPU ms':>8}{'full|quiet - variant':>25}{'% of plain':>12}")
    for config in configs:
        values = times[config]
        quartiles = statistics.quantiles(values, n=4)
        saved = _paired_difference(times[reference(config)], values)
        saved_cpu = _paired_difference(cpu[reference(config)], cpu[config])
        print(f"  {config:<22}{1000 * statistics.median(values):>9.2f}{1000 * (quartiles[2] - quartiles[0]):>7.2f}"
              f"{1000 * statistics.median(cpu[config]):>8.2f}{1000 * saved:>10.2f} ms (CPU {1000 * saved_cpu:>6.2f})"
              f"{100 * saved / plain:>11.1f}%")
    quiet_cost = _paired_difference(times["quiet"], times["plain"])
    print(f"  quiet - plain (paired): {1000 * quiet_cost:.2f} ms, {100 * quiet_cost / plain:.1f}% of plain")
    sys.stdout.flush()
    return models


def fit_profile(task, args, logdir, holds):
    """The quiet variants in 3-epoch fits that record nothing: ratios to plain fit, paired by round."""
    chosen = chosen_variants(args)
    configs = ["plain", "quiet", *(config for config in QUIET_PARTS if config in chosen)]
    make, x, y, loss = task(args.fit_steps * args.batch_size, 0)
    batches = steady_batches(x, y, args.batch_size)
    seconds = {config: [] for config in configs}
    for round_number in range(args.fit_rounds):
        # Every build before any warm-up (set_random_seed clears TensorFlow's function caches).
        trainers = {
            config: Trainer("plain" if config == "plain" else "vgzoo", make, loss,
                            logdir / f"{config}-{round_number}", 0, holds, hist_every=NEVER)
            for config in configs
        }
        for config, fit_seconds in timed_fits(trainers, batches, FIT_EPOCHS, round_number, under_patch).items():
            seconds[config].append(fit_seconds)
    steps = FIT_EPOCHS * args.fit_steps
    print(f"  {'variant':<22}{'ms/step':>9}{'ratio to plain':>16}{'saved over quiet':>18}")
    for config in configs:
        ratio = statistics.median(plain / mine for plain, mine in zip(seconds["plain"], seconds[config]))
        saved = _paired_difference(seconds["quiet"], seconds[config]) / steps
        print(f"  {config:<22}{1000 * statistics.median(seconds[config]) / steps:>9.3f}{ratio:>16.3f}"
              f"{1000 * saved:>15.3f} ms")
    sys.stdout.flush()


class Timed:
    """Wraps a method of every instance of a class, adding its seconds to a tally."""

    def __init__(self):
        self.seconds, self.calls = {}, {}
        self.stack = contextlib.ExitStack()

    def wrap(self, owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
                self.calls[label] = self.calls.get(label, 0) + 1

        self.stack.enter_context(patched(owner, name, timed))


def epoch_profile(task, args, logdir, profile_out=None):
    make, x, y, loss = task(args.batch_size * args.epoch_steps, 0)
    keras.utils.set_random_seed(0)
    model = watch.watch(make(), logdir / "epoch", 1)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, jit_compile=False)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size).cache()
    model.fit(batches.take(2), epochs=1, verbose=0)  # traces the steps
    timed = Timed()
    timed.wrap(epoch.EpochLogger, "on_epoch_end", "EpochLogger.on_epoch_end (scalars + both flushes)")
    timed.wrap(epoch.RecordedFigure, "on_epoch_end", "RecordedFigure.on_epoch_end (submit to painter)")
    timed.wrap(epoch.RecordedFigure, "on_train_batch_end", "RecordedFigure.on_train_batch_end (row reads), per epoch")
    writer = model.recording.value.train_writer
    flush = writer.flush
    writer.flush = lambda: _timed_call(timed, "writer.flush (train)", flush)
    profiler = cProfile.Profile()
    with timed.stack:
        start = time.perf_counter()
        profiler.enable()
        model.fit(batches, epochs=args.epochs, verbose=0)
        profiler.disable()
        fit_seconds = time.perf_counter() - start
    print(f"  {args.epochs} epochs of {args.epoch_steps} recorded steps: {fit_seconds:.2f} s of fit")
    for label, seconds in timed.seconds.items():
        per_epoch = seconds / args.epochs
        print(f"  {label:<62}{1000 * per_epoch:>8.2f} ms/epoch  ({timed.calls[label]} calls)")
    rows = [model.latest_layer_mean_abs.value.numpy()] * watch.FLOW_LINES
    draw = lambda: figures.gradient_flow_png(list(model.layer_order), list(range(len(rows))), rows)  # noqa: E731
    drawings = {"gradient_flow_png (flow picture)": draw}
    if model.watch_inputs:
        heat = [model.latest_timestep_norms.value.numpy()] * args.epoch_steps
        drawings["heatmap_png (heat map)"] = lambda: figures.heatmap_png(list(range(len(heat))), heat)
    for label, drawing in drawings.items():
        drawing()
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            drawing()
            seconds.append(time.perf_counter() - start)
        print(f"  {label + ', drawn in-process (median of 5)':<62}{1000 * statistics.median(seconds):>8.2f} ms/epoch")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
    stats.print_stats("on_epoch_end|flush|submit|_write|write_png", 12)
    print("  cProfile of the fit, epoch-end functions (cumulative):")
    print("\n".join("    " + line for line in text.getvalue().splitlines()[-16:] if line.strip()))
    sys.stdout.flush()


def _timed_call(timed, label, call):
    start = time.perf_counter()
    try:
        return call()
    finally:
        timed.seconds[label] = timed.seconds.get(label, 0.0) + time.perf_counter() - start
        timed.calls[label] = timed.calls.get(label, 0) + 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(TASKS))
    parser.add_argument("--turns", type=int, default=12, help="turns of 5 steps per variant (default 12)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epoch-steps", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--skip-steps", action="store_true")
    parser.add_argument("--skip-epoch", action="store_true")
    parser.add_argument("--fit-rounds", type=int, default=0,
                        help="also time the quiet variants in this many rounds of fits (default 0: none)")
    parser.add_argument("--fit-steps", type=int, default=FIT_STEPS,
                        help=f"steps an epoch of those fits (default {FIT_STEPS})")
    # argparse reads a bare "-grad-hist" as an option, so such names come one per flag as
    # --variants=-NAME; `extend` gathers every --variants given.
    parser.add_argument("--variants", nargs="+", action="extend", choices=list(VARIANTS), default=None,
                        help="only these beside plain, quiet and full (which always run: the savings are "
                             "measured against them); a name that starts with '-' as --variants=-NAME")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, batch {args.batch_size}")
    with tempfile.TemporaryDirectory(prefix="vgzoo-profile-") as folder:
        for name, task in TASKS.items():
            if args.only not in (None, name):
                continue
            if not args.skip_steps:
                print(f"\n{name}: recorded step, median of {args.turns} turns of 5 steps")
                step_profile(task, args, Path(folder) / name, HOLDS[name])
            if args.fit_rounds:
                print(f"\n{name}: quiet steps in fits, {args.fit_rounds} rounds of {FIT_EPOCHS} epochs "
                      f"of {args.fit_steps} steps")
                fit_profile(task, args, Path(folder) / name / "fits", HOLDS[name])
            if not args.skip_epoch:
                print(f"\n{name}: epoch end")
                epoch_profile(task, args, Path(folder) / name)


if __name__ == "__main__":
    main()
