"""The zoo's architectures: the registry (metadata), the catalog (the names),
the factory (building), and one module per family.

Importing this package registers the catalog's names; it does not import
TensorFlow.
"""
from vgzoo.architectures import catalog  # noqa: F401  (registers the zoo's names)
from vgzoo.architectures.factory import create_model, load
from vgzoo.architectures.registry import get_spec, list_models, pairs, partner_of

__all__ = ["create_model", "get_spec", "list_models", "load", "pairs", "partner_of"]
