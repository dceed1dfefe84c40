"""Bad input: one clear line each, exit status 2, no traceback, nothing written."""
import gzip
import os
import shutil
import subprocess
import sys

import pytest

import vgzoo

MNIST_TEST = ["--dataset", "mnist", "--data-split", "test", "--limit", "64", "--epochs", "1"]
# The hostile user's command `A`: a tiny LSTM on the adding problem.
ADDING = ["train", "lstm", "--dataset", "adding", "--seq-len", "20", "--epochs", "2", "--steps-per-epoch", "10",
          "--width", "8"]


def _truncated_data_dir(root, shared):
    folder = root / "truncated" / "mnist"
    folder.mkdir(parents=True)
    shutil.copy(shared / "mnist" / "t10k-labels-idx1-ubyte.gz", folder)
    images = (shared / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(images[: len(images) // 2])
    return folder.parent


def _corrupted_data_dir(root, shared):
    folder = root / "corrupted" / "mnist"
    folder.mkdir(parents=True)
    shutil.copy(shared / "mnist" / "t10k-labels-idx1-ubyte.gz", folder)
    raw = bytearray(gzip.decompress((shared / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()))
    raw[5000] ^= 0xFF
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    return folder.parent


def _other_architecture_checkpoint(root, shared):
    path = root / "mlp10.weights.h5"
    vgzoo.create_model("mlp10", (28, 28, 1), 10).save_weights(path)
    return path


def _file_in_the_way(root, shared):
    blocker = root / "not-a-folder"
    blocker.write_text("a file where the log folder should go")
    return blocker / "logs"


# (case, arguments with {placeholders}, fixture builders, expected words)
CASES = [
    ("unknown model", ["train", "resnet21", *MNIST_TEST], {}, "unknown model 'resnet21'"),
    ("unknown dataset", ["train", "mlp10", "--dataset", "mnits"], {}, "unknown dataset 'mnits'"),
    ("unknown knob", ["train", "resnet20", "--width", "32", *MNIST_TEST], {}, "unknown knob 'width'"),
    ("unknown knob value", ["train", "mlp10", "--activation", "relu6", *MNIST_TEST], {}, "unknown activation"),
    ("depth not 6n+2", ["train", "resnet20", "--depth", "21", *MNIST_TEST], {}, "6n+2"),
    ("zero epochs", ["train", "mlp10", *MNIST_TEST, "--epochs", "0"], {}, "epochs must be a positive"),
    ("negative epochs", ["train", "mlp10", *MNIST_TEST, "--epochs", "-3"], {}, "epochs must be a positive"),
    ("zero batch size", ["train", "mlp10", *MNIST_TEST, "--batch-size", "0"], {}, "batch_size must be a positive"),
    ("negative learning rate", ["train", "mlp10", *MNIST_TEST, "--lr", "-0.1"], {}, "learning_rate must be a positive"),
    ("zero learning rate", ["train", "mlp10", *MNIST_TEST, "--lr", "0"], {}, "learning_rate must be a positive"),
    ("NaN learning rate", ["train", "mlp10", *MNIST_TEST, "--lr", "nan"], {}, "learning_rate must be a finite"),
    ("infinite learning rate", ["train", "mlp10", *MNIST_TEST, "--lr", "inf"], {}, "learning_rate must be a finite"),
    ("negative clipnorm", [*ADDING, "--clipnorm", "-1"], {}, "clipnorm must be a positive"),
    ("negative global clipnorm", [*ADDING, "--global-clipnorm", "-1"], {}, "global_clipnorm must be a positive"),
    ("negative weight decay", [*ADDING, "--weight-decay", "-0.0001"], {}, "weight_decay must be at least 0"),
    ("negative momentum", [*ADDING, "--momentum", "-5"], {}, "momentum must be at least 0"),
    ("negative seed", [*ADDING, "--seed", "-1"], {}, "seed must be at least 0"),
    ("limit on a generated task", [*ADDING, "--limit", "5"], {}, "limit applies to data read from files"),
    ("validation split on a generated task", [*ADDING, "--validation-split", "0.2"], {},
     "validation_split applies to data read from files"),
    ("parameter budget below the smallest model", [*ADDING, "--match-params", "10"], {},
     "match_params=10 is below the smallest lstm"),
    ("sequence too long for memory", [*ADDING, "--seq-len", "10000000"], {}, "lower --seq-len or --batch-size"),
    ("batch too large for memory", [*ADDING, "--batch-size", "1000000000"], {}, "lower --seq-len or --batch-size"),
    ("run name climbing out of the log folder", [*ADDING, "--run-name", "../../../escape"], {}, "not a plain folder name"),
    ("absolute run name", [*ADDING, "--run-name", "{root}/victim"], {}, "not a plain folder name"),
    ("run name with a slash", [*ADDING, "--run-name", "a/b"], {}, "not a plain folder name"),
    ("input shape that does not fit", ["info", "resnet20", "--input-shape", "28,28"], {}, "input_shape must be"),
    ("class count that does not fit", ["info", "resnet20", "--num-classes", "1"], {}, "num_classes must be"),
    ("data folder that does not exist", ["train", "mlp10", *MNIST_TEST], {"VGZOO_DATA_DIR": "{root}/nowhere"}, "is not an existing folder"),
    ("truncated data file", ["train", "mlp10", *MNIST_TEST], {"VGZOO_DATA_DIR": _truncated_data_dir}, "checksum"),
    ("corrupted data file", ["train", "mlp10", *MNIST_TEST], {"VGZOO_DATA_DIR": _corrupted_data_dir}, "checksum"),
    ("checkpoint of another architecture", ["train", "resnet20", *MNIST_TEST, "--weights", _other_architecture_checkpoint], {}, "does not fit resnet20"),
    ("log folder that cannot be written", ["train", "mlp10", *MNIST_TEST, "--logdir", _file_in_the_way], {}, "cannot create the log folder"),
    ("unknown strategy", ["train", "mlp10", *MNIST_TEST, "--strategy", "mirrorred"], {}, "unknown strategy 'mirrorred'"),
]


def _resolve(value, root, shared):
    if callable(value):
        return str(value(root, shared))
    return value.replace("{root}", str(root))


@pytest.mark.parametrize("case, arguments, environment, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, arguments, environment, expected, tmp_path, mnist_data_dir):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    logdir = tmp_path / "logs"
    arguments = [_resolve(argument, inputs, mnist_data_dir) for argument in arguments]
    if arguments[0] == "train" and "--logdir" not in arguments:
        arguments += ["--logdir", str(logdir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.update({key: _resolve(value, inputs, mnist_data_dir) for key, value in environment.items()})
    result = subprocess.run(
        [sys.executable, "-m", "vgzoo", *arguments], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vgzoo: error: "), result.stderr
    assert expected in lines[0]
    assert not logdir.exists() or not any(logdir.rglob("*")), "nothing is written for bad input"
    assert not (inputs / "victim").exists() and not (tmp_path / "escape").exists()
