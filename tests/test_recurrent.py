"""The sequence group: every cell builds for every task; initialisers; equal budgets."""
import math

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import vgzoo
from vgzoo.architectures import registry
from vgzoo.architectures import recurrent
from vgzoo.architectures.catalog import SEQUENCE_DEFAULTS
from vgzoo.data import sequences
from vgzoo.observe import activations

SEQUENCE_MODELS = [name for name in registry.list_models() if registry.get_spec(name).family == "sequence"]
# (input_shape, num_classes, head) of each task, short enough to stay quick.
TASK_SHAPES = {
    "adding": ((50, 2), 1, "value"),
    "copy": ((40, 10), 10, "per_step"),
    "seqmnist": ((784, 1), 10, "classes"),
}


def test_the_group_is_registered_with_its_cells():
    assert SEQUENCE_MODELS == list(recurrent.CELLS)
    assert registry.KNOB_TYPES["head"][1] == recurrent.HEADS
    for cell in SEQUENCE_MODELS:
        assert registry.get_spec(cell).family == "sequence"
        assert registry.get_spec(cell).defaults["cell"] == cell


@pytest.mark.parametrize("task", TASK_SHAPES)
@pytest.mark.parametrize("cell", recurrent.CELLS)
def test_every_cell_builds_for_every_task(cell, task):
    input_shape, num_classes, head = TASK_SHAPES[task]
    model = vgzoo.create_model(cell, input_shape, num_classes, head=head, width=16)
    outputs = model.predict_on_batch(np.zeros((2, *input_shape), dtype="float32"))
    expected = {"value": (2, 1), "classes": (2, num_classes), "per_step": (2, input_shape[0], num_classes)}
    assert outputs.shape == expected[head]
    if head != "value":
        np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, rtol=1e-5)
    outputs_per_step = 1 if head == "value" else num_classes
    counted = recurrent.count_parameters(cell, input_shape[1], outputs_per_step, width=16)
    assert model.count_params() == counted


@pytest.mark.parametrize("cell", recurrent.CELLS)
def test_two_layers_and_their_names(cell):
    model = vgzoo.create_model(cell, (30, 2), 1, head="value", width=8, depth=2)
    names = [layer.name for layer in model.layers]
    assert names[0] == "sequence" and names[-1] == "predictions"
    if cell == "transformer":
        assert {"input_proj", "block1_attention", "block2_mlp_add", "final_norm"} <= set(names)
    else:
        assert {"recurrent1", "recurrent2"} <= set(names)
    assert names == [layer.name for layer in vgzoo.create_model(cell, (30, 2), 1, head="value", width=8, depth=2).layers]
    assert model.count_params() == recurrent.count_parameters(cell, 2, 1, width=8, depth=2)


RECURRENT_CELLS = [cell for cell in recurrent.CELLS if cell != "transformer"]


def test_the_recurrent_cells_share_their_variable_paths():
    """So their tags (`grad_norm/00_recurrent1/cell`, `gradients/recurrent1/cell/kernel`) line up."""
    paths = {cell: [variable.path for variable in vgzoo.create_model(
        cell, (30, 2), 1, head="value", width=8, depth=2).trainable_variables] for cell in RECURRENT_CELLS}
    expected = [f"recurrent{layer}/cell/{name}" for layer in (1, 2)
                for name in ("kernel", "recurrent_kernel", "bias")] + ["predictions/kernel", "predictions/bias"]
    assert all(found == expected for found in paths.values()), paths


def test_irnn_starts_from_the_identity():
    model = vgzoo.create_model("irnn", (20, 2), 1, head="value", width=64)
    cell = model.get_layer("recurrent1").cell
    np.testing.assert_array_equal(cell.recurrent_kernel.numpy(), np.eye(64))
    # ReLU as max(0, x) (see `recurrent.relu`): its value and gradient, and a ReLU to the observer.
    assert cell.activation is recurrent.relu and activations.is_relu_family(model.get_layer("recurrent1"))
    x = tf.constant([-2.0, -0.0, 0.0, 1e-30, 3.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, keras_relu = cell.activation(x), keras.activations.relu(x)
    np.testing.assert_array_equal(ours.numpy(), keras_relu.numpy())
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(keras_relu, x).numpy())
    assert abs(float(np.std(cell.kernel.numpy())) - recurrent.IRNN_INPUT_STDDEV) < 3e-4
    np.testing.assert_array_equal(cell.bias.numpy(), 0)


def test_lstm_forget_bias_is_one():
    model = vgzoo.create_model("lstm", (20, 2), 1, head="value", width=16)
    bias = model.get_layer("recurrent1").cell.bias.numpy().reshape(4, 16)
    np.testing.assert_array_equal(bias[1], 1)  # gates: input, forget, cell, output
    np.testing.assert_array_equal(bias[[0, 2, 3]], 0)


def test_chrono_biases_are_log_uniform_up_to_the_sequence_length():
    keras.utils.set_random_seed(5)
    model = vgzoo.create_model("lstm", (100, 2), 1, head="value", width=512, chrono=True)
    bias = model.get_layer("recurrent1").cell.bias.numpy().reshape(4, 512)
    forget = bias[1]
    assert forget.min() >= 0 and forget.max() <= math.log(99) + 1e-6
    # exp(forget) is uniform on [1, 99]: mean 50, std 28.3 / sqrt(512) = 1.25.
    assert abs(np.exp(forget).mean() - 50) < 5
    np.testing.assert_allclose(bias[0], -forget)
    np.testing.assert_array_equal(bias[2:], 0)
    keras.utils.set_random_seed(5)
    again = vgzoo.create_model("lstm", (100, 2), 1, head="value", width=512, chrono=True)
    np.testing.assert_array_equal(again.get_layer("recurrent1").cell.bias.numpy(), bias.reshape(-1))


@pytest.mark.parametrize("budget, input_shape, outputs", [(20_000, (784, 1), 10), (60_000, (50, 2), 1)])
@pytest.mark.parametrize("cell", recurrent.CELLS)
def test_match_params_lands_within_ten_percent(cell, budget, input_shape, outputs):
    head = "value" if outputs == 1 else "classes"
    width = recurrent.width_for_budget(budget, cell, input_shape[1], outputs)
    counted = recurrent.count_parameters(cell, input_shape[1], outputs, width=width)
    assert abs(counted - budget) / budget < 0.10
    if input_shape[0] < 100:  # one real build per cell is enough to tie it to Keras
        model = vgzoo.create_model(cell, input_shape, outputs, head=head, match_params=budget)
        assert model.count_params() == counted


def test_cells_differ_in_size_at_equal_width():
    counts = {
        cell: vgzoo.create_model(cell, (20, 2), 1, head="value", width=32).count_params()
        for cell in recurrent.CELLS
    }
    assert counts["rnn"] == counts["irnn"]  # same weights, other initialisation
    assert counts["rnn"] < counts["gru"] < counts["lstm"] < counts["transformer"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: vgzoo.create_model("rnn", (20, 2), 10, chrono=True), "unknown knob 'chrono' for rnn"),
        (lambda: vgzoo.create_model("lstm", (20, 2), 10, heads=2), "unknown knob 'heads' for lstm"),
        (lambda: vgzoo.create_model("transformer", (20, 2), 10, width=10, heads=4), "divisible by heads"),
        (lambda: vgzoo.create_model("gru", (20, 2), 10, head="vale"), "Did you mean 'value'"),
        (lambda: vgzoo.create_model("lstm", (28, 28, 1), 10), "(timesteps, channels)"),
        (lambda: vgzoo.create_model("lstm", (20, 2), 1), "num_classes must be an integer >= 2"),
        (lambda: recurrent.sequence_model((20, 2), 10, **dict(SEQUENCE_DEFAULTS, cell="gru", chrono=True)),
         "chrono"),
    ],
)
def test_bad_knobs_are_one_line_errors(call, message):
    with pytest.raises(vgzoo.VgzooError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("cell, knobs", [("lstm", {"chrono": True}), ("transformer", {"heads": 2})])
def test_custom_layers_survive_a_config_round_trip(cell, knobs):
    model = vgzoo.create_model(cell, (20, 10), 10, head="per_step", width=8, **knobs)
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


def test_a_tiny_lstm_trains_a_step_on_the_adding_stream():
    train_ds, val_ds, info = sequences.make_sequence_datasets(
        "adding", seq_len=20, batch_size=16, validation_size=32
    )
    model = vgzoo.create_model("lstm", info.input_shape, info.num_classes, head=info.head, width=8)
    model.compile(optimizer="adam", loss=info.loss)
    history = model.fit(train_ds, steps_per_epoch=2, epochs=1, validation_data=val_ds, shuffle=False, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])


TRAIN_AN_IRNN = """
import numpy as np
import vgzoo
model = vgzoo.create_model("irnn", (20, 2), 1, head="value", width=8)
model.compile(optimizer="adam", loss="mse")
model.fit(np.ones((64, 20, 2), "float32"), np.ones((64, 1), "float32"), batch_size=32, verbose=0)
"""


def test_training_an_irnn_leaves_the_graph_optimizer_nothing_to_report():
    """Keras' ReLU here made grappler's oneDNN remapper build a node with no op (`recurrent.relu`)."""
    finished = subprocess.run([sys.executable, "-c", TRAIN_AN_IRNN], capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    complaints = [line for line in finished.stderr.splitlines()
                  if any(word in line for word in ("tfg_optimizer", "remapper", "meta_optimizer",
                                                   "empty op name", "OpKernel"))]
    assert complaints == []
