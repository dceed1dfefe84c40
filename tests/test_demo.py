"""The offline demo: gradient flow at initialisation; the sequence group's checkpoints and a live run."""
import json
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vgzoo.data.sequences import baseline
from vgzoo.demos import initial, sequences
from vgzoo.pretrained import manifest
from vgzoo.training import runs

SIGMOID_MLP_PAIR = tuple(row for row in initial.DEMO_MODELS if row[0] in ("mlp20-sigmoid", "resmlp20-sigmoid"))


def test_sigmoid_mlp_vanishes_and_its_residual_partner_does_not(tmp_path):
    printed = []
    rows = initial.run_demo(logdir=tmp_path, batch_size=32, models=SIGMOID_MLP_PAIR, print_fn=printed.append)
    plain, residual = rows
    assert plain["first_layer"] == residual["first_layer"] == "stem_dense"
    assert plain["last_layer"] == residual["last_layer"] == "predictions"
    assert plain["ratio"] < 1e-4 < 1e-2 < residual["ratio"]
    output = "\n".join(printed)
    assert "mlp20-sigmoid" in output and "make tensorboard" in output

    run_dir = next((tmp_path / "demo" / "gradients-at-init").iterdir())
    events = EventAccumulator(str(run_dir / "resmlp20-sigmoid"), size_guidance={"histograms": 0})
    events.Reload()
    histogram_tags = events.Tags()["histograms"]
    assert "gradients/stem_dense/kernel" in histogram_tags
    assert "gradients/predictions/kernel" in histogram_tags
    assert "grad_norm/10_block10_dense" in events.Tags()["tensors"]  # depth-indexed, so cards sort by depth


def test_the_demo_covers_the_pairs_the_readme_promises():
    labels = [label for label, _, _ in initial.DEMO_MODELS]
    assert labels[:6] == [
        "plain56", "resnet56", "mlp20-sigmoid", "resmlp20-sigmoid", "mlp20-sigmoid-bn", "resmlp20-sigmoid-bn",
    ]
    assert len(labels) % 2 == 0


MEASURE_CHECKPOINTS = """
import json
from vgzoo.demos import checkpoints
rows = checkpoints.run_checkpoint_demo(["rnn", "irnn", "lstm", "transformer"])
print(json.dumps(rows))
"""


@pytest.fixture(scope="module")
def measured():
    """The checkpoint part as `vgzoo demo` runs it, in a process of its own to read its stderr."""
    finished = subprocess.run([sys.executable, "-c", MEASURE_CHECKPOINTS], capture_output=True,
                              text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    *printed, rows = finished.stdout.strip().splitlines()
    return json.loads(rows), "\n".join(printed), finished.stderr


def test_the_published_checkpoints_show_gating_and_attention_reaching_back(measured):
    rows, printed, _ = measured
    by_model = {row["model"]: row for row in rows}
    assert list(by_model) == ["rnn", "irnn", "lstm (chrono)", "transformer"]
    for row in rows:
        entry = manifest.find_entry(row["model"].split()[0], "adding", 200)
        assert row["test_loss"] == pytest.approx(entry["metrics"]["test_loss"], abs=entry["tolerance"])
    task_baseline = baseline("adding", 200)
    rnn, lstm, transformer = by_model["rnn"], by_model["lstm (chrono)"], by_model["transformer"]
    assert rnn["test_loss"] > 0.9 * task_baseline, "the tanh RNN stays at the baseline"
    for solved in (by_model["irnn"], lstm, transformer):
        assert solved["test_loss"] < sequences.SOLVED * task_baseline
        assert solved["reach_trained"] > rnn["reach_trained"] + 10  # orders of magnitude
    assert rnn["reach_trained"] < rnn["reach_initial"] - 10, "training made the RNN's gradient vanish"
    assert "grad_reach initial" in printed and "transformer" in printed


def test_the_checkpoint_part_prints_no_tensorflow_complaints(measured):
    _, _, stderr = measured
    complaints = [line for line in stderr.splitlines()
                  if any(word in line for word in ("tfg_optimizer", "remapper", "meta_optimizer",
                                                   "empty op name", "retracing"))]
    assert complaints == []


def test_the_live_run_trains_the_lstm_as_published(tmp_path):
    budget = sequences.SequenceDemoBudget(seq_len=12, width=8, steps_per_epoch=3, epochs=1, hist_every=2)
    printed = []
    rows = sequences.run_live_demo(tmp_path, budget, cells=("lstm",), print_fn=printed.append)
    assert [row["model"] for row in rows] == ["lstm (chrono)"]
    assert runs.read_config(rows[0]["run_dir"])["model"]["arguments"]["chrono"] is True
    assert "lstm (chrono)" in "\n".join(printed)


def test_the_story_is_computed_from_the_rows():
    rows = [{"model": "rnn", "loss": 0.17, "reach": -25.25}, {"model": "gru", "loss": 0.0003, "reach": -0.91},
            {"model": "lstm", "loss": 0.02, "reach": -0.3}]
    told = sequences.story(rows, "loss", "reach", 1 / 6)
    assert told == ("Solved (MSE under a fifth of the baseline 0.167): gru, lstm; their gradient at the first "
                    "timestep is within 10^0.9 of the last's. Not solved: rnn (MSE 0.17); its gradient at the "
                    "first timestep is 10^-25.2 of the last's.")
