"""`vgzoo.watch` on the user's own models: the recorded step-0 gradients are the ones a tape gives."""
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

import vgzoo

RNG = np.random.default_rng(0)
IMAGES = RNG.standard_normal((16, 6, 6, 1)).astype("float32")
LABELS = RNG.integers(0, 3, 16)


def custom_loss(y_true, y_pred):
    """Not a Keras name: cross-entropy plus a penalty on confident predictions."""
    cross = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
    return cross + 0.1 * keras.ops.sum(keras.ops.square(y_pred), axis=-1)


def sequential():
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                             keras.layers.Flatten(name="flat"), keras.layers.Dense(3, activation="softmax", name="out")])


def functional():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(x))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")
        self.flat = keras.layers.Flatten(name="flat")
        self.out = keras.layers.Dense(3, activation="softmax", name="out")

    def call(self, x):
        return self.out(self.flat(self.conv(x)))


def subclassed():
    model = Subclassed()
    model(IMAGES[:1])  # built, so its variables exist
    return model


def _histograms(logdir):
    events = EventAccumulator(str(logdir / "train"), size_guidance={"histograms": 0, "tensors": 0})
    events.Reload()
    return events


def _tape_gradients(model, loss):
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(loss(LABELS, model(IMAGES, training=True)))
    return {variable.path: gradient.numpy()
            for variable, gradient in zip(model.trainable_variables, tape.gradient(value, model.trainable_variables))}


@pytest.mark.parametrize("build", [sequential, functional, subclassed], ids=["sequential", "functional", "subclassed"])
def test_step_zero_histograms_equal_an_independent_tape(build, tmp_path):
    keras.utils.set_random_seed(1)
    model = build()
    expected = _tape_gradients(model, custom_loss)  # before any update
    watched = vgzoo.watch(model, tmp_path, hist_every=2)
    watched.compile(optimizer=keras.optimizers.SGD(0.1), loss=custom_loss)
    watched.fit(IMAGES, LABELS, batch_size=16, epochs=2, verbose=0, shuffle=False)
    events = _histograms(tmp_path)
    for path, gradient in expected.items():
        (step0, *_) = events.Histograms(f"gradients/{path}")
        assert step0.step == 0
        value = step0.histogram_value
        assert value.num == gradient.size
        np.testing.assert_allclose([value.min, value.max, value.sum], [gradient.min(), gradient.max(), gradient.sum()],
                                   rtol=1e-5, atol=1e-6)
    tags = events.Tags()
    assert any(tag.startswith("weights/") for tag in tags["histograms"])
    has_activations = any(tag.startswith("activations/") for tag in tags["histograms"])
    assert has_activations == (build is not subclassed)  # subclassed: no activations, as documented
    assert "vanishing_ratio" in tags["tensors"] and any(t.startswith("grad_norm/") for t in tags["tensors"])


def test_watched_and_original_save_the_same_weights_in_the_models_format(tmp_path):
    for build in (sequential, subclassed):
        model = build()
        watched = vgzoo.watch(model, tmp_path / build.__name__)
        watched.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        watched.fit(IMAGES, LABELS, epochs=1, verbose=0)
        model.save_weights(tmp_path / "original.weights.h5")
        fresh = build()
        fresh.load_weights(tmp_path / "original.weights.h5")
        for mine, theirs in zip(fresh.get_weights(), watched.get_weights()):
            np.testing.assert_array_equal(mine, theirs)


def test_any_loss_optimizer_callbacks_validation_and_steps_per_execution(tmp_path):
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = [keras.layers.Dense(3, activation="softmax", name="cls")(x), keras.layers.Dense(1, name="reg")(x)]
    model = keras.Model(inputs, outputs)
    watched = vgzoo.watch(model, tmp_path, hist_every=1)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, 10, 0.9)
    watched.compile(optimizer=keras.optimizers.AdamW(schedule, clipnorm=1.0, gradient_accumulation_steps=2),
                    loss=["sparse_categorical_crossentropy", keras.losses.MeanSquaredError()],
                    loss_weights=[1.0, 0.5], metrics=[["accuracy"], []], steps_per_execution=2)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1)
    history = watched.fit(IMAGES, [LABELS, IMAGES.mean(axis=(1, 2, 3))], sample_weight=np.linspace(0.5, 1, 16),
                          validation_split=0.25, batch_size=4, epochs=3, verbose=0, callbacks=[stopper])
    assert "val_loss" in history.history
    steps = [event.step for event in _histograms(tmp_path).Histograms("gradients/cls/kernel")]
    assert steps[:3] == [0, 1, 2]
    assert (tmp_path / "validation").is_dir()


MIXED_PRECISION = r'''
import sys, keras, numpy as np, tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util
import vgzoo
keras.mixed_precision.set_global_policy("mixed_float16")
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).standard_normal((8, 5)).astype("float32")
y = np.random.default_rng(1).integers(0, 3, 8)
model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(3), keras.layers.Activation("softmax", dtype="float32")])
loss = keras.losses.SparseCategoricalCrossentropy()
with tf.GradientTape() as tape:
    value = loss(y, model(x, training=True))
expected = tf.linalg.global_norm(tape.gradient(value, model.trainable_variables)).numpy()
watched = vgzoo.watch(model, sys.argv[1], hist_every=1)
watched.compile(optimizer="sgd", loss=loss)
assert isinstance(watched.optimizer, keras.optimizers.LossScaleOptimizer)
watched.fit(x, y, batch_size=8, epochs=1, verbose=0)
events = EventAccumulator(sys.argv[1] + "/train", size_guidance={"tensors": 0}); events.Reload()
recorded = float(tensor_util.make_ndarray(events.Tensors("global_grad_norm")[0].tensor_proto))
scale = float(watched.optimizer.initial_scale)
print(recorded, expected, scale)
assert abs(recorded - expected) <= 2e-2 * expected, (recorded, expected)
assert scale > 1000
'''


def test_under_mixed_precision_the_recorded_gradients_are_the_unscaled_ones(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIXED_PRECISION, str(tmp_path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


MIRRORED = r'''
import sys, keras, numpy as np, tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import vgzoo
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = np.random.default_rng(0).standard_normal((16, 5)).astype("float32")
y = np.random.default_rng(1).integers(0, 3, 16)
with strategy.scope():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax", name="out")])
    watched = vgzoo.watch(model, sys.argv[1], hist_every=1)
    watched.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
watched.fit(x, y, batch_size=8, epochs=1, verbose=0)
events = EventAccumulator(sys.argv[1] + "/train", size_guidance={"histograms": 0}); events.Reload()
(tag,) = [tag for tag in events.Tags()["histograms"] if tag.startswith("gradients/") and tag.endswith("out/kernel")]
steps = [event.step for event in events.Histograms(tag)]
assert steps == [0, 1], steps
'''


def test_a_two_device_mirrored_run_records_once(tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


MIRRORED_DIVERGING = MIRRORED.split("with strategy.scope():")[0] + r'''
with strategy.scope():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    watched = vgzoo.watch(model, sys.argv[1])
    watched.compile(optimizer=keras.optimizers.SGD(1e12), loss="sparse_categorical_crossentropy")
try:
    watched.fit(x * 1e6, y, batch_size=8, epochs=20, verbose=0)
except vgzoo.VgzooError as error:
    print(error)
'''


@pytest.mark.slow
def test_a_diverging_mirrored_fit_says_the_bad_step_was_applied(tmp_path):
    # A strategy's optimizer cannot apply inside a branch, so the bad update is applied there.
    result = subprocess.run([sys.executable, "-c", MIRRORED_DIVERGING, str(tmp_path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training diverged at step" in result.stdout
    assert "the weights are holding that step's update" in result.stdout, result.stdout


def test_with_keep_finite_a_diverging_user_fit_stops_with_the_last_finite_weights(tmp_path):
    model = sequential()
    watched = vgzoo.watch(model, tmp_path, keep_finite=True)
    watched.compile(optimizer=keras.optimizers.SGD(1e12), loss="sparse_categorical_crossentropy")
    with pytest.raises(vgzoo.VgzooError, match="diverged.*the weights are the last finite ones"):
        watched.fit(IMAGES * 1e6, LABELS, epochs=20, batch_size=4, verbose=0)
    assert all(np.isfinite(weight).all() for weight in model.get_weights())


def test_by_default_a_diverging_fit_stops_just_after_the_bad_step(tmp_path):
    model = sequential()
    watched = vgzoo.watch(model, tmp_path)
    watched.compile(optimizer=keras.optimizers.SGD(1e12), loss="sparse_categorical_crossentropy")
    expected = "diverged at step [0-9]+: the gradient of layer .*the weights are holding that step's update"
    with pytest.raises(vgzoo.VgzooError, match=expected):
        watched.fit(IMAGES * 1e6, LABELS, epochs=20, batch_size=4, verbose=0)
    # The bad step's update was applied, and no step after it.
    assert not all(np.isfinite(weight).all() for weight in model.get_weights())
    step = int(watched.explosion_note_now()[0])
    assert int(watched.optimizer.iterations.numpy()) == step + 1


def test_finite_steps_train_exactly_alike_with_and_without_keep_finite(tmp_path):
    weights = []
    for keep_finite in (True, False):
        keras.utils.set_random_seed(3)
        model = sequential()
        watched = vgzoo.watch(model, tmp_path / str(keep_finite), hist_every=2, keep_finite=keep_finite)
        watched.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        watched.fit(IMAGES, LABELS, epochs=2, batch_size=4, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    assert all(np.array_equal(kept, applied) for kept, applied in zip(*weights))
    keras.utils.set_random_seed(3)
    assert not np.array_equal(weights[0][0], sequential().get_weights()[0]), "the fits trained"


@pytest.mark.parametrize("interval, drawn", [(3600.0, [3]), (0.0, [0, 1, 2, 3])])
def test_pictures_of_short_epochs_are_drawn_at_most_once_an_interval(interval, drawn, tmp_path, monkeypatch):
    from vgzoo.observe import epoch

    monkeypatch.setattr(epoch, "PICTURE_INTERVAL_S", interval)
    watched = vgzoo.watch(sequential(), tmp_path, hist_every=1)
    watched.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    watched.fit(IMAGES, LABELS, batch_size=8, epochs=4, verbose=0)
    watched.recording.value.close()
    events = _histograms(tmp_path)
    assert [event.step for event in events.Tensors("gradient_flow/by_layer")] == drawn
    assert len(events.Tensors("global_grad_norm")) == 8, "every step is recorded, drawn or not"
