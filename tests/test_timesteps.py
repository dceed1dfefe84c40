"""Gradient flow through time: per-timestep input gradients, read back from real event files."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo
from vgzoo.demos import sequences
from vgzoo.data.sequences import generate
from vgzoo.observe import timesteps
from vgzoo.analysis.events import read_scalars
from vgzoo.observe.step import ObservedModel

SEQ_LEN = 24


def read_events(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"histograms": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_per_timestep_norms_equal_an_independent_gradient_tape(cell, tmp_path, float64):
    keras.utils.set_random_seed(3)
    x, y = generate("adding", 16, SEQ_LEN, seed=5)
    x, y = x.astype(np.float64), y.astype(np.float64)
    model = vgzoo.create_model(cell, (SEQ_LEN, 2), 1, head="value", width=8)
    initial_weights = model.get_weights()

    writer = tf.summary.create_file_writer(str(tmp_path))
    # A global clip far below the gradient's norm: what is recorded must be the norm before it.
    observed = ObservedModel(model, writer, hist_every=1)
    observed.compile(optimizer=keras.optimizers.SGD(0.1, global_clipnorm=1e-3), loss="mse", jit_compile=False)
    observed.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    writer.close()

    reference = vgzoo.create_model(cell, (SEQ_LEN, 2), 1, head="value", width=8)
    reference.set_weights(initial_weights)
    inputs = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        loss = keras.losses.MeanSquaredError()(y, reference(inputs, training=True))
    expected = np.linalg.norm(tape.gradient(loss, inputs).numpy(), axis=-1).mean(axis=0)
    weight_gradients = tape.gradient(loss, reference.trainable_variables)
    expected_global = np.sqrt(sum(float(tf.reduce_sum(g**2)) for g in weight_gradients))

    events = read_events(tmp_path)
    recorded = events.Histograms(timesteps.HISTOGRAM_TAG)
    assert [event.step for event in recorded] == [0]
    histogram = recorded[0].histogram_value
    assert histogram.num == SEQ_LEN
    np.testing.assert_allclose([histogram.min, histogram.max, histogram.sum],
                               [expected.min(), expected.max(), expected.sum()], rtol=1e-5)
    reach = dict(read_scalars(tmp_path, "grad_reach"))
    np.testing.assert_allclose(reach[0], np.log10(expected[0] / expected[-1]), rtol=1e-4, atol=1e-6)
    global_norm = dict(read_scalars(tmp_path, "global_grad_norm"))[0]
    assert global_norm > 100 * 1e-3
    np.testing.assert_allclose(global_norm, expected_global, rtol=1e-5)


def test_a_sequence_run_writes_histogram_heatmap_and_reach(tmp_path):
    result = vgzoo.train(
        "gru", dataset="adding", seq_len=SEQ_LEN, width=8, batch_size=16, epochs=2,
        steps_per_epoch=4, hist_every=2, optimizer="adam", global_clipnorm=1.0,
        logdir=tmp_path, verbose=0,
    )
    assert result.run_dir.parent == tmp_path / "adding" / "gru"
    events = read_events(result.run_dir / "train")
    steps = [event.step for event in events.Histograms(timesteps.HISTOGRAM_TAG)]
    assert steps == [0, 2, 4, 6]
    assert [step for step, _ in read_scalars(result.run_dir / "train", "grad_reach")] == [0, 2, 4, 6]
    heatmaps = events.Tensors("grad_through_time/heatmap")
    assert [event.step for event in heatmaps] == [1]  # a fit of seconds: its last epoch's picture
    assert heatmaps[-1].tensor_proto.string_val[2].startswith(b"\x89PNG")
    assert "validation" in {path.name for path in result.run_dir.iterdir()}


def test_the_sequence_demo_prints_a_row_per_model(tmp_path):
    printed = []
    budget = sequences.SequenceDemoBudget(seq_len=12, width=8, steps_per_epoch=3, epochs=2, hist_every=2)
    rows = sequences.run_sequence_demo(tmp_path, budget, cells=["rnn", "gru"], print_fn=printed.append,
                                       published=False)["live"]
    assert [row["model"] for row in rows] == ["rnn", "gru"]
    for row in rows:
        assert row["parameters"] == vgzoo.create_model(row["model"], (12, 2), 1, head="value", width=8).count_params()
        assert np.isfinite([row["val_loss"], row["grad_reach_start"], row["grad_reach_end"]]).all()
    output = "\n".join(printed)
    assert "baseline" in output and f"{1 / 6:.4f}" in output
    assert {path.name for path in (tmp_path / "adding").iterdir()} == {"rnn", "gru"}
