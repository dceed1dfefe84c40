"""The demo's sequence part: gating and attention against the tanh RNN, measured, offline.

Two measurements, each printed as a table:

1. The published adding T=200 checkpoints of the whole group, evaluated on
   their held-out test set, with `grad_reach` at initial and at trained
   weights (`vgzoo.demos.checkpoints`): what 6,000 steps of training made.
2. A short live run: the tanh RNN, the LSTM (with the chrono gates its
   published checkpoint has), the GRU and the Transformer train at the same
   budget, seed, optimizer and width on the same generated stream at T=100,
   each into a run of its own under one parent folder so TensorBoard
   overlays them (the IRNN, slower to leave the plateau, is measured in 1).

The live table puts each model's validation loss beside the memoryless
baseline and its `grad_reach` (log10 of the gradient norm at the first input
timestep over the last) at the first and last recorded step; the sentence
after each table is computed from its numbers.
"""
import dataclasses

from vgzoo.architectures import registry
from vgzoo.training import loop
from vgzoo.data.sequences import baseline
from vgzoo.analysis.events import read_scalars
from vgzoo.demos import checkpoints

TASK = "adding"
LIVE_CELLS = ("rnn", "lstm", "gru", "transformer")
# Knobs of the live run: the LSTM as published for the adding problem. With Keras'
# default gates it stays on the plateau at this budget, as the tanh RNN does.
LIVE_KNOBS = {"lstm": {"chrono": True}}
SOLVED = 0.2  # a loss under a fifth of the baseline's: the model found the two marked values


@dataclasses.dataclass(frozen=True)
class SequenceDemoBudget:
    """What every member of the live run gets; equal by construction."""

    seq_len: int = 100
    width: int = 32
    batch_size: int = 32
    steps_per_epoch: int = 100
    epochs: int = 10
    learning_rate: float = 3e-3
    global_clipnorm: float = 1.0
    hist_every: int = 25
    seed: int = 0

    def describe(self):
        return (
            f"adding problem T={self.seq_len}, width {self.width}, batch {self.batch_size}, "
            f"{self.steps_per_epoch * self.epochs} steps of Adam {self.learning_rate:g} "
            f"(global clipnorm {self.global_clipnorm:g}), seed {self.seed}"
        )


def label(cell, knobs):
    return cell + (" (chrono)" if knobs.get("chrono") else "")


def train_member(cell, budget, logdir):
    """One member of the live run; returns its row of the table."""
    knobs = LIVE_KNOBS.get(cell, {})
    result = loop.train(
        cell,
        dataset=TASK,
        seq_len=budget.seq_len,
        width=budget.width,
        batch_size=budget.batch_size,
        steps_per_epoch=budget.steps_per_epoch,
        epochs=budget.epochs,
        optimizer="adam",
        learning_rate=budget.learning_rate,
        weight_decay=0,
        schedule="constant",
        global_clipnorm=budget.global_clipnorm,
        hist_every=budget.hist_every,
        seed=budget.seed,
        logdir=logdir,
        resume=False,
        verbose=0,
        **knobs,
    )
    reach = [value for _, value in read_scalars(result.run_dir / "train", "grad_reach")]
    return {
        "model": label(cell, knobs),
        "parameters": result.model.count_params(),
        "val_loss": result.history["val_loss"][-1],
        "grad_reach_start": reach[0],
        "grad_reach_end": reach[-1],
        "run_dir": result.run_dir,
    }


def format_table(rows, task_baseline):
    lines = [
        f"{'model':<15}{'parameters':>11}{'val MSE':>10}{'baseline':>10}"
        f"{'grad_reach start':>18}{'end':>8}",
        "-" * 72,
    ]
    for row in rows:
        lines.append(
            f"{row['model']:<15}{row['parameters']:>11,}{row['val_loss']:>10.4f}{task_baseline:>10.4f}"
            f"{row['grad_reach_start']:>18.2f}{row['grad_reach_end']:>8.2f}"
        )
    return "\n".join(lines)


def story(rows, loss_key, reach_key, task_baseline):
    """Which models solved the task and how far back their gradient reached, from the rows."""
    solved = [row for row in rows if row[loss_key] < SOLVED * task_baseline]
    stuck = [row for row in rows if row not in solved]
    parts = []
    if solved:
        weakest = min(row[reach_key] for row in solved)
        reach = (f"within 10^{-weakest:.1f} of the last's" if weakest < 0 else "at least the last's")
        parts.append(f"Solved (MSE under a fifth of the baseline {task_baseline:.3f}): "
                     f"{', '.join(row['model'] for row in solved)}; their gradient at the first "
                     f"timestep is {reach}.")
    for row in stuck:
        parts.append(f"Not solved: {row['model']} (MSE {row[loss_key]:.3g}); its gradient at the "
                     f"first timestep is 10^{row[reach_key]:.1f} of the last's.")
    return " ".join(parts)


def sequence_group():
    return [name for name in registry.list_models() if registry.get_spec(name).family == "sequence"]


def run_live_demo(logdir, budget=SequenceDemoBudget(), cells=LIVE_CELLS, print_fn=print):
    """The short live run of `cells`; returns their rows."""
    task_baseline = baseline(TASK, budget.seq_len)
    print_fn(f"A short live run, for TensorBoard: the {budget.describe()}.")
    rows = []
    for cell in cells:
        rows.append(train_member(cell, budget, logdir))
        print_fn(f"  trained {rows[-1]['model']}: validation MSE {rows[-1]['val_loss']:.4f}")
    print_fn("")
    print_fn(format_table(rows, task_baseline))
    print_fn(story(rows, "val_loss", "grad_reach_end", task_baseline))
    print_fn(f"Runs: {rows[0]['run_dir'].parent.parent}")
    return rows


def run_sequence_demo(logdir, budget=SequenceDemoBudget(), cells=LIVE_CELLS, print_fn=print, published=True):
    """The published checkpoints measured (unless `published=False`), then the live run of `cells`.

    Returns `{"published": rows, "live": rows}`.
    """
    measured = []
    if published:
        measured = checkpoints.run_checkpoint_demo(sequence_group(), seed=budget.seed, print_fn=print_fn)
        print_fn(story(measured, "test_loss", "reach_trained", baseline(TASK, checkpoints.SEQ_LEN)))
        print_fn("grad_reach near 0: the loss's gradient reaches the first timestep; very negative: "
                 "it vanished on the way back.")
        print_fn("")
    return {"published": measured, "live": run_live_demo(logdir, budget, cells, print_fn)}
