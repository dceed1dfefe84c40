"""The observed train step records exactly the gradients it applies."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo
from vgzoo.observe import summaries
from vgzoo.observe.step import ObservedModel


def read_events(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"histograms": 0, "scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalar_values(accumulator, tag):
    """Scalars written by tf.summary.scalar in TF2 are stored as tensors."""
    return {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)}


def _observe_one_step(model, images, labels, logdir, learning_rate=0.05):
    writer = tf.summary.create_file_writer(str(logdir))
    every_layer = [layer.name for layer in model.layers]
    observed = ObservedModel(model, writer, hist_every=1, histogram_layers=every_layer)
    observed.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    observed.fit(images, labels, batch_size=len(images), epochs=1, shuffle=False, verbose=0)
    writer.close()


@pytest.mark.parametrize("name", ["resnet20", "mlp10"])
def test_recorded_histograms_equal_an_independent_gradient_tape(name, tmp_path, float64):
    keras.utils.set_random_seed(7)
    images = np.random.default_rng(0).random((32, 28, 28, 1))
    labels = np.random.default_rng(1).integers(0, 10, 32)
    model = vgzoo.create_model(name, (28, 28, 1), 10, activation="sigmoid")
    assert {w.dtype for w in model.weights} == {"float64"}
    initial_weights = model.get_weights()
    initial_trainable = [variable.numpy() for variable in model.trainable_variables]

    _observe_one_step(model, images, labels, tmp_path)
    assert not np.allclose(model.get_weights()[0], initial_weights[0]), "the step applied nothing"

    reference = vgzoo.create_model(name, (28, 28, 1), 10, activation="sigmoid")
    reference.set_weights(initial_weights)
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy()(labels, reference(images, training=True))
    expected = tape.gradient(loss, reference.trainable_variables)

    events = read_events(tmp_path)
    gradient_tags = [tag for tag in events.Tags()["histograms"] if tag.startswith("gradients/")]
    assert len(gradient_tags) == len(reference.trainable_variables)
    for variable, gradient in zip(reference.trainable_variables, expected):
        recorded = events.Histograms(f"gradients/{variable.path}")
        assert [event.step for event in recorded] == [0]
        histogram = recorded[0].histogram_value
        values = gradient.numpy().ravel().astype(np.float64)
        assert histogram.num == values.size
        np.testing.assert_allclose(histogram.min, values.min(), rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(histogram.max, values.max(), rtol=1e-5, atol=1e-12)
        # A sum can cancel to near zero, so it is compared relative to the sum of magnitudes.
        assert abs(histogram.sum - values.sum()) <= 1e-5 * np.abs(values).sum() + 1e-12
    # The step's weight histograms are of the weights its gradients were taken at.
    for variable, initial in zip(reference.trainable_variables, initial_trainable):
        recorded = events.Histograms(f"weights/{variable.path}")
        assert [event.step for event in recorded] == [0]
        histogram = recorded[0].histogram_value
        assert histogram.num == initial.size
        np.testing.assert_allclose([histogram.min, histogram.max], [initial.min(), initial.max()], rtol=1e-6)
        assert abs(histogram.sum - initial.sum()) <= 1e-6 * np.abs(initial).sum() + 1e-12
    norms = summaries.layer_norms(reference.trainable_variables, expected)
    for depth, (layer, norm) in enumerate(norms.items()):  # tagged with the layer's depth index
        recorded_norm = scalar_values(events, f"grad_norm/{depth:02d}_{layer}")[0]
        np.testing.assert_allclose(recorded_norm, float(norm), rtol=1e-5)


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_histograms_follow_the_cadence(tmp_path, steps_per_execution):
    """One step at a time, a recorded and a quiet step are compiled apart; several, one decides in the graph."""
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=16)
    writer = tf.summary.create_file_writer(str(tmp_path))
    observed = ObservedModel(model, writer, hist_every=3)
    observed.compile(
        optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=False,
        steps_per_execution=steps_per_execution,
    )
    images = np.random.default_rng(0).random((7 * 4, 28, 28, 1)).astype(np.float32)
    labels = np.zeros(7 * 4, np.int64)
    observed.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    writer.close()
    events = read_events(tmp_path)
    steps = [event.step for event in events.Histograms("gradients/stem_dense/kernel")]
    assert steps == [0, 3, 6]
    for tag in ("activations/stem_dense", "weights/stem_dense/kernel"):
        assert [event.step for event in events.Histograms(tag)] == [0, 3, 6], tag
    for tag in ("grad_norm/00_stem_dense", "update_ratio/00_stem_dense", "global_grad_norm"):
        assert sorted(scalar_values(events, tag)) == [0, 3, 6], tag
    assert all(value > 0 for value in scalar_values(events, "update_ratio/00_stem_dense").values())
    assert sorted(scalar_values(events, "step_loss")) == list(range(7))


def test_weights_saved_from_the_observed_model_load_into_a_plain_build(tmp_path):
    model = vgzoo.create_model("resnet20", (28, 28, 1), 10)
    observed = ObservedModel(model, tf.summary.create_noop_writer(), hist_every=1)
    observed.save_weights(tmp_path / "run.weights.h5")
    rebuilt = vgzoo.create_model("resnet20", (28, 28, 1), 10)
    rebuilt.load_weights(tmp_path / "run.weights.h5")
    for a, b in zip(model.weights, rebuilt.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
