"""A run whose gradients explode stops cleanly, names the layer and the step, keeps good weights."""
import os
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo
from vgzoo.errors import TrainingDiverged


def test_exploding_run_stops_with_the_layer_and_the_step(tmp_path):
    random = np.random.default_rng(0)
    images = random.integers(0, 256, (512, 28, 28, 1), dtype=np.uint8)
    labels = random.integers(0, 10, 512)
    with pytest.raises(TrainingDiverged) as error:
        vgzoo.train(
            "mlp10", data=(images, labels), learning_rate=1e4, epochs=3, batch_size=32,
            hist_every=1, validation_split=0.25, logdir=tmp_path, verbose=0,
        )
    message = str(error.value)
    assert "training diverged at step" in message and "layer stem_dense" in message
    assert "\n" not in message
    step = int(message.split("at step ")[1].split(":")[0])

    (run_dir,) = (tmp_path / "custom" / "mlp10").iterdir()
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10)
    model.load_weights(run_dir / "last.weights.h5")
    assert all(np.isfinite(w.numpy()).all() for w in model.weights), "the last good weights"

    events = EventAccumulator(str(run_dir / "train"), size_guidance={"tensors": 0})
    events.Reload()
    recorded = [event.step for event in events.Tensors("step_loss")]
    assert recorded == list(range(step + 1)), "events up to the bad step were written"
    assert not (run_dir / "state.json").exists() or '"finished": true' not in (run_dir / "state.json").read_text()


def test_the_command_exits_non_zero_with_one_line(tmp_path, mnist_data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "vgzoo", "train", "mlp10", "--dataset", "mnist", "--data-split", "test",
         "--limit", "512", "--lr", "10000", "--epochs", "2", "--batch-size", "32", "--logdir", str(tmp_path)],
        capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=300,
    )
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.startswith("vgzoo:")]
    assert len(lines) == 1 and "training diverged at step" in lines[0]
    assert "Traceback" not in result.stderr


def _guarded_step(gradients, loss):
    """Runs `apply_if_finite` in a compiled step; returns (applied, note, counter after)."""
    import tensorflow as tf

    from vgzoo.observe import explosion

    counter = tf.Variable(0)
    note = tf.Variable([explosion.NO_EXPLOSION] * 2, dtype=tf.int64)

    @tf.function
    def step():
        return explosion.apply_if_finite(
            lambda: counter.assign_add(1), [tf.constant(g, tf.float32) for g in gradients],
            tf.constant(loss, tf.float32), tf.constant(7, tf.int64), note,
        )

    return bool(step()), note.numpy().tolist(), int(counter.numpy())


def test_finite_gradients_whose_sum_overflows_are_applied():
    # Each gradient is finite; their sum is not in float32, so the cheap check
    # fails and the exact one must let the step through.
    assert _guarded_step([[3e38, 3e38], [1.0]], 0.5) == (True, [-1, -1], 1)


def test_a_nan_gradient_skips_the_update_and_names_the_first_bad_variable():
    assert _guarded_step([[1.0], [np.nan, 2.0], [np.inf]], 0.5) == (False, [7, 1], 0)


def test_a_bad_loss_with_finite_gradients_skips_the_update():
    assert _guarded_step([[1.0], [2.0]], np.inf) == (False, [7, -1], 0)


def test_infinities_that_cancel_in_the_sum_are_still_caught():
    # inf + -inf is NaN: not finite, so the exact check runs and finds both.
    assert _guarded_step([[np.inf], [-np.inf]], 0.5) == (False, [7, 0], 0)


def _step_noted_beside(gradients, loss):
    """Runs an update and `note_beside_update` in a compiled step; returns (note, counter after)."""
    import tensorflow as tf

    from vgzoo.observe import explosion

    counter = tf.Variable(0)
    note = tf.Variable([explosion.NO_EXPLOSION] * 2, dtype=tf.int64)

    @tf.function
    def step():
        counter.assign_add(1)
        explosion.note_beside_update([tf.constant(g, tf.float32) for g in gradients],
                                     tf.constant(loss, tf.float32), tf.constant(7, tf.int64), note)

    step()
    return note.numpy().tolist(), int(counter.numpy())


@pytest.mark.parametrize("gradients, loss, note", [
    ([[1.0], [2.0]], 0.5, [-1, -1]),
    ([[3e38, 3e38], [1.0]], 0.5, [-1, -1]),  # finite, though their sum overflows
    ([[1.0], [np.nan, 2.0], [np.inf]], 0.5, [7, 1]),
    ([[1.0], [2.0]], np.inf, [7, -1]),
    ([[np.inf], [-np.inf]], 0.5, [7, 0]),
])
def test_the_check_beside_the_update_notes_the_same_and_never_holds_it_back(gradients, loss, note):
    assert _step_noted_beside(gradients, loss) == (note, 1)
