"""The registry: names, wildcards, pairs and knob validation (no TensorFlow)."""
import subprocess
import sys

import pytest

import vgzoo
from vgzoo.architectures import factory, registry

PAPER_DEPTHS = (20, 32, 44, 56, 110)


def test_wildcard_listing():
    assert vgzoo.list_models("resnet*") == [f"resnet{d}" for d in PAPER_DEPTHS]
    assert vgzoo.list_models("plain1?0") == ["plain110"]
    assert set(vgzoo.list_models("*mlp20")) == {"mlp20", "resmlp20"}
    assert vgzoo.list_models("nothing*") == []
    assert len(vgzoo.list_models()) == len(set(vgzoo.list_models()))


@pytest.mark.parametrize("name", registry.list_models())
def test_partner_differs_only_in_the_residual_flag(name):
    spec = registry.get_spec(name)
    partner = registry.get_spec(spec.partner)
    # A pair points both ways; a group's members point at its plain model,
    # which points back at one of them. Cell-specific knobs may be extra.
    assert partner.partner == name or registry.get_spec(partner.partner).partner == spec.partner
    assert spec.builder == partner.builder and spec.family == partner.family
    mine, theirs = set(spec.knobs), set(partner.knobs)
    assert mine <= theirs or theirs <= mine
    assert spec.varies == partner.varies
    differing = {
        key for key in spec.defaults if spec.defaults[key] != partner.defaults.get(key)
    }
    assert differing == {spec.varies}


def test_pairs_list_each_pair_once():
    found = registry.pairs()
    assert ("plain56", "resnet56") in found
    assert len({frozenset(pair) for pair in found}) == len(found)
    names = {name for pair in found for name in pair}
    assert names == set(registry.list_models())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: registry.get_spec("resnt56"), "Did you mean 'resnet56'"),
        (lambda: registry.get_spec("resnet56").resolve({"activaton": "relu"}), "Did you mean 'activation'"),
        (lambda: registry.get_spec("resnet56").resolve({"activation": "sigmod"}), "Did you mean 'sigmoid'"),
        (lambda: registry.get_spec("resnet56").resolve({"width": 8}), "knob 'width' for resnet56"),
        (lambda: registry.get_spec("mlp20").resolve({"depth": 0}), "positive integer"),
        (lambda: registry.get_spec("mlp20").resolve({"batch_norm": "maybe"}), "true or false"),
        (lambda: factory.create_model("mlp10", input_shape=(28, 28)), "input_shape"),
        (lambda: factory.create_model("mlp10", num_classes=1), "num_classes"),
    ],
)
def test_bad_names_and_knobs_are_one_line_errors(call, message):
    with pytest.raises(vgzoo.VgzooError) as error:
        call()
    text = str(error.value)
    assert message in text and "\n" not in text


def test_string_knobs_from_the_command_line_are_parsed():
    resolved = registry.get_spec("resmlp20").resolve({"batch_norm": "true", "depth": "10"})
    assert resolved["batch_norm"] is True and resolved["depth"] == 10


def test_listing_does_not_import_tensorflow():
    code = (
        "import sys, vgzoo.cli; vgzoo.cli.main(['list']); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "resnet110" in result.stdout and "plain110" in result.stdout
