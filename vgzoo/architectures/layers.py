"""The layers both families build from, with the remedies as knobs.

Activations and initialisers by knob name, batch normalisation that the
knob can switch off, and the weight layers whose bias goes when batch norm
follows them. `options` is the dict of knobs a builder passes down
(activation, initializer, batch_norm).
"""
import keras

# A small fixed-scale normal, the "naive" initialisation that deep nets
# cannot train from (Glorot & Bengio 2010): signals shrink layer by layer.
NAIVE_STDDEV = 0.01


def activation_layer(name, layer_name):
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01, name=layer_name)
    return keras.layers.Activation(name, name=layer_name)


def initializer(name, seed=None):
    if name == "naive":
        return keras.initializers.RandomNormal(stddev=NAIVE_STDDEV, seed=seed)
    if name == "glorot_uniform":
        return keras.initializers.GlorotUniform(seed=seed)
    if name == "he_normal":
        return keras.initializers.HeNormal(seed=seed)
    raise ValueError(f"no initializer {name!r}")


# Moving statistics follow the reference Torch ResNets (PyTorch's 0.1 is Keras'
# 0.9): with Keras' default 0.99 they lag so far behind in a short run that
# validation numbers are meaningless for the first epochs.
BATCH_NORM_MOMENTUM = 0.9


def normalize_or_identity(x, batch_norm, layer_name):
    """Batch normalisation when the knob is on; otherwise the tensor unchanged."""
    if not batch_norm:
        return x
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=layer_name)(x)


def norm_act(x, options, name):
    """Batch norm (when on) then the activation: `<name>_bn`, `<name>_act`."""
    x = normalize_or_identity(x, options["batch_norm"], f"{name}_bn")
    return activation_layer(options["activation"], f"{name}_act")(x)


def conv3x3(x, filters, stride, options, name):
    return keras.layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=not options["batch_norm"],
        kernel_initializer=initializer(options["initializer"]),
        name=name,
    )(x)


def dense(x, width, options, name):
    return keras.layers.Dense(
        width,
        use_bias=not options["batch_norm"],
        kernel_initializer=initializer(options["initializer"]),
        name=name,
    )(x)
