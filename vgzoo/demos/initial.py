"""The offline demo: gradient flow at initialisation for a few matched pairs.

Needs no data files: one batch of random inputs of CIFAR shape is enough to
show whether the gradient reaching the first layer is comparable to the one
at the last layer. Each model's per-layer gradient norms and histograms are
written to TensorBoard beside the printed table.
"""
import math

import keras
import numpy as np
import tensorflow as tf

from vgzoo.architectures import factory
from vgzoo.observe import summaries
from vgzoo.training import runs

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10

# (label, registry name, knobs); each consecutive two are a matched pair.
DEMO_MODELS = (
    ("plain56", "plain56", {}),
    ("resnet56", "resnet56", {}),
    ("mlp20-sigmoid", "mlp20", {"activation": "sigmoid"}),
    ("resmlp20-sigmoid", "resmlp20", {"activation": "sigmoid"}),
    ("mlp20-sigmoid-bn", "mlp20", {"activation": "sigmoid", "batch_norm": True}),
    ("resmlp20-sigmoid-bn", "resmlp20", {"activation": "sigmoid", "batch_norm": True}),
    ("plain56-sigmoid", "plain56", {"activation": "sigmoid"}),
    ("resnet56-sigmoid", "resnet56", {"activation": "sigmoid"}),
    ("plain56-sigmoid-pre", "plain56", {"activation": "sigmoid", "preactivation": True}),
    ("resnet56-sigmoid-pre", "resnet56", {"activation": "sigmoid", "preactivation": True}),
)


def gradients_at_init(model, images, labels):
    """Per-layer gradient norms of one training-mode backward pass, in depth order."""
    loss_function = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_function(labels, model(images, training=True))
    variables = model.trainable_variables
    return variables, tape.gradient(loss, variables)


def measure(label, name, knobs, images, labels, run_dir, seed):
    keras.utils.set_random_seed(seed)
    model = factory.create_model(name, INPUT_SHAPE, NUM_CLASSES, **knobs)
    variables, gradients = gradients_at_init(model, images, labels)
    writer = tf.summary.create_file_writer(str(run_dir / label))
    with writer.as_default(step=0):
        norms, _ = summaries.record_gradients(variables, gradients, 0, True)
    writer.close()
    order = summaries.layers_in_order(variables)
    first, last = float(norms[order[0]]), float(norms[order[-1]])
    return {
        "label": label,
        "first_layer": order[0],
        "first": first,
        "last_layer": order[-1],
        "last": last,
        "ratio": first / last if last else math.nan,
    }


def format_table(rows):
    lines = [
        f"{'model':<22}{'first layer |g|':>16}{'last layer |g|':>16}{'first/last':>12}",
        "-" * 66,
    ]
    for index, row in enumerate(rows):
        lines.append(
            f"{row['label']:<22}{row['first']:>16.3e}{row['last']:>16.3e}{row['ratio']:>12.3e}"
        )
        if index % 2 == 1:
            lines.append("")
    return "\n".join(lines)


def run_demo(
    logdir=runs.DEFAULT_LOGDIR, batch_size=128, seed=0, models=DEMO_MODELS, print_fn=print
):
    run_dir = runs.new_run_dir(logdir, "demo", "gradients-at-init")
    random = np.random.default_rng(seed)
    images = random.standard_normal((batch_size, *INPUT_SHAPE)).astype("float32")
    labels = random.integers(0, NUM_CLASSES, size=batch_size)
    print_fn(
        f"Gradient norms at initialisation, one batch of {batch_size} random "
        f"{INPUT_SHAPE} inputs, seed {seed}. A ratio far below 1 means the gradient "
        "vanishes before it reaches the first layer."
    )
    rows = []
    for label, name, knobs in models:
        rows.append(measure(label, name, knobs, images, labels, run_dir, seed))
        print_fn(f"  measured {label}")
    print_fn("")
    print_fn(format_table(rows))
    print_fn(f"Histograms and per-layer norms: {run_dir}")
    print_fn(f"Browse them with: make tensorboard   (or: tensorboard --logdir {logdir})")
    return rows
