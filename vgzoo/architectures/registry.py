"""The model registry: names, families, matched partners and knobs.

A leaf, as timm's `_registry`: metadata only, importing nothing of vgzoo but
its errors and no TensorFlow, so that `vgzoo list` answers at once. The
names are registered by `catalog`, which the package imports; builders are
named by import path and loaded by `factory` when a model is created.
"""
import dataclasses
import fnmatch
import importlib

from vgzoo.errors import VgzooError, unknown_choice

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu")
INITIALIZERS = ("glorot_uniform", "he_normal", "naive")

# Each knob: (type, choices or None). Families list which knobs they accept.
# What the last layer of a sequence model predicts: one class, a class per
# step, or one value.
HEADS = ("classes", "per_step", "value")

KNOB_TYPES = {
    "activation": (str, ACTIVATIONS),
    "initializer": (str, INITIALIZERS),
    "batch_norm": (bool, None),
    "preactivation": (bool, None),
    "depth": (int, None),
    "width": (int, None),
    "head": (str, HEADS),
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
