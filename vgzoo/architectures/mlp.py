"""Deep multilayer perceptrons, plain and residual.

Glorot & Bengio, "Understanding the difficulty of training deep feedforward
neural networks", AISTATS 2010: deep sigmoid MLPs lose their gradient layer by
layer. The residual partner adds an identity path around every hidden dense
layer; with `preactivation=True` (the default, He et al. 2016b) the
activation sits inside the branch, so the identity path stays clean.

`depth` counts the dense layers: a stem, depth-2 hidden blocks, a classifier.
"""
import keras

from vgzoo.architectures import layers
from vgzoo.errors import VgzooError


def _block(x, width, options, name):
    if options["preactivation"]:
        branch = layers.dense(layers.norm_act(x, options, f"{name}_pre"), width, options, f"{name}_dense")
        return keras.layers.Add(name=f"{name}_add")([x, branch]) if options["residual"] else branch
    branch = layers.dense(x, width, options, f"{name}_dense")
    branch = layers.normalize_or_identity(branch, options["batch_norm"], f"{name}_bn")
    if options["residual"]:
        branch = keras.layers.Add(name=f"{name}_add")([x, branch])
    return layers.activation_layer(options["activation"], f"{name}_out_act")(branch)


def mlp(
    input_shape,
    num_classes,
    *,
    depth,
    residual,
    width,
    activation,
    initializer,
    batch_norm,
    preactivation,
):
    """A `depth`-layer MLP on flattened inputs; `residual` decides the pair."""
    if depth < 3:
        raise VgzooError(f"an MLP needs depth >= 3 (stem, one block, classifier), got {depth}.")
    options = dict(
        residual=residual,
        activation=activation,
        initializer=initializer,
        batch_norm=batch_norm,
        preactivation=preactivation,
    )
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = layers.dense(x, width, options, "stem_dense")
    if not preactivation:
        x = layers.norm_act(x, options, "stem")
    for block in range(1, depth - 1):
        x = _block(x, width, options, f"block{block}")
    if preactivation:
        x = layers.norm_act(x, options, "head")
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=layers.initializer(initializer),
        name="predictions",
    )(x)
    kind = "resmlp" if residual else "mlp"
    return keras.Model(inputs, outputs, name=f"{kind}{depth}")
