"""`make bench` prints its table: every configuration, a ratio to plain fit, the targets."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "overhead.py"


# A real bench process building every configuration at two batch sizes: 30-45 s on 2 cores.
@pytest.mark.slow
def test_the_overhead_bench_prints_a_row_per_configuration():
    result = subprocess.run(
        [sys.executable, str(BENCH), "--only", "lstm", "--rounds", "1", "--steps", "2", "--epochs", "2",
         "--step-rounds", "1", "--batch-size", "4", "--large-batch", "8"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = dict(re.findall(r"^  (plain|vgzoo|vgzoo-every|vgzoo-nohold|vgzoo-hold|keras-tb) +[\d.]+ +([\d.]+)",
                           result.stdout, re.M))
    # The LSTM's default holds each update, as `vgzoo.train` does; its fourth row lets them through.
    assert set(rows) == {"plain", "vgzoo", "vgzoo-every", "vgzoo-nohold", "keras-tb"}
    assert float(rows["plain"]) == 1.0 and all(float(ratio) > 0 for ratio in rows.values())
    assert ">=0.97" in result.stdout and ">=0.85" in result.stdout
    assert re.search(r"vgzoo \(default\) against keras-tb: [\d.]+ >= [\d.]+ (ok|MISSED)", result.stdout)
    single = re.findall(r"^  (plain|vgzoo|vgzoo-every|vgzoo-nohold|vgzoo-hold) +[\d.]+ ms +([\d.]+) +[\d.]+$",
                        result.stdout, re.M)
    assert [config for config, _ in single] == ["plain", "vgzoo", "vgzoo-every", "vgzoo-nohold"] * 2  # both batches
    assert "batch 4" in result.stdout and "batch 8" in result.stdout
    assert re.search(r"flow picture .* [\d.]+ ms", result.stdout) and re.search(r"heat map .* [\d.]+ ms", result.stdout)


def test_configs_picks_plain_and_the_named_ones_in_the_tables_order():
    overhead = _bench_module("overhead")
    assert overhead.chosen_configurations("user-cnn", "vgzoo-every, vgzoo") == ("plain", "vgzoo", "vgzoo-every")
    assert overhead.chosen_configurations("lstm", None) == overhead.configurations("lstm")
    # The fourth row differs by model: the LSTM has no vgzoo-hold, and saying so beats a silent empty row.
    with pytest.raises(SystemExit, match="no configuration vgzoo-hold for lstm; it has plain, vgzoo"):
        overhead.chosen_configurations("lstm", "vgzoo-hold")


def _bench_module(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCH.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Five builds of a small CNN, each fit twice: 20-30 s on 2 cores.
@pytest.mark.slow
def test_the_quiet_variants_fits_run_the_step_they_name(tmp_path, capsys):
    import argparse

    from vgzoo.analysis.events import read_scalars

    profile = _bench_module("profile_step")
    args = argparse.Namespace(variants=None, fit_rounds=1, fit_steps=2, batch_size=4)
    profile.fit_profile(profile.user_cnn_task, args, tmp_path, holds=False)
    rows = dict(re.findall(r"^  (plain|quiet\S*) +[\d.]+ +([\d.]+)", capsys.readouterr().out, re.M))
    assert set(rows) == {"plain", "quiet", "quiet-explosion-check", "quiet-step-scalars", "quiet-bare"}
    assert float(rows["plain"]) == 1.0 and all(float(ratio) > 0 for ratio in rows.values())
    # Each variant's fit ran the step traced under its patch: the warm-up's 2 steps, then 3 epochs of 2.
    every_step = list(range(2 + profile.FIT_EPOCHS * 2))
    for config, writes_step_scalars in [("quiet", True), ("quiet-explosion-check", True),
                                        ("quiet-step-scalars", False), ("quiet-bare", False)]:
        steps = [step for step, _ in read_scalars(tmp_path / f"{config}-0" / "train", "step_loss")]
        assert steps == (every_step if writes_step_scalars else []), config
