"""A short observed training run writes what TensorBoard needs, read back with its reader."""
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vgzoo


def read_events(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"histograms": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def tensor_steps(accumulator, tag):
    return sorted(event.step for event in accumulator.Tensors(tag))




def test_a_short_run_writes_gradients_for_every_variable(mnist_data_dir, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # training on the test split, on purpose
        result = vgzoo.train(
            "resnet20",
            dataset="mnist",
            source_split="test",
            limit=320,
            validation_split=0.2,
            batch_size=64,
            epochs=2,
            hist_every=2,
            log_layers="*",
            logdir=tmp_path,
            verbose=0,
        )
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / "mnist" / "resnet20"
    train_events = read_events(run_dir / "train")
    validation_events = read_events(run_dir / "validation")

    for variable in result.model.trainable_variables:
        for kind in ("gradients", "weights"):
            steps = [event.step for event in train_events.Histograms(f"{kind}/{variable.path}")]
            assert steps == [0, 2, 4, 6]  # 4 steps an epoch, 2 epochs, every 2nd step
    assert tensor_steps(train_events, "grad_norm/00_stem_conv") == [0, 2, 4, 6]
    assert tensor_steps(train_events, "step_learning_rate") == list(range(8))
    assert tensor_steps(train_events, "running/accuracy") == list(range(8))  # Keras' running means
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert tensor_steps(train_events, tag) == [0, 1]
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert tensor_steps(validation_events, tag) == [0, 1]
    assert "config" in train_events.Tags()["tensors"]
    # The text summary holds the whole run configuration, as config.json does.
    (text_event,) = train_events.Tensors("config")
    text = text_event.tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`").removeprefix("json\n"))["train"]["source_split"] == "test"

    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["name"] == "resnet20" and config["train"]["seed"] == 0
    assert config["dataset"]["train_size"] == 256 and config["dataset"]["val_size"] == 64
    assert {"tensorflow", "keras", "numpy"} <= set(config["versions"])

    best = vgzoo.create_model("resnet20", (28, 28, 1), 10)
    best.load_weights(run_dir / "best.weights.h5")
    rebuilt = vgzoo.create_model("resnet20", (28, 28, 1), 10)
    rebuilt.load_weights(run_dir / "last.weights.h5")
    np.testing.assert_array_equal(
        rebuilt.get_layer("stem_conv").kernel.numpy(),
        result.model.get_layer("stem_conv").kernel.numpy(),
    )


def test_training_on_arrays_and_datasets(tmp_path):
    random = np.random.default_rng(0)
    images = random.integers(0, 256, (96, 28, 28, 1), dtype=np.uint8)
    labels = random.integers(0, 10, 96)
    from_arrays = vgzoo.train(
        "mlp10", data=(images, labels), width=16, epochs=1, batch_size=32,
        validation_split=0.25, logdir=tmp_path, verbose=0, optimizer="adam",
    )
    assert from_arrays.run_dir.parent == tmp_path / "custom" / "mlp10"
    assert set(from_arrays.history) >= {"loss", "accuracy", "val_loss"}

    dataset = tf.data.Dataset.from_tensor_slices((images.astype("float32") / 255, labels)).batch(32)
    from_dataset = vgzoo.train(
        "mlp10", data=dataset, num_classes=10, width=16, epochs=1, logdir=tmp_path, verbose=0
    )
    assert len(from_dataset.history["loss"]) == 1
    assert from_dataset.run_dir != from_arrays.run_dir


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(epochs=0), "epochs must be a positive"),
        (dict(batch_size=-1), "batch_size must be a positive"),
        (dict(learning_rate=-0.1), "learning_rate must be a positive"),
        (dict(optimizer="adamz"), "unknown optimizer 'adamz'"),
        (dict(optimizer=keras.optimizers.AdamW(), learning_rate=0.1), "set them on the optimizer"),
        (dict(loss="sparse_categorical_crossentrop"), "unknown loss"),
        (dict(schedule="cosin"), "Did you mean 'cosine'"),
        (dict(dataset="cifar11"), "Did you mean 'cifar10'"),
        (dict(activation="sigmod"), "Did you mean 'sigmoid'"),
    ],
)
def test_bad_training_options_are_one_line_errors(options, message, tmp_path, mnist_data_dir):
    arguments = dict(dataset="mnist", source_split="test", limit=64, logdir=tmp_path, verbose=0)
    arguments.update(options)
    with pytest.raises(vgzoo.VgzooError, match=message):
        vgzoo.train("mlp10", **arguments)
    assert not any(tmp_path.iterdir()), "nothing is written for bad input"


def test_a_run_records_hparams_final_metrics_and_pictures(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    random = np.random.default_rng(1)
    images = random.integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    labels = random.integers(0, 10, 64)
    result = vgzoo.train(
        "resmlp10", data=(images, labels), width=16, epochs=2, batch_size=16, hist_every=1,
        validation_split=0.25, logdir=tmp_path, verbose=0, activation="sigmoid",
    )
    root = read_events(result.run_dir)
    session = root.SummaryMetadata("_hparams_/session_start_info")
    start = plugin_data_pb2.HParamsPluginData.FromString(session.plugin_data.content).session_start_info
    assert start.hparams["model"].string_value == "resmlp10"
    assert start.hparams["activation"].string_value == "sigmoid"
    assert start.hparams["residual"].bool_value is True
    assert tensor_steps(root, "final/val_loss") == [2]
    # No per-run custom-scalars layout: its regexes matched every run of a folder.
    assert "custom_scalars__config__" not in root.Tags()["tensors"]

    train_events = read_events(result.run_dir / "train")
    pictures = train_events.Tensors("gradient_flow/by_layer")
    # A fit of a few seconds: one picture, its last epoch's, of both epochs' recorded steps.
    assert [event.step for event in pictures] == [1]
    png = pictures[0].tensor_proto.string_val[2]  # width, height, then the encoded image
    assert png.startswith(b"\x89PNG")
    assert tensor_steps(train_events, "vanishing_ratio") == list(range(6))
    assert tensor_steps(train_events, "global_grad_norm") == list(range(6))
