"""Sequence models whose matched group differs only in the cell.

- `rnn`: Elman, "Finding Structure in Time", 1990; a tanh SimpleRNN, whose
  gradient through time vanishes (Bengio, Simard & Frasconi 1994).
- `irnn`: Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks
  of Rectified Linear Units", 2015: ReLU, identity recurrent matrix, zero
  biases, input weights N(0, 0.001).
- `lstm`: Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997, with a
  forget-gate bias of 1 (Gers, Schmidhuber & Cummins 2000; Jozefowicz et al.
  2015). `chrono=True`: Tallec & Ollivier, "Can Recurrent Neural Networks
  Warp Time?", ICLR 2018: forget bias log(U(1, T - 1)), input bias its
  negative, so the gates start with memories of up to T steps.
- `gru`: Cho et al., "Learning Phrase Representations using RNN
  Encoder-Decoder", 2014.
- `transformer`: see `vgzoo.architectures.transformer`.

Heads: "classes" (softmax from the last timestep, seqmnist), "per_step"
(softmax at every timestep, copy) and "value" (one linear output from the
last timestep, adding; `num_classes` is ignored).

Every recurrent layer's cell is named `cell`, whatever its kind, so the
group's variables (`recurrent1/cell/kernel`) and per-layer tags are alike
across cells and a pair's TensorBoard cards line up. Weights files key the
cell by its attribute (`layers/lstm/cell/vars`), not its name, so the
published checkpoints load as before.
"""
import random

import keras

from vgzoo.architectures import transformer
from vgzoo.architectures.catalog import SEQUENCE_CELLS
from vgzoo.architectures.registry import HEADS
from vgzoo.errors import VgzooError, unknown_choice

CELLS = tuple(SEQUENCE_CELLS)
IRNN_INPUT_STDDEV = 0.001  # Le et al. 2015, section 3
_GATES = {"rnn": 1, "irnn": 1, "lstm": 4, "gru": 3}
CELL_NAME = "cell"


@keras.saving.register_keras_serializable(package="vgzoo")
def relu(x):
    """max(0, x): the IRNN's ReLU, written so TensorFlow's CPU graph optimizer leaves it alone.

    A SimpleRNN cell computes relu(x W + b + h U). With oneDNN (TensorFlow's
    CPU default) grappler's remapper matches MatMul + bias Add + Add + Relu
    and fuses it into one node, but builds that node's op only for
    convolutions: for a MatMul it leaves the op empty, and every compiled
    step logs `... simple_rnn_cell_1/Relu has an empty op name` and
    `remapper failed: NOT_FOUND: Op type not registered ''`. A Maximum is no
    activation it fuses. `maximum(0, x)` has ReLU's value and, as
    TensorFlow's Maximum gradient goes to its first argument on ties, ReLU's
    gradient of 0 at x = 0.
    """
    return keras.ops.maximum(0.0, x)


@keras.saving.register_keras_serializable(package="vgzoo")
class ChronoBias(keras.initializers.Initializer):
    """LSTM biases [input, forget, cell, output] of the chrono initialisation."""

    def __init__(self, max_timesteps, seed=None):
        self.max_timesteps = max_timesteps
        # Drawn from Python's random, as Keras' own initialisers do, so that
        # keras.utils.set_random_seed makes the biases reproducible.
        self.seed = random.randint(1, 2**31 - 1) if seed is None else seed

    def __call__(self, shape, dtype=None):
        units = shape[0] // 4
        high = max(self.max_timesteps - 1, 1 + 1e-6)
        uniform = keras.random.uniform((units,), minval=1.0, maxval=high, seed=self.seed)
        forget = keras.ops.log(uniform)
        zeros = keras.ops.zeros((units,))
        return keras.ops.cast(keras.ops.concatenate([-forget, forget, zeros, zeros]), dtype)

    def get_config(self):
        return {"max_timesteps": self.max_timesteps, "seed": self.seed}


@keras.saving.register_keras_serializable(package="vgzoo")
class LastTimestep(keras.layers.Layer):
    """(batch, time, features) -> (batch, features) at the final position."""

    def call(self, inputs):
        return inputs[:, -1, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def _recurrent_layer(cell, width, timesteps, chrono, return_sequences, name):
    layer = _keras_recurrent_layer(cell, width, timesteps, chrono, return_sequences, name)
    # Named before the layer is built: the variables take their path from it.
    layer.cell.name = CELL_NAME
    return layer


def _keras_recurrent_layer(cell, width, timesteps, chrono, return_sequences, name):
    common = dict(return_sequences=return_sequences, name=name)
    if cell == "rnn":
        return keras.layers.SimpleRNN(width, activation="tanh", **common)
    if cell == "irnn":
        return keras.layers.SimpleRNN(
            width,
            activation=relu,
            recurrent_initializer=keras.initializers.Identity(),
            kernel_initializer=keras.initializers.RandomNormal(stddev=IRNN_INPUT_STDDEV),
            **common,
        )
    if cell == "lstm":
        if chrono:
            return keras.layers.LSTM(
                width, unit_forget_bias=False, bias_initializer=ChronoBias(timesteps), **common
            )
        return keras.layers.LSTM(width, unit_forget_bias=True, **common)
    return keras.layers.GRU(width, **common)


def _features(inputs, cell, width, depth, chrono, heads, per_step):
    """Sequence features (per_step) or the last timestep's, from the cell."""
    if cell == "transformer":
        x = transformer.transformer_encoder(inputs, width=width, depth=depth, heads=heads)
        return x if per_step else LastTimestep(name="last_timestep")(x)
    x = inputs
    for layer in range(1, depth + 1):
        keep_sequence = per_step or layer < depth
        x = _recurrent_layer(cell, width, inputs.shape[1], chrono, keep_sequence, f"recurrent{layer}")(x)
    return x


def _check_options(cell, head, chrono, depth):
    if cell not in CELLS:
        raise unknown_choice("cell", cell, CELLS)
    if head not in HEADS:
        raise unknown_choice("head", head, HEADS)
    if chrono and cell != "lstm":
        raise VgzooError(f"chrono initialises LSTM gates; it does not apply to {cell}.")
    if depth < 1:
        raise VgzooError(f"a sequence model needs depth >= 1, got {depth}.")


def sequence_model(input_shape, num_classes, *, cell, width, depth, head, chrono, heads,
                   match_params):
    """A `depth`-layer model of `cell` on (timesteps, channels) inputs.

    `match_params` picks the width whose parameter count is nearest to it
    (overriding `width`), so that cells can be compared at equal size.
    """
    _check_options(cell, head, chrono, depth)
    outputs_per_step = 1 if head == "value" else num_classes
    width = effective_width(input_shape, num_classes, cell=cell, width=width, depth=depth,
                            head=head, heads=heads, match_params=match_params)
    inputs = keras.Input(shape=tuple(input_shape), name="sequence")
    x = _features(inputs, cell, width, depth, chrono, heads, per_step=head == "per_step")
    activation = None if head == "value" else "softmax"
    outputs = keras.layers.Dense(outputs_per_step, activation=activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=cell)


def effective_width(input_shape, num_classes, *, cell, width, depth, head, heads, match_params,
                    **_other_knobs):
    """The width a model is built at: `width`, or the one `match_params` picks."""
    if match_params is None:
        return width
    outputs_per_step = 1 if head == "value" else num_classes
    return width_for_budget(match_params, cell, input_shape[-1], outputs_per_step,
                            depth=depth, heads=heads)


def count_parameters(cell, input_channels, outputs, *, width, depth=1):
    """The weights `sequence_model` builds, computed without building it."""
    if cell not in CELLS:
        raise unknown_choice("cell", cell, CELLS)
    head = width * outputs + outputs
    if cell == "transformer":
        return transformer.encoder_parameters(input_channels, width, depth) + head
    # GRU's reset_after form (Keras' default) carries a second bias per gate.
    biases = 2 * width if cell == "gru" else width
    gates = _GATES[cell]
    total = 0
    for layer in range(depth):
        fan_in = input_channels if layer == 0 else width
        total += gates * (fan_in * width + width * width + biases)
    return total + head


def width_for_budget(budget, cell, input_channels, outputs, *, depth=1, heads=4):
    """The width (a multiple of `heads` for the transformer) nearest `budget` weights."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise VgzooError(f"match_params must be a positive integer, got {budget!r}.")
    step = heads if cell == "transformer" else 1

    def size(width):
        return count_parameters(cell, input_channels, outputs, width=width, depth=depth)

    if size(step) > budget:
        raise VgzooError(f"match_params={budget} is below the smallest {cell} ({size(step)} "
                         f"parameters at width {step}); give a larger budget.")
    # The count grows with width: double past the budget, then bisect.
    high = step
    while size(high) < budget:
        high *= 2
    low = step
    while high - low > step:
        middle = (low + high) // (2 * step) * step
        low, high = (middle, high) if size(middle) < budget else (low, middle)
    return min((low, high), key=lambda width: (abs(size(width) - budget), width))
