"""CIFAR-style plain and residual networks.

He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", CVPR 2016,
section 4.2: a 3x3 stem convolution, three stages of n blocks with 16, 32 and
64 filters (6n+2 weighted layers), global average pooling and a dense
classifier. Downsampling shortcuts are option A: parameter-free, subsample
and zero-pad the new channels.

He, Zhang, Ren, Sun. "Identity Mappings in Deep Residual Networks", ECCV 2016:
`preactivation=True` moves batch norm and activation before each convolution,
so nothing sits on the identity path.

The plain network is the same function with `residual=False`: the same
layers in the same order, without the additions.
"""
import keras

from vgzoo.architectures import layers
from vgzoo.errors import VgzooError

STAGE_FILTERS = (16, 32, 64)


@keras.saving.register_keras_serializable(package="vgzoo")
class ZeroPadShortcut(keras.layers.Layer):
    """Option-A shortcut: stride-2 subsampling, new channels filled with zeros."""

    def __init__(self, filters, stride, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.stride = stride

    def call(self, inputs):
        subsampled = inputs[:, :: self.stride, :: self.stride, :]
        missing = self.filters - subsampled.shape[-1]
        return keras.ops.pad(subsampled, [[0, 0], [0, 0], [0, 0], [0, missing]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        ceil = lambda size: None if size is None else -(-size // self.stride)  # noqa: E731
        return (batch, ceil(height), ceil(width), self.filters)

    def get_config(self):
        return dict(super().get_config(), filters=self.filters, stride=self.stride)


def blocks_per_stage(depth):
    if depth < 8 or (depth - 2) % 6:
        raise VgzooError(
            f"a CIFAR-style network needs depth 6n+2 (20, 32, 44, 56, 110, ...), got {depth}."
        )
    return (depth - 2) // 6


def _block(x, filters, stride, options, name):
    shortcut = x
    if options["preactivation"]:
        x = layers.norm_act(x, options, f"{name}_pre1")
        x = layers.conv3x3(x, filters, stride, options, f"{name}_conv1")
        x = layers.norm_act(x, options, f"{name}_pre2")
        x = layers.conv3x3(x, filters, 1, options, f"{name}_conv2")
    else:
        x = layers.conv3x3(x, filters, stride, options, f"{name}_conv1")
        x = layers.norm_act(x, options, f"{name}_1")
        x = layers.conv3x3(x, filters, 1, options, f"{name}_conv2")
        x = layers.normalize_or_identity(x, options["batch_norm"], f"{name}_2_bn")
    if options["residual"]:
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = ZeroPadShortcut(filters, stride, name=f"{name}_shortcut")(shortcut)
        x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    if not options["preactivation"]:
        x = layers.activation_layer(options["activation"], f"{name}_out_act")(x)
    return x


def convnet(
    input_shape,
    num_classes,
    *,
    depth,
    residual,
    activation,
    initializer,
    batch_norm,
    preactivation,
):
    """A 6n+2-layer CIFAR-style network; `residual` decides the matched pair."""
    n = blocks_per_stage(depth)
    options = dict(
        residual=residual,
        activation=activation,
        initializer=initializer,
        batch_norm=batch_norm,
        preactivation=preactivation,
    )
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.conv3x3(inputs, STAGE_FILTERS[0], 1, options, "stem_conv")
    if not preactivation:
        x = layers.norm_act(x, options, "stem")
    for stage, filters in enumerate(STAGE_FILTERS, start=1):
        for block in range(1, n + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = _block(x, filters, stride, options, f"stage{stage}_block{block}")
    if preactivation:
        x = layers.norm_act(x, options, "head")
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=layers.initializer(initializer),
        name="predictions",
    )(x)
    kind = "resnet" if residual else "plain"
    return keras.Model(inputs, outputs, name=f"{kind}{depth}")

