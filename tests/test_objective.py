"""`vgzoo.train` from Python with any Keras optimizer, loss and metrics, recorded and resumable."""
import json

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo


def small_images(count=64, seed=0):
    random = np.random.default_rng(seed)
    return random.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8), random.integers(0, 10, count)


def shifted_loss(y_true, y_pred):
    """Cross-entropy plus 10, so a history shows which loss was trained."""
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) + 10.0


def adamw():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.5)
    return keras.optimizers.AdamW(schedule, weight_decay=1e-3, global_clipnorm=1.0)


def train_mlp(tmp_path, **options):
    arguments = dict(data=small_images(), width=16, epochs=2, batch_size=16, validation_split=0.25,
                     logdir=tmp_path, verbose=0, hist_every=1)
    return vgzoo.train("mlp10", **dict(arguments, **options))


def test_a_keras_optimizer_instance_a_loss_function_and_metrics(tmp_path):
    optimizer = adamw()
    top3 = keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3")
    result = train_mlp(tmp_path, optimizer=optimizer, loss=shifted_loss, metrics=["accuracy", top3],
                       run_name="adamw")

    assert int(optimizer.iterations.numpy()) == 6, "48 training examples in batches of 16, 2 epochs"
    assert min(result.history["loss"]) > 10 and min(result.history["val_loss"]) > 10
    assert {"accuracy", "top3", "val_top3"} <= set(result.history)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["train"]["optimizer"] == "python"
    assert config["optimizer"]["class_name"] == "AdamW"
    assert config["optimizer"]["config"]["global_clipnorm"] == 1.0
    assert "shifted_loss" in json.dumps(config["loss"]) and config["learning_rate"] is None

    events = EventAccumulator(str(result.run_dir / "train"), size_guidance={"tensors": 0, "histograms": 0})
    events.Reload()
    assert [event.step for event in events.Tensors("global_grad_norm")] == list(range(6))
    assert any(tag.startswith("gradients/") for tag in events.Tags()["histograms"])


def test_the_objective_is_part_of_what_a_rerun_resumes(tmp_path):
    def fingerprint(run_name, **objective):
        result = train_mlp(tmp_path, epochs=1, run_name=run_name, **objective)
        return json.loads((result.run_dir / "config.json").read_text())["fingerprint"]

    first = fingerprint("first", optimizer=adamw(), loss=shifted_loss)
    assert fingerprint("same", optimizer=adamw(), loss=shifted_loss) == first
    assert fingerprint("faster", optimizer=keras.optimizers.AdamW(1e-2)) != first


def test_any_keras_optimizer_by_name_and_a_loss_object(tmp_path):
    result = train_mlp(tmp_path, optimizer="rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(),
                       epochs=1)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["optimizer"]["class_name"] == "RMSprop"
    assert config["learning_rate"] == pytest.approx(1e-3)
    assert config["loss"]["class_name"] == "SparseCategoricalCrossentropy"


def test_a_replayed_python_run_asks_for_its_optimizer(tmp_path):
    result = train_mlp(tmp_path, optimizer="rmsprop", epochs=1)
    from vgzoo.training.config import read_run_config, to_command

    name, knobs, config = read_run_config(result.run_dir / "config.json")
    with pytest.raises(vgzoo.VgzooError, match="pass it again as optimizer="):
        vgzoo.train(name, data=small_images(), config=config.replace(logdir=str(tmp_path / "again")), **knobs)
    with pytest.raises(vgzoo.VgzooError, match="no vgzoo train command reproduces it"):
        to_command(name, knobs, config)
