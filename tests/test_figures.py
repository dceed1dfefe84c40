"""The pictures: laid out for TensorBoard's 350-px image card, batch norm apart, shared colour scales."""
import io
import struct

import matplotlib.image
import numpy as np
import pytest

import vgzoo
from vgzoo.observe import figures
from vgzoo.observe.summaries import layers_in_order

CARD_PIXELS = 350


def _size(png):
    return struct.unpack(">II", png[16:24])  # IHDR: width, height


def _pixels(png):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_the_card_pictures_are_drawn_at_twice_the_card_width():
    flow = figures.gradient_flow_png(["stem_conv", "stem_bn", "predictions"], [0, 5],
                                     [[1.0, 3.0, 0.1], [2.0, 3.0, 0.2]], title="resnet20")
    heat = figures.heatmap_png([0, 5], [np.full(20, 1e-3), np.full(20, 1e-2)], title="lstm")
    for png in (flow, heat):
        width, height = _size(png)
        assert width == 2 * CARD_PIXELS and 1.2 < width / height < 1.6
    # Fonts of 7 to 9 points at the card's 100 px an inch: 10 to 12.5 px once scaled to the card.
    assert figures.TICK * 100 / 72 > 9.5 and figures.TITLE * 100 / 72 < 13
    assert figures.CARD_INCHES * figures.CARD_DPI == 2 * CARD_PIXELS


def test_weight_layers_are_the_line_and_batch_norm_sits_between_them():
    model = vgzoo.create_model("resnet20", (28, 28, 1), 10, depth=8)
    layers = layers_in_order(model.trainable_variables)
    positions = figures.depth_positions(layers)
    weights = [layer for layer, x in zip(layers, positions) if x.is_integer()]
    assert weights == [layer for layer in layers if not layer.endswith("_bn")]
    assert list(positions[[layers.index(name) for name in weights]]) == list(range(1, len(weights) + 1))
    assert positions[layers.index("stem_bn")] == 1.5  # after stem_conv, before the first block
    assert positions[layers.index("stage1_block1_2_bn")] == 3.5


def test_the_same_gradient_has_the_same_colour_on_a_shared_scale():
    steps = [0, 10]
    weak, strong = [np.full(30, 1e-3)] * 2, [np.full(30, 1e-1)] * 2
    low = min(figures.log_range(weak)[0], figures.log_range(strong)[0])
    high = max(figures.log_range(weak)[1], figures.log_range(strong)[1])
    assert (low, high) == pytest.approx((-3.0, -1.0), abs=1e-5)

    def centre(png):
        pixels = _pixels(png)
        return pixels[pixels.shape[0] // 2, int(pixels.shape[1] * 0.4), :3]

    shared = [centre(figures.heatmap_png(steps, rows, title="x", scale=(low, high))) for rows in (weak, strong)]
    alone = [centre(figures.heatmap_png(steps, rows, title="x")) for rows in (weak, strong)]
    assert not np.allclose(*shared), "on one scale a 100-fold gradient is another colour"
    np.testing.assert_allclose(*alone)  # each on its own scale, both sit at its bottom


def test_a_watched_sequence_model_titles_both_pictures_with_its_name(tmp_path):
    model = vgzoo.create_model("lstm", (6, 2), 1, head="value", width=4)
    watched = vgzoo.watch(model, logdir=tmp_path, hist_every=1)
    recording = watched.recording.value
    pictures = [callback for callback in recording.callbacks(watched, validating=False)
                if hasattr(callback, "drawing")]
    try:
        assert {callback.drawing: callback.options["title"] for callback in pictures} == {
            "gradient_flow_png": "lstm", "heatmap_png": "lstm"}
    finally:
        recording.finish()
        recording.close()
