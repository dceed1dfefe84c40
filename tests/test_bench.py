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


def _overhead_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("overhead", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configs_picks_plain_and_the_named_ones_in_the_tables_order():
    overhead = _overhead_module()
    assert overhead.chosen_configurations("user-cnn", "vgzoo-every, vgzoo") == ("plain", "vgzoo", "vgzoo-every")
    assert overhead.chosen_configurations("lstm", None) == overhead.configurations("lstm")
    # The fourth row differs by model: the LSTM has no vgzoo-hold, and saying so beats a silent empty row.
    with pytest.raises(SystemExit, match="no configuration vgzoo-hold for lstm; it has plain, vgzoo"):
        overhead.chosen_configurations("lstm", "vgzoo-hold")
