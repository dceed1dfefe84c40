"""A small pre-layer-norm Transformer encoder for the sequence tasks.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017: self-attention
and an MLP per block, sinusoidal positions. Xiong et al., "On Layer
Normalization in the Transformer Architecture", ICML 2020: the pre-LN
arrangement (LayerNorm inside each residual branch, a final LayerNorm) keeps
the identity path clean, so gradients reach early blocks without warm-up.

Attention is causal: every position sees only itself and the past, as a
recurrent network's state does, so the last position summarises the whole
sequence and per-step predictions use no future inputs. The model is the
sequence features; `recurrent.sequence_model` adds the head.
"""
import math

import keras
import numpy as np

from vgzoo.errors import VgzooError

MLP_RATIO = 4
LAYER_NORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="vgzoo")
class SinusoidalPositions(keras.layers.Layer):
    """Adds the fixed sin/cos position code of Vaswani et al. (no weights)."""

    def build(self, input_shape):
        _, length, width = input_shape
        self.table = self._table(length, width)

    @staticmethod
    def _table(length, width):
        positions = np.arange(length)[:, np.newaxis]
        # Frequencies fall geometrically from 1 to 1/10000 across the channels.
        rates = np.exp(-math.log(10000.0) * (np.arange(width) // 2 * 2) / width)
        angles = positions * rates[np.newaxis, :]
        table = np.where(np.arange(width) % 2 == 0, np.sin(angles), np.cos(angles))
        return table.astype("float32")

    def call(self, inputs):
        table = keras.ops.convert_to_tensor(self.table, dtype=inputs.dtype)
        return inputs + table[None, : keras.ops.shape(inputs)[1], :]


def check_heads(width, heads):
    if width % heads:
        raise VgzooError(
            f"the transformer splits width {width} across {heads} heads; choose a width "
            f"divisible by heads (e.g. {width - width % heads or heads})."
        )


def _layer_norm(x, name):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)(x)


def _block(x, width, heads, name):
    branch = _layer_norm(x, f"{name}_attention_norm")
    attention = keras.layers.MultiHeadAttention(
        num_heads=heads, key_dim=width // heads, name=f"{name}_attention"
    )
    branch = attention(branch, branch, use_causal_mask=True)
    x = keras.layers.Add(name=f"{name}_attention_add")([x, branch])
    branch = _layer_norm(x, f"{name}_mlp_norm")
    branch = keras.layers.Dense(MLP_RATIO * width, activation="gelu", name=f"{name}_mlp_dense1")(branch)
    branch = keras.layers.Dense(width, name=f"{name}_mlp_dense2")(branch)
    return keras.layers.Add(name=f"{name}_mlp_add")([x, branch])


def transformer_encoder(x, *, width, depth, heads):
    """(batch, time, channels) -> (batch, time, width) through `depth` blocks."""
    check_heads(width, heads)
    x = keras.layers.Dense(width, name="input_proj")(x)
    x = SinusoidalPositions(name="positions")(x)
    for block in range(1, depth + 1):
        x = _block(x, width, heads, f"block{block}")
    return _layer_norm(x, "final_norm")


def encoder_parameters(input_channels, width, depth):
    """Weights in `transformer_encoder`, without building it."""
    projection = input_channels * width + width
    attention = 4 * (width * width + width)  # query, key, value, output
    mlp = 2 * MLP_RATIO * width * width + MLP_RATIO * width + width
    layer_norms = 2 * 2 * width
    return projection + depth * (attention + mlp + layer_norms) + 2 * width
