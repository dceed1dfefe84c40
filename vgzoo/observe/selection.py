"""Which layers get histograms (gradients, weights, activations).

Scalars (`grad_norm`, `update_ratio`, `dead_units`) are cheap and kept for
every layer; histograms are what make a deep run unreadable and slow, so
they go to a subset. By default that subset is every layer outside numbered
blocks (stem, head, classifier, recurrent layers) plus the first and last
block of each stage: `stage2_block1_*` and `stage2_block18_*` of a
ResNet-110, `block1_*` and `block48_*` of an MLP-50. Those are where
gradient enters and leaves each stage, so vanishing shows between them,
while a ResNet-110 has 131 histogram tags instead of 1,043.
`--log-layers` replaces the default with shell-style globs on layer names.
"""
import difflib
import fnmatch
import re

from vgzoo.errors import VgzooError

# `stage2_block13_conv1` -> stage "stage2_", block 13; `block4_dense` -> "", 4.
_BLOCK = re.compile(r"^(?P<stage>.*?)block(?P<number>\d+)(?:_|$)")
_EXAMPLES = 6


def layer_names(model):
    """Top-level layer names in depth order, without the input layers."""
    return [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]


def parse_globs(log_layers):
    """`"stem*,stage1_*"` or a list of globs -> a list of globs; None stays None."""
    if log_layers is None:
        return None
    parts = log_layers.split(",") if isinstance(log_layers, str) else list(log_layers)
    globs = [str(part).strip() for part in parts if str(part).strip()]
    if not globs:
        raise VgzooError("--log-layers needs at least one layer-name glob, such as 'stem*,predictions'.")
    return globs


def default_layers(names):
    """Layers outside numbered blocks, and the first and last block of each stage."""
    blocks = {}
    for name in names:
        match = _BLOCK.match(name)
        if match:
            blocks.setdefault(match["stage"], set()).add(int(match["number"]))
    kept = []
    for name in names:
        match = _BLOCK.match(name)
        if not match or int(match["number"]) in (min(blocks[match["stage"]]), max(blocks[match["stage"]])):
            kept.append(name)
    return kept


def select_layers(model, log_layers=None):
    """The names of the layers whose histograms are written, in depth order.

    Every glob must match some layer, so a typo fails at once instead of
    silently recording nothing.
    """
    names = layer_names(model)
    globs = parse_globs(log_layers)
    if globs is None:
        return default_layers(names)
    for glob in globs:
        if not fnmatch.filter(names, glob):
            raise VgzooError(_no_match_message(glob, names, model.name))
    return [name for name in names if any(fnmatch.fnmatchcase(name, glob) for glob in globs)]


def _no_match_message(glob, names, model_name):
    close = difflib.get_close_matches(glob.replace("*", ""), names, n=3, cutoff=0.5)
    examples = list(dict.fromkeys(close + names[:3] + names[-2:]))[:_EXAMPLES]
    return (
        f"--log-layers pattern {glob!r} matches no layer of {model_name}; its layers include "
        f"{', '.join(examples)} (`vgzoo info` lists them all)."
    )

