"""Names of the per-layer scalar tags: `<kind>/<NN>_<layer>`, NN the layer's depth index.

TensorBoard lays out a group's cards in tag order, so bare layer names put
`predictions` first and `stem_conv` last; a zero-padded index in front
(`grad_norm/00_stem_conv`, ..., `grad_norm/20_predictions`) puts them input
first. The index counts the layers of the tag's own list (the layers with
trainable variables for `grad_norm` and `update_ratio`, the ReLU-family
layers for `dead_units`), so the two members of a matched pair, built with
the same layers in the same order, share their tags.

No TensorFlow here: the readers (`vgzoo.analysis`, the picture child) use it too.
"""
import re

_INDEXED = re.compile(r"^(\d+)_(.+)$")
# Normalisation layers, told apart from weight layers in the pictures.
_NORM_NAME = re.compile(r"(^|_)(bn|norm|batchnorm|batch_norm|layernorm|layer_norm|ln)\d*$")


def numbered(layers):
    """`{layer: "NN_layer"}` in the given (depth) order, the index padded to one width."""
    layers = list(layers)
    width = max(2, len(str(len(layers) - 1)))
    return {layer: f"{index:0{width}d}_{layer}" for index, layer in enumerate(layers)}


def layer_tags(kind, layers):
    """`{layer: "<kind>/NN_layer"}` for `layers` in depth order."""
    return {layer: f"{kind}/{name}" for layer, name in numbered(layers).items()}


def in_depth_order(names):
    """[(name, layer)] for tag layer names (the part after `<kind>/`), shallowest first.

    `layer` is the name without its index. Runs recorded before the index
    carry bare names; those keep the order they are given in (the order they
    were first written: the model's).
    """
    matches = [_INDEXED.match(name) for name in names]
    if names and all(matches):
        ordered = sorted(zip(names, matches), key=lambda pair: int(pair[1].group(1)))
        return [(name, match.group(2)) for name, match in ordered]
    return [(name, name) for name in names]


def is_norm_layer(layer):
    """`stem_bn`, `block1_mlp_norm`: a normalisation layer (its top-level name decides)."""
    return bool(_NORM_NAME.search(layer.split("/", 1)[0]))
