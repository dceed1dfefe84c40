"""The registered models: thin bindings of a builder and its arguments.

Metadata only (no TensorFlow): a matched pair is the same builder with the
`residual` flag flipped, so everything else (depth, width, initialiser, ...)
is equal by construction.
"""
from vgzoo.architectures.registry import ModelSpec, register

CONVNET_DEPTHS = (20, 32, 44, 56, 110)
MLP_DEPTHS = (10, 20, 50)

CONVNET_KNOBS = ("depth", "activation", "initializer", "batch_norm", "preactivation")
MLP_KNOBS = CONVNET_KNOBS + ("width",)

CONVNET_DEFAULTS = dict(
    activation="relu", initializer="he_normal", batch_norm=True, preactivation=False
)
MLP_DEFAULTS = dict(
    activation="relu",
    initializer="he_normal",
    batch_norm=False,
    preactivation=True,
    width=256,
)


def _register_pair(family, builder, plain, residual, depth, defaults, knobs, blurb):
    for name, is_residual, partner in (
        (plain, False, residual),
        (residual, True, plain),
    ):
        kind = "residual" if is_residual else "plain"
        register(
            ModelSpec(
                name=name,
                family=family,
                builder=builder,
                defaults=dict(defaults, depth=depth, residual=is_residual),
                partner=partner,
                description=f"{depth}-layer {kind} {blurb}",
                knobs=knobs,
            )
        )


for _depth in CONVNET_DEPTHS:
    _register_pair(
        "convnet",
        "vgzoo.architectures.convnets:convnet",
        f"plain{_depth}",
        f"resnet{_depth}",
        _depth,
        CONVNET_DEFAULTS,
        CONVNET_KNOBS,
        "CIFAR-style CNN (He et al. 2016, 16/32/64 filters)",
    )

for _depth in MLP_DEPTHS:
    _register_pair(
        "mlp",
        "vgzoo.architectures.mlp:mlp",
        f"mlp{_depth}",
        f"resmlp{_depth}",
        _depth,
        MLP_DEFAULTS,
        MLP_KNOBS,
        "MLP, one dense layer per block",
    )

# Sequence models: one builder, the cell varies; the gated and remedied cells
# point back at the plain tanh RNN, which points at the LSTM.
SEQUENCE_KNOBS = ("width", "depth", "head", "match_params")
SEQUENCE_CELL_KNOBS = {"lstm": ("chrono",), "transformer": ("heads",)}
# Every member carries every default, so a group differs only in `cell`.
SEQUENCE_DEFAULTS = dict(width=128, depth=1, head="classes", chrono=False, heads=4, match_params=None)
SEQUENCE_CELLS = {
    "rnn": "vanilla tanh RNN (Elman 1990)",
    "irnn": "ReLU RNN, identity recurrent init (Le et al. 2015)",
    "lstm": "LSTM, forget bias 1; chrono init knob (Tallec & Ollivier 2018)",
    "gru": "GRU (Cho et al. 2014)",
    "transformer": "pre-LN causal Transformer encoder (Vaswani et al. 2017)",
}

for _cell, _blurb in SEQUENCE_CELLS.items():
    register(
        ModelSpec(
            name=_cell,
            family="sequence",
            builder="vgzoo.architectures.recurrent:sequence_model",
            defaults=dict(SEQUENCE_DEFAULTS, cell=_cell),
            partner="lstm" if _cell == "rnn" else "rnn",
            description=f"1-layer {_blurb}",
            knobs=SEQUENCE_KNOBS + SEQUENCE_CELL_KNOBS.get(_cell, ()),
            varies="cell",
            input_rank=2,
        )
    )
