"""Building registered models, untrained or with published weights.

Above the registry, as timm's `_factory` is above `_registry`: it resolves a
name and its knobs through the registry, calls the family's builder, and for
`pretrained=True` asks `vgzoo.pretrained` for the manifest entry and the
verified weight file. Importing it does not import TensorFlow; building does.
"""
from vgzoo.architectures.registry import get_spec
from vgzoo.errors import VgzooError

# Built when no shape is given: CIFAR's images and classes.
DEFAULT_INPUT_SHAPE = (32, 32, 3)
DEFAULT_NUM_CLASSES = 10

_SHAPE_EXAMPLES = {
    2: "(timesteps, channels) of positive integers, e.g. (784, 1) for seqmnist or (200, 2) for adding",
    3: "(height, width, channels) of positive integers, "
    "e.g. (28, 28, 1) for MNIST or (32, 32, 3) for CIFAR",
}


def check_input_shape(input_shape, rank=3):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != rank
        or not all(isinstance(size, int) and size > 0 for size in shape)
    ):
        raise VgzooError(f"input_shape must be {_SHAPE_EXAMPLES[rank]}; got {input_shape!r}.")
    return shape


def _check_num_classes(num_classes, arguments):
    # A "value" head has one linear output whatever num_classes says.
    fewest = 1 if arguments.get("head") == "value" else 2
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < fewest:
        raise VgzooError(f"num_classes must be an integer >= {fewest}, got {num_classes!r}.")


def create_model(name, input_shape=None, num_classes=None, *, pretrained=False, dataset=None,
                 **knobs):
    """Build a registered model; unknown names and knobs raise VgzooError.

    Input shape and classes default to CIFAR's (32, 32, 3) and 10. With
    `pretrained=True, dataset=...` the published weights are loaded and the
    shapes come from the checkpoint (see `load`); with a dataset alone, the
    checkpoint's architecture is built untrained.
    """
    if pretrained or dataset is not None:
        return load(name, dataset, pretrained, input_shape=input_shape,
                    num_classes=num_classes, **knobs)
    input_shape = DEFAULT_INPUT_SHAPE if input_shape is None else input_shape
    num_classes = DEFAULT_NUM_CLASSES if num_classes is None else num_classes
    spec = get_spec(name)
    arguments = spec.resolve(knobs)
    shape = check_input_shape(input_shape, spec.input_rank)
    _check_num_classes(num_classes, arguments)
    return spec.load_builder()(shape, num_classes, **arguments)


def build(entry):
    """A manifest entry's architecture, freshly initialised, from the registry."""
    from vgzoo.pretrained import manifest

    return create_model(entry["model"], tuple(entry["input_shape"]), entry["num_classes"],
                        **manifest.entry_knobs(entry))


def load(name, dataset=None, pretrained=True, *, seq_len=None, input_shape=None,
         num_classes=None, **knobs):
    """A registry model with the published weights for `dataset` loaded.

    With `pretrained=False`, the same architecture freshly initialised (any
    manifest entry, published or not). Every check runs before TensorFlow
    builds anything, so a refused request leaves nothing half-loaded.
    """
    from vgzoo.pretrained import manifest, weights

    get_spec(name).resolve(knobs)
    if dataset is None:
        raise VgzooError(f"say which data the checkpoint was trained on: dataset='adding', say "
                         f"(`vgzoo list --pretrained` lists them).")
    entry = manifest.find_entry(name, dataset, seq_len, require_published=pretrained)
    manifest.check_knobs(entry, knobs)
    manifest.check_shapes(entry, input_shape, num_classes)
    if not pretrained:
        return build(entry)
    path = weights.locate(entry)
    return weights.load_into(build(entry), path, f"{manifest.label(entry)} as the registry builds it now",
                             "the manifest entry needs republishing")
