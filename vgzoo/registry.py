"""The model registry: names, families, matched partners and knobs.

This module holds metadata only and must not import TensorFlow, so that
`vgzoo list` answers at once. Builders are named by import path and loaded
when a model is actually created.
"""
import dataclasses
import fnmatch
import importlib

from vgzoo.errors import VgzooError, unknown_choice

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")
INITIALIZERS = ("glorot_uniform", "he_normal", "naive")

# Each knob: (type, choices or None). Families list which knobs they accept.
KNOB_TYPES = {
    "activation": (str, ACTIVATIONS),
    "initializer": (str, INITIALIZERS),
    "batch_norm": (bool, None),
    "preactivation": (bool, None),
    "depth": (int, None),
    "width": (int, None),
    "head": (str, ("classes", "per_step", "value")),
    "chrono": (bool, None),
    "heads": (int, None),
    "match_params": (int, None),
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: a builder bound to the arguments that define it."""

    name: str
    family: str
    builder: str  # "module:function", imported only when the model is built
    defaults: dict
    partner: str
    description: str
    knobs: tuple
    # The one builder argument a matched pair (or group) differs in.
    varies: str = "residual"
    # Images are (height, width, channels); sequences (timesteps, channels).
    input_rank: int = 3

    def resolve(self, knobs):
        """The builder's arguments: defaults overridden by validated knobs."""
        resolved = dict(self.defaults)
        for key, value in knobs.items():
            resolved[key] = _check_knob(self, key, value)
        return resolved

    def load_builder(self):
        module_name, function_name = self.builder.split(":")
        return getattr(importlib.import_module(module_name), function_name)


_REGISTRY = {}


def register(spec):
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _check_knob(spec, key, value):
    if key not in spec.knobs:
        raise unknown_choice("knob", key, spec.knobs, where=f" for {spec.name}")
    expected_type, choices = KNOB_TYPES[key]
    if expected_type is bool and isinstance(value, str):
        value = _parse_bool(key, value)
    if expected_type is int and isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, expected_type) or (
        expected_type is int and isinstance(value, bool)
    ):
        raise VgzooError(
            f"knob {key!r} takes a {expected_type.__name__}, got {value!r}."
        )
    if choices is not None and value not in choices:
        raise unknown_choice(key, value, choices)
    if expected_type is int and value <= 0:
        raise VgzooError(f"knob {key!r} must be a positive integer, got {value}.")
    return value


def _parse_bool(key, text):
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise VgzooError(f"knob {key!r} takes true or false, got {text!r}.")


def get_spec(name):
    if name not in _REGISTRY:
        raise unknown_choice("model", name, _REGISTRY)
    return _REGISTRY[name]


def list_models(pattern="*"):
    """Registered model names matching a shell wildcard, in registry order."""
    return [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]


def partner_of(name):
    return get_spec(name).partner


def pairs():
    """Each matched pair once, as (plain, remedied) name tuples."""
    seen = set()
    result = []
    for spec in _REGISTRY.values():
        key = frozenset((spec.name, spec.partner))
        if key not in seen:
            seen.add(key)
            result.append((spec.name, spec.partner))
    return result


def _register_builtin_models():
    # Importing the family metadata modules registers their names; they are
    # TensorFlow-free on purpose.
    from vgzoo.architectures import catalog  # noqa: F401


_register_builtin_models()


_SHAPE_EXAMPLES = {
    2: "(timesteps, channels) of positive integers, e.g. (784, 1) for seqmnist or (200, 2) for adding",
    3: "(height, width, channels) of positive integers, "
    "e.g. (28, 28, 1) for MNIST or (32, 32, 3) for CIFAR",
}


def _check_input_shape(input_shape, rank=3):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != rank
        or not all(isinstance(size, int) and size > 0 for size in shape)
    ):
        raise VgzooError(f"input_shape must be {_SHAPE_EXAMPLES[rank]}; got {input_shape!r}.")
    return shape


def create_model(name, input_shape=None, num_classes=None, *, pretrained=False, dataset=None,
                 **knobs):
    """Build a registered model; unknown names and knobs raise VgzooError.

    Input shape and classes default to CIFAR's (32, 32, 3) and 10. With
    `pretrained=True, dataset=...` the published weights are loaded and the
    shapes come from the checkpoint (see `vgzoo.checkpoints.load`); with a
    dataset alone, the checkpoint's architecture is built untrained.
    """
    if pretrained or dataset is not None:
        from vgzoo import checkpoints

        return checkpoints.load(name, dataset, pretrained, input_shape=input_shape,
                                num_classes=num_classes, **knobs)
    input_shape = (32, 32, 3) if input_shape is None else input_shape
    num_classes = 10 if num_classes is None else num_classes
    spec = get_spec(name)
    arguments = spec.resolve(knobs)
    shape = _check_input_shape(input_shape, spec.input_rank)
    # A "value" head has one linear output whatever num_classes says.
    fewest = 1 if arguments.get("head") == "value" else 2
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < fewest:
        raise VgzooError(f"num_classes must be an integer >= {fewest}, got {num_classes!r}.")
    return spec.load_builder()(shape, num_classes, **arguments)
