"""Training under tf.distribute records the aggregated gradients once."""
import json
import os
import subprocess
import sys

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo
from vgzoo.analysis.events import scalar_series

# Logical CPU devices must be set before TensorFlow starts: a process per run.
RUN = """
import json, sys
import numpy as np, tensorflow as tf, vgzoo
from vgzoo.training.distribute import split_cpu
if sys.argv[2] == "mirrored":
    split_cpu(2)  # before the data set below starts TensorFlow
random = np.random.default_rng(0)
images = random.random((192, 28, 28, 1), dtype=np.float32)
labels = random.integers(0, 10, 192)
# Unshuffled, so both runs see the same batches in the same order.
batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
result = vgzoo.train(
    "mlp10", data=batches, num_classes=10, width=32, epochs=2, hist_every=2, log_layers="*",
    learning_rate=0.05, logdir=sys.argv[1], verbose=0, strategy=sys.argv[2],
)
print(json.dumps({"history": result.history, "run_dir": str(result.run_dir)}))
"""


def _train(logdir, strategy, replicas):
    environment = dict(os.environ, VGZOO_CPU_REPLICAS=str(replicas), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(logdir), strategy],
        capture_output=True, text=True, env=environment, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_over_two_cpus_matches_one_device_and_writes_once(tmp_path):
    single = _train(tmp_path / "single", "default", 1)
    mirrored = _train(tmp_path / "mirrored", "mirrored", 2)
    np.testing.assert_allclose(mirrored["history"]["loss"], single["history"]["loss"], rtol=1e-3)

    config = json.loads(open(os.path.join(mirrored["run_dir"], "config.json")).read())
    assert config["replicas"] == 2
    events = EventAccumulator(os.path.join(mirrored["run_dir"], "train"), size_guidance={"histograms": 0, "tensors": 0})
    events.Reload()
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=32)
    for variable in model.trainable_variables:
        steps = [event.step for event in events.Histograms(f"gradients/{variable.path}")]
        assert steps == [0, 2, 4, 6, 8, 10], "one histogram per recorded step, not one per replica"
    single_events = EventAccumulator(os.path.join(single["run_dir"], "train"), size_guidance={"histograms": 0, "tensors": 0})
    single_events.Reload()
    first = events.Histograms("gradients/stem_dense/kernel")[0].histogram_value
    reference = single_events.Histograms("gradients/stem_dense/kernel")[0].histogram_value
    assert first.num == reference.num
    np.testing.assert_allclose([first.min, first.max, first.sum], [reference.min, reference.max, reference.sum], rtol=1e-4, atol=1e-7)
    _assert_observatory_tags_written_once(events, single_events)


def _assert_observatory_tags_written_once(events, single_events):
    """Activations, update ratios and dead units: once per recorded step, as on one device."""
    recorded = [0, 2, 4, 6, 8, 10]
    assert [event.step for event in events.Histograms("activations/stem_dense")] == recorded
    for tag in ("update_ratio/00_stem_dense", "update_ratio/09_predictions", "dead_units/00_block1_pre_act"):
        mirrored, single = scalar_series(events, tag), scalar_series(single_events, tag)
        assert [step for step, _ in mirrored] == recorded, tag
        # The update is the all-reduced one; dead units come from the first replica's half batch.
        if tag.startswith("update_ratio"):
            np.testing.assert_allclose([v for _, v in mirrored], [v for _, v in single], rtol=1e-3)
        assert all(0.0 <= value for _, value in mirrored)
