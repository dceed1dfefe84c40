"""The `vgzoo` command: real subprocesses, exit codes and one-line errors."""
import os
import subprocess
import sys

import pytest


def vgzoo(*arguments, env=None):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "vgzoo", *arguments],
        capture_output=True, text=True, env=environment, timeout=600,
    )


def test_list_prints_name_family_partner_and_description():
    result = vgzoo("list", "resnet5*")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "family", "partner"]
    assert lines[1].split()[:3] == ["resnet56", "convnet", "plain56"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["info", "resnt56"], "Did you mean 'resnet56'"),
        (["info", "resnet56", "--activation", "sigmod"], "Did you mean 'sigmoid'"),
        (["train", "resnet56", "--initializer", "xavier"], "unknown initializer 'xavier'"),
        (["train", "resnet56", "--width", "8"], "knob 'width' for resnet56"),
        # The command line keeps vgzoo's two optimizers; Python takes any Keras one.
        (["train", "mlp10", "--optimizer", "adamw"], "unknown optimizer 'adamw'"),
        (["train", "mlp10", "--optimizer", "python"], "unknown optimizer 'python'"),
        (["list", "vgg*"], "no model matches"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(arguments, message):
    result = vgzoo(*arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_bad_training_option_stops_before_writing(tmp_path, mnist_data_dir):
    result = vgzoo("train", "mlp10", "--epochs", "0", "--logdir", str(tmp_path))
    assert result.returncode == 2 and "epochs must be a positive" in result.stderr
    assert not any(tmp_path.iterdir())


def test_missing_dataset_file_names_the_file(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    result = vgzoo(
        "train", "mlp10", "--dataset", "cifar10", "--logdir", str(tmp_path / "logs"),
        env={"VGZOO_DATA_DIR": str(empty), "VGZOO_OFFLINE": "1", "KERAS_HOME": str(tmp_path / "keras")},
    )
    assert result.returncode == 2, result.stderr
    assert "cifar-10" in result.stderr and str(empty) in result.stderr
    assert "Traceback" not in result.stderr


def test_info_builds_the_model_and_counts_parameters():
    result = vgzoo("info", "resnet20")
    assert result.returncode == 0, result.stderr
    assert "parameters: 271,098" in result.stdout
    assert "stage3_block3_conv2" in result.stdout
