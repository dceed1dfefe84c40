"""Activations, update ratios, dead units, layer selection and the flow picture, read back from events."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import vgzoo
from vgzoo.cli.commands import main
from vgzoo.observe import activations, selection
from vgzoo.observe.step import ObservedModel

from test_step import read_events, scalar_values as scalars


def _one_sgd_step(model, images, labels, logdir, learning_rate=0.1):
    """One plain-SGD step (no momentum, no decay), every layer recorded."""
    writer = tf.summary.create_file_writer(str(logdir))
    observed = ObservedModel(model, writer, hist_every=1, histogram_layers=selection.layer_names(model))
    observed.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.0),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    observed.fit(images, labels, batch_size=len(images), epochs=1, shuffle=False, verbose=0)
    writer.close()
    return read_events(logdir)


def _batch(size=24, seed=0):
    random = np.random.default_rng(seed)
    return random.random((size, 28, 28, 1), dtype=np.float32), random.integers(0, 10, size)


def test_one_step_records_activations_update_ratios_and_dead_units(tmp_path):
    keras.utils.set_random_seed(3)
    images, labels = _batch()
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=16)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    events = _one_sgd_step(model, images, labels, tmp_path)

    for layer in model.layers[1:]:
        (histogram,) = events.Histograms(f"activations/{layer.name}")
        assert histogram.step == 0
        outputs = len(images) * np.prod(layer.output.shape[1:])
        assert histogram.histogram_value.num == min(outputs, activations.SAMPLED_VALUES)

    layers = selection.layer_names(model)
    weight_layers = [name for name in layers if model.get_layer(name).trainable_weights]
    for depth, name in enumerate(weight_layers):
        variables = model.get_layer(name).trainable_weights
        moved = np.sqrt(sum(np.sum((v.numpy() - before[v.path]) ** 2) for v in variables))
        size = np.sqrt(sum(np.sum(before[v.path] ** 2) for v in variables))
        recorded = scalars(events, f"update_ratio/{depth:02d}_{name}")
        assert list(recorded) == [0]
        assert recorded[0] > 0
        np.testing.assert_allclose(recorded[0], moved / size, rtol=1e-4)

    relu_layers = [f"{depth:02d}_{name}" for depth, name in enumerate(name for name in layers if name.endswith("_act"))]
    assert relu_layers and {f"dead_units/{name}" for name in relu_layers} <= set(events.Tags()["tensors"])
    for name in relu_layers:
        assert 0.0 <= scalars(events, f"dead_units/{name}")[0] <= 1.0
    assert scalars(events, "dead_units/00_block1_pre_act")[0] < 1.0, "alive unless forced dead (below)"


def test_a_flatten_is_histogrammed_only_where_the_layer_before_it_is_not(tmp_path):
    """Flatten rearranges its input's values: after a watched conv, its histogram would be the conv's again."""
    images, labels = _batch(size=8)
    layers = keras.layers
    after_conv = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu", name="conv"),
                                   layers.Flatten(name="flat"), layers.Dense(10, activation="softmax", name="out")])
    first = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(name="flat"),
                              layers.Dense(10, activation="softmax", name="out")])
    recorded = {}
    for name, model in (("after_conv", after_conv), ("first", first)):
        events = _one_sgd_step(model, images, labels, tmp_path / name)
        recorded[name] = {tag for tag in events.Tags()["histograms"] if tag.startswith("activations/")}
    assert recorded == {"after_conv": {"activations/conv", "activations/out"},
                        "first": {"activations/flat", "activations/out"}}


def test_a_large_activation_is_histogrammed_from_a_uniform_sample(tmp_path):
    images, labels = _batch(size=24)  # flattened: 24 x 784 = 18,816 values, uniform on [0, 1)
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=16)
    events = _one_sgd_step(model, images, labels, tmp_path)
    (histogram,) = events.Histograms(f"activations/{model.layers[1].name}")
    sampled = histogram.histogram_value
    assert sampled.num == activations.SAMPLED_VALUES < images.size
    assert images.min() <= sampled.min < 0.01 and 0.99 < sampled.max <= images.max()
    # A uniform sample of 4,096 estimates the mean to about 0.005.
    assert abs(sampled.sum / sampled.num - images.mean()) < 0.02


def test_a_layer_forced_dead_reads_one(tmp_path):
    images, labels = _batch()
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=16)
    stem = model.get_layer("stem_dense")
    stem.bias.assign(np.full(stem.bias.shape, -1e3, np.float32))  # every pre-activation < 0
    events = _one_sgd_step(model, images, labels, tmp_path)
    assert scalars(events, "dead_units/00_block1_pre_act") == {0: 1.0}


def test_a_unit_is_dead_only_if_silent_for_every_example_and_position():
    outputs = np.zeros((3, 5, 4), np.float32)  # batch x positions x units
    outputs[..., 0] = -1.0  # dead
    outputs[2, 4, 1] = 0.5  # alive at one position of one example
    outputs[..., 3] = np.random.default_rng(0).random((3, 5))  # alive everywhere
    assert float(activations.dead_fraction(tf.constant(outputs))) == 0.5  # units 0 and 2
    outputs[..., 0] = np.nan
    assert float(activations.dead_fraction(tf.constant(outputs))) == 0.25, "NaN is not silence"


@pytest.fixture(scope="module")
def filtered_run(tmp_path_factory):
    random = np.random.default_rng(0)
    images = random.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    labels = random.integers(0, 10, 64)
    return vgzoo.train(
        "mlp10", data=(images, labels), width=16, epochs=1, batch_size=16, hist_every=2,
        validation_split=0.25, log_layers="stem*,predictions", logdir=tmp_path_factory.mktemp("logs"),
        verbose=0,
    )


def test_log_layers_filters_histograms_but_not_scalars(filtered_run):
    events = read_events(filtered_run.run_dir / "train")
    layers = {tag.split("/")[1] for tag in events.Tags()["histograms"]}
    assert layers == {"stem_dense", "predictions"}
    for tag in ("gradients/stem_dense/kernel", "weights/predictions/bias", "activations/predictions"):
        assert tag in events.Tags()["histograms"]
    assert [event.step for event in events.Histograms("activations/stem_dense")] == [0, 2]
    tensors = events.Tags()["tensors"]
    assert {"grad_norm/04_block4_dense", "update_ratio/04_block4_dense", "dead_units/03_block4_pre_act"} <= set(tensors)


def test_plot_gradient_flow_writes_a_png_of_every_layer(filtered_run, tmp_path):
    from vgzoo.analysis.flow import read_gradient_norms

    layers, steps, rows = read_gradient_norms(filtered_run.run_dir)
    assert layers[0] == "stem_dense" and layers[-1] == "predictions" and len(layers) == 10
    assert steps == [0, 2] and all(np.isfinite(row).all() for row in rows)
    path = vgzoo.plot_gradient_flow(filtered_run.run_dir, tmp_path / "flow.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    with pytest.raises(vgzoo.VgzooError, match="no grad_norm"):
        vgzoo.plot_gradient_flow(tmp_path, tmp_path / "nothing.png")


def test_a_glob_that_matches_nothing_is_a_one_line_error(tmp_path, mnist_data_dir, capsys):
    status = main([
        "train", "mlp10", "--dataset", "mnist", "--data-split", "test", "--limit", "64",
        "--log-layers", "stem*,stage1_*", "--logdir", str(tmp_path), "--verbose", "0",
    ])
    error = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in error
    assert "'stage1_*' matches no layer of mlp10" in error and "stem_dense" in error
    assert not any(tmp_path.iterdir())


def test_the_default_keeps_resnet110_readable():
    names = selection.layer_names(vgzoo.create_model("resnet110", (32, 32, 3), 10))
    kept = selection.default_layers(names)
    for name in ("stem_conv", "stage1_block1_conv1", "stage1_block18_conv2", "stage3_block18_out_act", "predictions"):
        assert name in kept
    assert not any(name.startswith(("stage1_block2_", "stage2_block17_")) for name in kept)
    assert len(kept) < len(names) / 5


def test_sequence_models_record_activations_over_time(tmp_path):
    result = vgzoo.train(
        "irnn", dataset="adding", seq_len=6, width=8, depth=2, epochs=1, steps_per_epoch=2,
        batch_size=4, hist_every=1, log_layers="*", optimizer="adam", logdir=tmp_path, verbose=0,
    )
    events = read_events(result.run_dir / "train")
    (first, _) = events.Histograms("activations/recurrent1")
    assert first.histogram_value.num == 4 * 6 * 8  # batch x time x units
    for step, fraction in scalars(events, "dead_units/00_recurrent1").items():
        assert 0.0 <= fraction <= 1.0
    # Scalars are per variable-owning layer, like grad_norm: the cell inside the RNN layer.
    assert sorted(scalars(events, "update_ratio/01_recurrent2/cell")) == [0, 1]
