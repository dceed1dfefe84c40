"""Comparing a pair: real tiny runs, a report read back from their event files, real PNGs."""
import re

import matplotlib.image
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

import vgzoo
from vgzoo.cli import commands as cli
from vgzoo.analysis.compare import compare

TINY_SEQUENCE = dict(dataset="adding", seq_len=20, width=8, epochs=2, steps_per_epoch=5,
                     batch_size=16, optimizer="adam", hist_every=2, verbose=0)


def recorded(run_dir, tag, folder="train"):
    events = EventAccumulator(str(run_dir / folder), size_guidance={"tensors": 0})
    events.Reload()
    return [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]


def table_rows(text):
    return {row[0]: row for row in (
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model"))}


def assert_real_png(path):
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and pixels.std() > 0


@pytest.fixture(scope="module")
def sequence_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    path = compare(["rnn", "lstm"], logdir=root / "logs", report_dir=root / "report", **TINY_SEQUENCE)
    return root, path


def test_a_sequence_pair_is_trained_alike_and_reported(sequence_report):
    root, path = sequence_report
    (parent,) = (root / "logs" / "compare").iterdir()
    run_dirs = {model: next((parent / "adding" / model).iterdir()) for model in ("rnn", "lstm")}
    text = path.read_text()
    assert "Budget: 2 epochs × 5 steps, batch 16, adam lr 0.001, seed 0." in text
    assert "different budgets" not in text
    assert f"tensorboard --logdir {parent}" in text
    rows = table_rows(text)
    assert set(rows) == {"rnn", "lstm"} and "grad_reach start → end" in text
    for model, run_dir in run_dirs.items():
        row = rows[model]
        built = vgzoo.create_model(model, (20, 2), 1, width=8, head="value")
        assert row[1] == f"{built.count_params():,}"
        reach = recorded(run_dir, "grad_reach")
        assert len(reach) == 5  # steps 0, 2, 4, 6, 8
        assert row[6] == f"{reach[0]:+.2f} (step 0) → {reach[-1]:+.2f} (step 8)"
        assert float(row[3]) == pytest.approx(recorded(run_dir, "epoch_loss", "validation")[-1], rel=1e-3)
    (line,) = [line for line in text.splitlines() if line.startswith("- ") and " than " in line]
    better, gap, worse = re.match(r"- (\w+) kept the gradient at the first timestep 10\^([\d.]+) "
                                  r"times larger than (\w+)", line).groups()
    ends = {model: recorded(run_dir, "grad_reach")[-1] for model, run_dir in run_dirs.items()}
    assert ends[better] > ends[worse] and float(gap) == pytest.approx(ends[better] - ends[worse], abs=0.051)
    figures = sorted(p.name for p in path.parent.glob("*.png"))
    assert figures == ["grad_reach.png", "loss.png", "lstm-gradient-flow.png", "lstm-through-time.png",
                       "rnn-gradient-flow.png", "rnn-through-time.png"]
    for name in figures:
        assert f"]({name})" in text
        assert_real_png(path.parent / name)
    # Redrawn from the recorded per-timestep norms, both members on one colour scale.
    assert text.count("(one colour scale for every run)") == 2


def test_finished_runs_are_reported_again_without_training(sequence_report, tmp_path, capsys):
    root, _ = sequence_report
    run_dirs = sorted(str(run) for run in (root / "logs" / "compare").glob("*/adding/*/*"))
    assert cli.main(["compare", "--runs", *run_dirs, "--report-dir", str(tmp_path / "again")]) == 0
    out = capsys.readouterr().out
    assert "| lstm |" in out and "report: " in out
    assert (tmp_path / "again" / "report.md").is_file()
    assert len(list((root / "logs" / "compare").glob("*/adding/*/*"))) == 2, "nothing was trained"


def test_an_image_pair_is_judged_by_its_vanishing_ratio(tmp_path):
    random = np.random.default_rng(0)
    images = random.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    labels = random.integers(0, 10, 64)
    path = compare(["mlp10", "resmlp10"], data=(images, labels), width=16, depth=6, epochs=1, batch_size=16,
                   hist_every=2, activation="sigmoid", logdir=tmp_path / "logs",
                   report_dir=tmp_path / "report", verbose=0)
    text = path.read_text()
    rows = table_rows(text)
    assert "vanishing_ratio first → last" in text and set(rows) == {"mlp10", "resmlp10"}
    assert all(row[5] != "—" for row in rows.values()), "accuracy is reported for classifiers"
    # Sigmoid without shortcuts loses the gradient on the way down; the residual pair keeps it.
    assert re.search(r"- resmlp10 kept the gradient at the first layer 10\^[\d.]+ times larger "
                     r"than mlp10", text)
    for name in ("loss.png", "vanishing_ratio.png", "mlp10-gradient-flow.png"):
        assert_real_png(path.parent / name)


def test_bad_comparisons_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(vgzoo.VgzooError, match="at least two models"):
        compare(["rnn"], **TINY_SEQUENCE)
    assert cli.main(["compare", "--runs", str(tmp_path), str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is not a finished vgzoo run folder" in error
    assert cli.main(["compare", "rnn", "lstm", "--width", "-3"]) == 2
    assert not any(tmp_path.iterdir())


def test_runs_of_one_model_are_told_apart_by_the_knobs_they_changed(tmp_path):
    from vgzoo.analysis import report
    from vgzoo.training import runs

    folders = []
    for folder, knobs in (("a", {"chrono": False}), ("b", {"chrono": True}), ("c", {"chrono": True})):
        (tmp_path / folder).mkdir()
        runs.save_config(tmp_path / folder, {"model": {"name": "lstm", "arguments": dict(
            knobs, width=128, head="value")}})
        folders.append(tmp_path / folder)
    (tmp_path / "d").mkdir()
    runs.save_config(tmp_path / "d", {"model": {"name": "gru", "arguments": {"width": 128}}})
    assert report._names(folders + [tmp_path / "d"]) == [
        "lstm (defaults)", "lstm (chrono=True) b", "lstm (chrono=True) c", "gru"]
