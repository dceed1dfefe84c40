"""The demo's measured part: the published adding T=200 checkpoints, trained against initial.

Every member of the sequence group was trained 6,000 steps on the adding
problem at T = 200 (`models/manifest.json` holds each command). Loaded here,
offline, each is measured on the manifest's held-out test set, and on its
first batch its `grad_reach`: log10 of the loss's gradient norm at the first
input timestep over the last one's, from dL/dx as the observed train step
takes it (`vgzoo.observe.timesteps`), at the trained weights and at freshly
initialised ones of the same architecture. A model that solves the task must
carry the gradient from the target back to the two marked values, up to 200
steps earlier.
"""
import keras
import tensorflow as tf

from vgzoo.architectures import factory
from vgzoo.data.sequences import baseline
from vgzoo.data.tasks import get_task
from vgzoo.errors import VgzooError
from vgzoo.observe import timesteps
from vgzoo.pretrained import manifest, publish

TASK, SEQ_LEN = "adding", 200


def published_entries(cells):
    """The published adding T=200 entry of each of `cells` that has one, in their order."""
    entries = []
    for cell in cells:
        try:
            entries.append(manifest.find_entry(cell, TASK, SEQ_LEN))
        except VgzooError:  # unpublished or absent: the demo shows the others
            continue
    return entries


def measured_loss(model, entry):
    """The loss on the manifest's test set, as `vgzoo verify` measures it, but eagerly.

    A compiled `evaluate` per checkpoint traces one more function of Keras'
    each time, and TensorFlow warns of "excessive retracing" by the fifth.
    """
    loss = keras.losses.get(get_task(TASK).loss)
    total, count = 0.0, 0
    for inputs, targets in publish.test_data(entry):
        total += float(tf.reduce_sum(loss(targets, model(inputs, training=False))))
        count += int(targets.shape[0])
    return total / count


def input_reach(model, inputs, targets):
    """`grad_reach` of one batch: dL/dx per timestep, as the observed train step records it."""
    loss = keras.losses.get(get_task(TASK).loss)
    x = tf.constant(inputs)
    # Eagerly: one batch, and no graph of its own to trace for each model.
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_mean(loss(targets, model(x, training=True)))
    return float(timesteps.grad_reach(timesteps.norms_per_timestep(tape.gradient(value, x))))


def measure(entry, seed):
    """One checkpoint's row: its test MSE and its grad_reach, initial and trained."""
    inputs, targets = next(iter(publish.test_data(entry)))
    keras.utils.set_random_seed(seed)
    initial = factory.build(entry)
    trained = factory.load(entry["model"], TASK, seq_len=SEQ_LEN)
    return {
        "model": entry["model"] + (" (chrono)" if entry["knobs"].get("chrono") else ""),
        "parameters": trained.count_params(),
        "test_loss": measured_loss(trained, entry),
        "reach_initial": input_reach(initial, inputs, targets),
        "reach_trained": input_reach(trained, inputs, targets),
    }


def format_table(rows):
    task_baseline = baseline(TASK, SEQ_LEN)
    lines = [f"{'model':<19}{'parameters':>11}{'test MSE':>10}{'baseline':>10}"
             f"{'grad_reach initial':>20}{'trained':>9}", "-" * 79]
    for row in rows:
        lines.append(f"{row['model']:<19}{row['parameters']:>11,}{row['test_loss']:>10.3g}"
                     f"{task_baseline:>10.4f}{row['reach_initial']:>20.2f}{row['reach_trained']:>9.2f}")
    return "\n".join(lines)


def run_checkpoint_demo(cells, seed=0, print_fn=print):
    """Measures the published checkpoints of `cells`; returns their rows."""
    entries = published_entries(cells)
    if not entries:
        print_fn(f"No published {TASK} T={SEQ_LEN} checkpoint of {', '.join(cells)} to measure.")
        return []
    print_fn(f"The published {TASK} T={SEQ_LEN} checkpoints (6,000 steps each), measured now on "
             f"the held-out test set; grad_reach on its first batch, at initial (seed {seed}) "
             "and trained weights.")
    rows = [measure(entry, seed) for entry in entries]
    print_fn("")
    print_fn(format_table(rows))
    return rows
