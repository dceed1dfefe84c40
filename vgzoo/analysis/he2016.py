"""He et al. 2016, Figure 6, on the data at hand: plain nets degrade with depth, ResNets do not.

"Deep Residual Learning for Image Recognition", section 4.2: on CIFAR-10 the
56-layer plain net has higher training error than the 20-layer one, while
ResNet-56 beats ResNet-20. This module trains (or reuses) plain20, plain56,
resnet20 and resnet56 at one budget and seed, then draws the figure: plain
nets on the left, ResNets on the right, training error dashed and test error
solid against iterations, and below each model's `vanishing_ratio`.

    python -m vgzoo.analysis.he2016 --dataset mnist --epochs 4 --figure docs/figures/he2016-mnist.png

Training error is the running error of each step's batch (as He et al.
plot it), recovered from Keras' running mean within each epoch; test error
comes from the run's `test/` events (`--test-every`), which never select
a model.
"""
import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from vgzoo.analysis.events import open_events, scalar_series
from vgzoo.errors import VgzooError
from vgzoo.training import runs
from vgzoo.training.config import DEFAULT_LOGDIR
from vgzoo.training.resume import read_state

MODELS = ("plain20", "plain56", "resnet20", "resnet56")
# The paper's recipe (section 4.2), with its ResNet-110 warm-up for every model:
# 0.1 is too large for the deepest nets to start converging.
RECIPE = ("--batch-size 128 --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 1e-4 "
          "--schedule step --warmup-steps 400 --seed 0")
# He et al. 2016, Table 6 (CIFAR-10 test error, %); plain nets appear only in Figure 6.
PAPER_TEST_ERROR = {"resnet20": 8.75, "resnet56": 6.97}
SMOOTHING_STEPS = 50
COLOURS = {20: "#e69f00", 56: "#cc3311"}


def run_dir_of(logdir, dataset, model, run_name):
    return runs.run_parent(logdir, dataset, model) / run_name


def train_command(model, dataset, epochs, test_every, logdir, run_name):
    return [sys.executable, "-m", "vgzoo", "train", model, "--dataset", dataset,
            "--epochs", str(epochs), *shlex.split(RECIPE), "--test-every", str(test_every),
            "--logdir", str(logdir), "--run-name", run_name, "--verbose", "2"]


def ensure_trained(dataset, epochs, test_every, logdir, run_name, print_fn=print):
    """Each model's run folder: reused when finished, else trained (a rerun resumes)."""
    folders = {}
    for model in MODELS:
        run_dir = run_dir_of(logdir, dataset, model, run_name)
        if not (read_state(run_dir) or {}).get("finished"):
            command = train_command(model, dataset, epochs, test_every, logdir, run_name)
            print_fn("$ " + shlex.join(command[2:]).replace("-m vgzoo", "vgzoo", 1))
            if subprocess.run(command, check=False).returncode != 0:
                raise VgzooError(f"training {model} failed; run the same command again to resume it.")
        folders[model] = run_dir
    return folders


def per_step_accuracy(running_means, steps_per_epoch, batch_size=None, train_size=None):
    """Each step's batch accuracy from Keras' running mean within its epoch.

    Keras weights the mean by examples, so an epoch's smaller last batch
    (`train_size` not a multiple of `batch_size`) counts for less; without
    the sizes every batch counts alike.
    """
    steps = np.array([step for step, _ in running_means])
    means = np.array([value for _, value in running_means])
    position = steps % steps_per_epoch  # batches before this one in its epoch
    sizes = np.ones(len(steps))
    if batch_size and train_size:
        sizes = np.full(len(steps), float(batch_size))
        sizes[position == steps_per_epoch - 1] = train_size - batch_size * (steps_per_epoch - 1)
    seen = position * (batch_size or 1) + sizes  # examples seen in the epoch after this batch
    seen_before = np.where(position > 0, seen - sizes, 0.0)
    previous = np.where(position > 0, np.roll(means, 1), 0.0)
    return steps, (seen * means - seen_before * previous) / sizes


def smooth(values, window=SMOOTHING_STEPS):
    """A centred moving mean; near the ends, over the values there are (no padding repeats one)."""
    kernel = np.ones(window)
    totals = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones(len(values)), kernel, mode="same")
    return totals / counts


def curves(run_dir):
    """The training error, test error and vanishing ratio of one run, as arrays."""
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    train, test = open_events(run_dir / "train"), open_events(run_dir / "test")
    # `batch_accuracy`: the running mean's tag in runs recorded before `running/accuracy`.
    running = scalar_series(train, "running/accuracy") or scalar_series(train, "batch_accuracy")
    steps, accuracy = per_step_accuracy(running, config["steps_per_epoch"], config["train"]["batch_size"],
                                        config["dataset"].get("train_size"))
    test_points = scalar_series(test, "test_error")
    if not test_points:
        raise VgzooError(f"{run_dir} has no test/ events: train it with --test-every.")
    ratio = scalar_series(train, "vanishing_ratio")
    final_train = scalar_series(train, "epoch_accuracy")[-1][1]
    return {
        "train": (steps, smooth(1 - accuracy)),
        "test": tuple(np.array(column) for column in zip(*test_points)),
        "vanishing_ratio": tuple(np.array(column) for column in zip(*ratio)),
        "final_train_error": 1 - final_train,
        "final_test_error": test_points[-1][1],
        "steps": int(steps[-1]) + 1,
    }


def draw(measured, dataset, path):
    """The figure as a PNG file: error curves on top, vanishing ratio below."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 6.4), dpi=100)
    axes = figure.subplots(2, 2, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for column, kind in enumerate(("plain", "resnet")):
        top, bottom = axes[0][column], axes[1][column]
        for depth in (20, 56):
            name, colour = f"{kind}{depth}", COLOURS[depth]
            if name not in measured:
                continue
            series = measured[name]
            label = f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
            top.plot(*series["train"], "--", color=colour, linewidth=1, label=f"{label} train")
            top.plot(*series["test"], "-o", color=colour, linewidth=1.6, markersize=3, label=f"{label} test")
            bottom.plot(*series["vanishing_ratio"], ".-", color=colour, linewidth=1, markersize=2, label=label)
        top.set_yscale("log")
        top.set_ylim(1e-3, 1)
        top.set_title(f"{'plain nets' if kind == 'plain' else 'ResNets'} on {dataset}")
        top.set_ylabel("error (log scale)")
        top.legend(fontsize=8)
        top.grid(alpha=0.3, which="both")
        bottom.set_xlabel("iteration")
        bottom.set_ylabel("vanishing_ratio (log10)")
        bottom.axhline(0, color="grey", linewidth=0.6)
        bottom.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def table(measured):
    """Markdown: final training and test error per model, He et al.'s CIFAR-10 figures beside."""
    lines = ["| model | iterations | training error | test error | He et al. CIFAR-10 test error |",
             "|---|---:|---:|---:|---:|"]
    for name in MODELS:
        if name in measured:
            row = measured[name]
            paper = PAPER_TEST_ERROR.get(name)
            lines.append(f"| {name} | {row['steps']:,} | {100 * row['final_train_error']:.2f}% | "
                         f"{100 * row['final_test_error']:.2f}% | "
                         f"{f'{paper:.2f}%' if paper else 'above plain-20 in training error' if name == 'plain56' else '-'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vgzoo.analysis.he2016", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", help="mnist (here) or cifar10")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--test-every", type=int, default=211, help="steps between test measurements")
    parser.add_argument("--logdir", default=DEFAULT_LOGDIR)
    parser.add_argument("--run-name", default=None, help="default he2016-e<epochs>")
    parser.add_argument("--figure", default=None, help="default reports/he2016-<dataset>.png")
    args = parser.parse_args(argv)
    run_name = args.run_name or f"he2016-e{args.epochs}"
    try:
        folders = ensure_trained(args.dataset, args.epochs, args.test_every, args.logdir, run_name)
        measured = {name: curves(folder) for name, folder in folders.items()}
    except VgzooError as error:
        print(f"vgzoo: error: {error}", file=sys.stderr)
        return 2
    figure = draw(measured, args.dataset, args.figure or f"reports/he2016-{args.dataset}.png")
    print(table(measured))
    print(f"\nfigure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
