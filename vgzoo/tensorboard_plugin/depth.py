"""A run's layers in depth order, each a weight layer or a normalisation layer.

The `grad_norm/<layer>` tags come back from TensorBoard in no useful order
(alphabetically `predictions` precedes `stem_conv`). Depth order is the
order of the model's trainable variables, which the run does not write down,
so it is recovered, in this order of preference:

1. `config.json`'s `"layer_order"`, when the run recorded it;
2. tags that carry their depth as a leading index (`07_stage1_block2_conv1`);
3. the model rebuilt from the registry with the run's recorded arguments and
   input shape (exact for every zoo model; batch norm and layer norm told
   apart by their Keras class);
4. for other models, the names: stem and input layers first, numbered
   stages and blocks in numeric order, head and predictions last.
"""
import functools
import json
import re
import threading

from vgzoo.observe import tags

WEIGHT, NORM = "weight", "norm"
_INDEXED = re.compile(r"^(\d+)[_.-]")
_FIRST = re.compile(r"^(stem|input|embed|positions)")
_LAST = re.compile(r"^(head|final|output|logits|top)")
_NUMBER = re.compile(r"(\d+)")
_BUILD_LOCK = threading.Lock()


def kind_of_name(layer):
    """`norm` for names like `stem_bn`, `block1_mlp_norm`; `weight` otherwise."""
    return NORM if tags.is_norm_layer(layer) else WEIGHT


def _top(layer):
    return layer.split("/", 1)[0]


def name_key(layer):
    """Depth by name alone: first layers, then numbers in numeric order, predictions last."""
    top = _top(layer)
    group = 3 if top == "predictions" else 2 if _LAST.match(top) else 0 if _FIRST.match(top) else 1
    chunks = tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                   for part in _NUMBER.split(layer) if part)
    return group, chunks


def reference_order(config):
    """[(layer, kind)] in depth order from the run's record, or [] when it cannot tell."""
    recorded = config.get("layer_order")
    if isinstance(recorded, list) and all(isinstance(name, str) for name in recorded):
        return [(name, kind_of_name(name)) for name in recorded]
    model = config.get("model") or {}
    dataset = config.get("dataset") or {}
    shape, classes = dataset.get("input_shape"), dataset.get("num_classes")
    if not model.get("name") or not shape:
        return []
    arguments = json.dumps(model.get("arguments") or {}, sort_keys=True)
    return list(_rebuilt(model["name"], arguments, tuple(shape), classes))


@functools.lru_cache(maxsize=64)
def _rebuilt(name, arguments, input_shape, num_classes):
    """The registry model built as the run built it: its weight layers in variable order."""
    try:
        from vgzoo.architectures import registry

        spec = registry.get_spec(name)
    except Exception:  # not a zoo model (a Keras model handed to train or watch)
        return ()
    try:
        with _BUILD_LOCK:  # Keras builds one model at a time
            import keras

            built = spec.load_builder()(input_shape, num_classes or 1, **json.loads(arguments))
            norms = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                     keras.layers.GroupNormalization)
            order = []
            for variable in built.trainable_variables:
                layer = variable.path.rsplit("/", 1)[0]
                if layer not in dict(order):
                    kind = NORM if isinstance(built.get_layer(_top(layer)), norms) else WEIGHT
                    order.append((layer, kind))
            del built
            return tuple(order)
    except Exception:  # the builder changed since the run was recorded
        return ()


def shown_names(layers):
    """The layers' names without their depth index, when every one carries it."""
    if layers and all(_INDEXED.match(layer) for layer in layers):
        return [_INDEXED.sub("", layer) for layer in layers]
    return list(layers)


def in_depth_order(layers, config):
    """[(layer, kind)] for the given tag layers, shallowest first."""
    layers = list(dict.fromkeys(layers))
    if layers and all(_INDEXED.match(layer) for layer in layers):
        ordered = sorted(layers, key=lambda layer: int(_INDEXED.match(layer).group(1)))
        return [(layer, kind_of_name(_INDEXED.sub("", layer))) for layer in ordered]
    reference = reference_order(config) if layers else []
    position = {name: index for index, (name, _) in enumerate(reference)}
    top_position = {}
    for index, (name, _) in enumerate(reference):
        top_position.setdefault(_top(name), index)
    kinds = dict(reference)

    def key(layer):
        bare = _INDEXED.sub("", layer)
        for candidate in (layer, bare):
            if candidate in position:
                return 0, position[candidate], ()
        if _top(bare) in top_position:
            return 0, top_position[_top(bare)], name_key(bare)
        return 1, 0, name_key(bare)

    ordered = sorted(layers, key=key)
    return [(layer, kinds.get(layer) or kinds.get(_INDEXED.sub("", layer)) or kind_of_name(layer))
            for layer in ordered]
