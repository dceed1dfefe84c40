"""Per-layer tag names carry a zero-padded depth index, so they sort as the layers stand."""
from vgzoo.observe import tags


def test_the_index_is_padded_to_one_width_and_sorts_as_text():
    layers = [f"block{i}" for i in range(1, 12)] + ["predictions"]
    named = tags.layer_tags("grad_norm", ["stem"] + layers)
    assert named["stem"] == "grad_norm/00_stem" and named["predictions"] == "grad_norm/12_predictions"
    assert sorted(named.values()) == list(named.values()), "text order is depth order"
    wide = tags.numbered(f"layer{i}" for i in range(120))
    assert wide["layer0"] == "000_layer0" and sorted(wide.values()) == list(wide.values())


def test_readers_get_depth_order_and_bare_names_back():
    written = ["10_predictions", "02_block1_dense", "00_stem_dense", "01_stem_bn", "03_recurrent1/cell"]
    assert tags.in_depth_order(written) == [
        ("00_stem_dense", "stem_dense"), ("01_stem_bn", "stem_bn"), ("02_block1_dense", "block1_dense"),
        ("03_recurrent1/cell", "recurrent1/cell"), ("10_predictions", "predictions")]
    # Runs recorded before the index keep the order their tags were written in.
    older = ["stem_dense", "block1_dense", "predictions"]
    assert tags.in_depth_order(older) == [(name, name) for name in older]


def test_normalisation_layers_are_told_apart_by_name():
    assert all(map(tags.is_norm_layer, ["stem_bn", "stage1_block1_2_bn", "block1_mlp_norm", "final_norm"]))
    assert not any(map(tags.is_norm_layer, ["stem_conv", "predictions", "recurrent1/cell", "input_proj"]))
