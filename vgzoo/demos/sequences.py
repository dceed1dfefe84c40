"""The demo's training part: the sequence group on the adding problem, offline.

Every member of the group (tanh RNN, IRNN, LSTM, GRU, Transformer) trains at
the same budget, seed, optimizer and width on the same generated stream, each
into a run of its own under one parent folder so TensorBoard overlays them.
The table it prints puts each model's validation loss beside the
memoryless baseline and its `grad_reach` (log10 of the gradient norm at the
first input timestep over the last) at the first and last recorded step.
"""
import dataclasses

from vgzoo.architectures import registry
from vgzoo.training import loop
from vgzoo.data.sequences import baseline
from vgzoo.analysis.events import read_scalars

TASK = "adding"


@dataclasses.dataclass(frozen=True)
class SequenceDemoBudget:
    """What every member of the group gets; equal by construction."""

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


def train_member(cell, budget, logdir):
    """One member of the group; returns its row of the table."""
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
    )
    reach = [value for _, value in read_scalars(result.run_dir / "train", "grad_reach")]
    return {
        "model": cell,
        "parameters": result.model.count_params(),
        "val_loss": result.history["val_loss"][-1],
        "grad_reach_start": reach[0],
        "grad_reach_end": reach[-1],
        "run_dir": result.run_dir,
    }


def format_table(rows, task_baseline):
    lines = [
        f"{'model':<13}{'parameters':>11}{'val MSE':>10}{'baseline':>10}"
        f"{'grad_reach start':>18}{'end':>8}",
        "-" * 70,
    ]
    for row in rows:
        lines.append(
            f"{row['model']:<13}{row['parameters']:>11,}{row['val_loss']:>10.4f}{task_baseline:>10.4f}"
            f"{row['grad_reach_start']:>18.2f}{row['grad_reach_end']:>8.2f}"
        )
    return "\n".join(lines)


def sequence_group():
    return [name for name in registry.list_models() if registry.get_spec(name).family == "sequence"]


def run_sequence_demo(logdir, budget=SequenceDemoBudget(), cells=None, print_fn=print):
    cells = cells or sequence_group()
    task_baseline = baseline(TASK, budget.seq_len)
    print_fn(f"Training the sequence group on the {budget.describe()}.")
    rows = []
    for cell in cells:
        rows.append(train_member(cell, budget, logdir))
        print_fn(f"  trained {cell}: validation MSE {rows[-1]['val_loss']:.4f}")
    print_fn("")
    print_fn(format_table(rows, task_baseline))
    print_fn(
        "val MSE below the baseline (always predict 1) means the model found the two marked "
        "values; grad_reach near 0 means the loss's gradient reaches the first timestep, "
        "very negative means it vanished on the way back."
    )
    print_fn(f"Runs: {rows[0]['run_dir'].parent.parent}")
    return rows
