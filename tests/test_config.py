"""The one training configuration: flags, config.json, fingerprint and command from one dataclass."""
import dataclasses
import json
import shlex

import pytest

from vgzoo.cli import commands as cli
from vgzoo.errors import VgzooError
from vgzoo.training import config as train_config
from vgzoo.training.config import TrainConfig


def _parse(words):
    return cli.build_parser().parse_args(["train", *words])


def test_every_field_has_a_flag_of_vgzoo_train():
    parsed = _parse(["mlp10"])
    for field in dataclasses.fields(TrainConfig):
        assert hasattr(parsed, field.name), f"no flag for TrainConfig.{field.name}"


def test_flags_and_the_reproduce_command_round_trip():
    words = ["mlp10", "--dataset", "adding", "--seq-len", "30", "--optimizer", "adam", "--lr", "0.002",
             "--global-clipnorm", "1", "--steps-per-epoch", "5", "--warmup-steps", "0", "--no-resume",
             "--logdir", "elsewhere", "--width", "8"]
    config = train_config.from_flags(_parse(words))
    assert (config.dataset, config.seq_len, config.learning_rate, config.resume) == ("adding", 30, 0.002, False)
    command = train_config.to_command("mlp10", {"width": 8}, config)
    assert "--logdir" not in command and "--no-resume" not in command  # where, not what
    again = train_config.from_flags(_parse(shlex.split(command)[2:]))
    assert again.trained() == config.trained()
    assert cli._knobs(_parse(shlex.split(command)[2:])) == {"width": "8"}


def test_the_fingerprint_ignores_where_a_run_goes():
    model = {"name": "mlp10", "arguments": {"width": 8}}
    here = TrainConfig(dataset="mnist", logdir="a", run_name="x", verbose=0)
    there = here.replace(logdir="b", run_name="y", verbose=2)
    other = here.replace(seed=1)
    source = train_config.fingerprint_source
    assert source(model, here) == source(model, there)
    assert source(model, here) != source(model, other)


@pytest.mark.parametrize("changes, message", [
    (dict(learning_rate=0), "learning_rate must be a positive"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite"),
    (dict(momentum=-5), "momentum must be at least 0"),
    (dict(momentum=1.5), "momentum must be in"),
    (dict(seed=-1), "seed must be at least 0"),
    (dict(clipnorm=-1.0), "clipnorm must be a positive"),
    (dict(global_clipnorm=-1.0), "global_clipnorm must be a positive"),
    (dict(weight_decay=-1e-4), "weight_decay must be at least 0"),
    (dict(validation_split=1.0), "validation_split must be in"),
    (dict(optimizer="adamw"), "Did you mean 'adam'"),
    (dict(epochs=1.5), "epochs must be an integer"),
    (dict(colour="red"), "unknown training option 'colour'"),
])
def test_bad_values_are_refused_before_anything_runs(changes, message):
    with pytest.raises(VgzooError, match=message) as caught:
        TrainConfig().replace(**changes)
    assert "\n" not in str(caught.value)


def test_a_stored_config_is_read_back_and_unknown_keys_are_named(tmp_path):
    config = TrainConfig(dataset="adding", seq_len=20, optimizer="adam", epochs=2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": {"name": "lstm", "knobs": {"width": 8}}, "train": config.to_json()}))
    assert train_config.read_run_config(path) == ("lstm", {"width": 8}, config)
    stored = json.loads(path.read_text())
    stored["train"]["learning_rat"] = 0.1
    path.write_text(json.dumps(stored))
    with pytest.raises(VgzooError, match="unknown training option 'learning_rat'.*Did you mean 'learning_rate'"):
        train_config.read_run_config(path)
    path.write_text("{not json")
    with pytest.raises(VgzooError, match="not valid JSON"):
        train_config.read_run_config(path)


def test_train_config_replays_a_run(tmp_path, capsys):
    common = ["--dataset", "adding", "--seq-len", "12", "--epochs", "1", "--steps-per-epoch", "3",
              "--width", "4", "--optimizer", "adam", "--verbose", "0", "--logdir", str(tmp_path)]
    assert cli.main(["train", "lstm", *common, "--run-name", "first"]) == 0
    first = tmp_path / "adding" / "lstm" / "first"
    assert cli.main(["train", "--config", str(first / "config.json"), "--run-name", "replay",
                     "--logdir", str(tmp_path)]) == 0
    original = json.loads((first / "config.json").read_text())
    replay = json.loads((tmp_path / "adding" / "lstm" / "replay" / "config.json").read_text())
    assert replay["fingerprint"] == original["fingerprint"]
    assert {k: v for k, v in replay["train"].items() if k != "run_name"} == \
        {k: v for k, v in original["train"].items() if k != "run_name"}
