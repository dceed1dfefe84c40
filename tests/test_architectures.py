"""Every registered model builds for MNIST and CIFAR inputs; ResNets match the paper."""
import keras
import numpy as np
import pytest

import vgzoo
from vgzoo.architectures import registry

# He et al. 2016, Table 6 (CIFAR-10): parameters of ResNet-20/32/44/56/110.
PAPER_RESNET_PARAMETERS = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}
INPUT_SHAPES = {"mnist": ((28, 28, 1), 10), "cifar10": ((32, 32, 3), 10), "cifar100": ((32, 32, 3), 100)}


@pytest.mark.parametrize("name", [n for n in registry.list_models() if registry.get_spec(n).input_rank == 3])
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_model_builds_for_both_input_shapes(name, dataset):
    input_shape, num_classes = INPUT_SHAPES[dataset]
    model = vgzoo.create_model(name, input_shape=input_shape, num_classes=num_classes)
    batch = np.zeros((2, *input_shape), dtype="float32")
    probabilities = model(batch, training=False)
    assert tuple(probabilities.shape) == (2, num_classes)
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("depth, paper", sorted(PAPER_RESNET_PARAMETERS.items()))
def test_resnet_parameter_counts_match_the_paper(depth, paper):
    model = vgzoo.create_model(f"resnet{depth}", input_shape=(32, 32, 3), num_classes=10)
    assert abs(model.count_params() - paper) / paper < 0.05


def _layer_names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("plain, residual", [("plain20", "resnet20"), ("mlp10", "resmlp10")])
@pytest.mark.parametrize("preactivation", [False, True])
def test_a_pair_has_the_same_weights_and_differs_only_by_the_additions(plain, residual, preactivation):
    keras.utils.set_random_seed(3)
    plain_model = vgzoo.create_model(plain, (32, 32, 3), 10, preactivation=preactivation)
    keras.utils.set_random_seed(3)
    residual_model = vgzoo.create_model(residual, (32, 32, 3), 10, preactivation=preactivation)
    assert [v.path for v in plain_model.weights] == [v.path for v in residual_model.weights]
    for a, b in zip(plain_model.weights, residual_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    extra = set(_layer_names(residual_model)) - set(_layer_names(plain_model))
    assert extra and all(name.endswith(("_add", "_shortcut")) for name in extra)


@pytest.mark.parametrize(
    "knobs",
    [
        {"activation": "sigmoid", "batch_norm": False, "initializer": "naive"},
        {"activation": "leaky_relu", "initializer": "glorot_uniform"},
        {"activation": "gelu", "preactivation": True},
        {"activation": "tanh", "depth": 8},
    ],
)
def test_knobs_change_the_built_model(knobs):
    model = vgzoo.create_model("resnet20", (28, 28, 1), 10, **knobs)
    layer_types = {type(layer).__name__ for layer in model.layers}
    assert ("BatchNormalization" in layer_types) == knobs.get("batch_norm", True)
    if "depth" in knobs:
        convolutions = [l for l in model.layers if type(l).__name__ == "Conv2D"]
        assert len(convolutions) == knobs["depth"] - 1


def test_naive_initialisation_is_a_small_normal():
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, initializer="naive")
    kernel = model.get_layer("block1_dense").kernel.numpy()
    assert abs(kernel.std() - 0.01) < 0.001


def test_depth_must_be_six_n_plus_two():
    with pytest.raises(vgzoo.VgzooError, match="6n\\+2"):
        vgzoo.create_model("resnet20", depth=21)


def test_layer_names_are_deterministic():
    names = _layer_names(vgzoo.create_model("resnet20"))
    assert "stage2_block1_shortcut" in names and "stage3_block3_conv2" in names
    assert names == _layer_names(vgzoo.create_model("resnet20"))
