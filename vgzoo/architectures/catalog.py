"""The registered models: thin bindings of a builder and its arguments.

Metadata only (no TensorFlow): a matched pair is the same builder with the
`residual` flag flipped, so everything else (depth, width, initialiser, ...)
is equal by construction.
"""
from vgzoo.registry import ModelSpec, register

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
