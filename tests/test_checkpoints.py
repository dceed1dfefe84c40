"""Pretrained checkpoints: a real tiny run published, loaded, verified and refused when it must be."""
import json
import re
import shlex
import shutil
import warnings

import numpy as np
import pytest

import vgzoo
import vgzoo.data
from vgzoo.cli import commands as cli
from vgzoo.pretrained import manifest, publish
from vgzoo.storage import file_digest
from vgzoo.training import config as train_config

TINY = dict(dataset="adding", seq_len=20, width=8, epochs=2, steps_per_epoch=5, batch_size=16,
            optimizer="adam", hist_every=5, verbose=0)


@pytest.fixture(scope="module")
def published_run(tmp_path_factory):
    """A tiny rnn trained on `adding` T=20, published into its own models folder."""
    root = tmp_path_factory.mktemp("published")
    result = vgzoo.train("rnn", logdir=root / "logs", **TINY)
    entry = publish.publish(result.run_dir, folder=root / "models")
    return result, entry, root / "models"


@pytest.fixture
def models(published_run, tmp_path, monkeypatch):
    """A private copy of the published models folder, set as $VGZOO_MODELS_DIR."""
    folder = tmp_path / "models"
    shutil.copytree(published_run[2], folder)
    monkeypatch.setenv(manifest.MODELS_DIR_ENV, str(folder))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty download cache
    return folder


def _manifest_entry(folder):
    (entry,) = manifest.read_manifest(folder)
    return entry


def _published_file(folder):
    """The published file's name: the checkpoint's stem and the start of its sha256."""
    return _manifest_entry(folder)["file"]


def test_a_published_run_loads_with_its_trained_weights_and_metric(published_run, models, capsys):
    result, entry, _ = published_run
    assert _manifest_entry(models) == entry
    weights = models / entry["file"]
    assert entry["file"] == f"rnn-adding-T20-{entry['sha256'][:8]}.weights.h5"
    assert entry["size"] == weights.stat().st_size
    assert entry["sha256"] == file_digest(weights) and entry["published"] is True
    assert entry["knobs"]["width"] == 8 and entry["input_shape"] == [20, 2]
    assert entry["trained_from"] == "best.weights.h5"
    assert {"tensorflow", "keras"} == set(entry["versions"])
    # The command rebuilt from the config is one `vgzoo train` accepts, with the run's settings.
    args = cli.build_parser().parse_args(shlex.split(entry["command"])[1:])
    assert (args.model, args.seq_len, args.width, args.epochs, args.steps_per_epoch) == ("rnn", 20, "8", 2, 5)

    loaded = vgzoo.load("rnn", dataset="adding", pretrained=True)
    trained = vgzoo.create_model("rnn", (20, 2), 1, width=8, head="value")
    trained.load_weights(result.run_dir / "best.weights.h5")
    for mine, theirs in zip(loaded.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    measured = publish.evaluate(loaded, entry)
    assert set(measured) == {"test_loss"}
    assert abs(measured["test_loss"] - entry["metrics"]["test_loss"]) <= entry["tolerance"]
    # The same weights through create_model, with a matching knob allowed.
    again = vgzoo.create_model("rnn", pretrained=True, dataset="adding", width=8)
    np.testing.assert_array_equal(again.get_weights()[0], loaded.get_weights()[0])

    assert cli.main(["verify"]) == 0
    assert "1 of 1 metrics reproduce" in capsys.readouterr().out
    assert cli.main(["list", "--pretrained"]) == 0
    listing = capsys.readouterr().out
    assert "rnn" in listing and "adding T=20" in listing and "published" in listing


def test_verify_fails_when_a_metric_drifts(models, capsys):
    entries = manifest.read_manifest(models)
    entries[0]["metrics"]["test_loss"] += 10 * entries[0]["tolerance"]
    manifest.write_manifest(entries, models)
    (row,) = publish.verify()
    assert row["ok"] is False
    assert cli.main(["verify"]) == 1
    assert "DIFFERS" in capsys.readouterr().out


def test_a_tampered_file_is_refused(models):
    name = _published_file(models)
    weights = models / name
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(vgzoo.VgzooError, match=re.escape(name) + r" is corrupt or was "
                       r"modified: sha256 [0-9a-f]{64}, the manifest expects [0-9a-f]{64}\. "
                       r"Delete it and fetch it again"):
        vgzoo.load("rnn", dataset="adding")


def test_a_wrong_hash_in_the_manifest_is_refused(models, capsys):
    entries = manifest.read_manifest(models)
    entries[0]["sha256"] = "0" * 64
    manifest.write_manifest(entries, models)
    with pytest.raises(vgzoo.VgzooError, match="the manifest expects 0{64}. Delete it"):
        vgzoo.load("rnn", dataset="adding")
    assert cli.main(["verify"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is corrupt or was modified" in error


def test_offline_without_the_file_names_the_file_and_the_folder(models, monkeypatch):
    name = _published_file(models)
    (models / name).unlink()
    monkeypatch.setenv("VGZOO_OFFLINE", "1")
    with pytest.raises(vgzoo.VgzooError, match=(
            rf"the checkpoint file {re.escape(name)} for rnn on adding T=20 is not here "
            rf"and VGZOO_OFFLINE forbids downloading it: put it in {models}")):
        vgzoo.load("rnn", dataset="adding")


def test_a_missing_file_is_fetched_into_the_keras_cache_by_its_url(models, tmp_path, monkeypatch):
    release = tmp_path / "release"
    release.mkdir()
    name = _published_file(models)
    (models / name).rename(release / name)
    entries = manifest.read_manifest(models)
    entries[0]["url"] = (release / name).as_uri()
    manifest.write_manifest(entries, models)
    model = vgzoo.load("rnn", dataset="adding")
    assert (tmp_path / "keras" / "vgzoo" / name).is_file()
    assert model.count_params() > 0

    entries[0]["url"] = (tmp_path / "nowhere.weights.h5").as_uri()
    manifest.write_manifest(entries, models)
    shutil.rmtree(tmp_path / "keras")
    with pytest.raises(vgzoo.VgzooError, match=rf"could not download the checkpoint file "
                       rf"{re.escape(name)} from file://.*: put the file in {models}"):
        vgzoo.load("rnn", dataset="adding")


def test_a_knob_that_changes_the_architecture_is_refused(models):
    with pytest.raises(vgzoo.VgzooError, match=r"the rnn on adding T=20 checkpoint was built "
                       r"with width=8, not width=16"):
        vgzoo.load("rnn", dataset="adding", width=16)
    with pytest.raises(vgzoo.VgzooError, match=r"takes input_shape \(20, 2\), not \(30, 2\)"):
        vgzoo.create_model("rnn", (30, 2), pretrained=True, dataset="adding")


def test_no_published_checkpoint_lists_the_available_ones(models):
    with pytest.raises(vgzoo.VgzooError, match=r"no published checkpoint for lstm on adding: the "
                       r"manifest has no entry for it\. Published: rnn on adding T=20"):
        vgzoo.load("lstm", dataset="adding")
    entries = manifest.read_manifest(models)
    entries[0]["published"] = False
    manifest.write_manifest(entries, models)
    with pytest.raises(vgzoo.VgzooError, match="its entry is unpublished.*Published: none yet"):
        vgzoo.load("rnn", dataset="adding")
    untrained = vgzoo.load("rnn", dataset="adding", pretrained=False)
    assert untrained.input_shape == (None, 20, 2)


def test_a_run_on_the_mnist_test_split_is_never_published(mnist_data_dir, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # training on the test split, on purpose
        result = vgzoo.train("mlp10", dataset="mnist", source_split="test", limit=64, width=8,
                             epochs=1, batch_size=32, logdir=tmp_path / "logs", verbose=0)
    with pytest.raises(vgzoo.VgzooError, match="refusing to publish .* trained on the MNIST "
                       "test split"):
        publish.publish(result.run_dir, folder=tmp_path / "models")
    assert not (tmp_path / "models").exists()
    assert cli.main(["publish", str(result.run_dir)]) == 2
    assert "never have seen its test set" in capsys.readouterr().err


def test_image_checkpoints_are_measured_on_the_test_split_with_their_training_statistics(
        mnist_data_dir):
    entry = {"model": "mlp10", "dataset": "mnist", "normalization": {"mean": [0.13], "std": [0.31]}}
    model = vgzoo.create_model("mlp10", (28, 28, 1), 10, width=8)
    measured = publish.evaluate(model, entry)
    images, labels = vgzoo.data.load_arrays("mnist", "test")
    probabilities = model.predict((images / 255 - 0.13) / 0.31, batch_size=1000, verbose=0)
    assert measured["test_accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == labels), abs=1e-4)
    expected_loss = -np.mean(np.log(probabilities[np.arange(len(labels)), labels]))
    assert measured["test_loss"] == pytest.approx(expected_loss, rel=1e-3)


# The repository's own manifest: valid, policy-abiding, and its checkpoints reproduce.
REPO_MODELS = manifest.Path(cli.__file__).resolve().parents[2] / "models"
REPO_ENTRIES = manifest.read_manifest(REPO_MODELS)


def test_the_repo_manifest_is_complete_and_keeps_the_policy():
    assert REPO_ENTRIES, "models/manifest.json lists the checkpoints"
    parser = cli.build_parser()
    for entry in REPO_ENTRIES:
        stem = manifest.file_name(entry["model"], entry["dataset"],
                                  entry["dataset_options"].get("seq_len")).removesuffix(".weights.h5")
        version = re.fullmatch(re.escape(stem) + r"(?:-([0-9a-f]{8}))?\.weights\.h5", entry["file"])
        assert version, f"{entry['file']} is not named for {stem}"
        assert version.group(1) is None or entry["sha256"].startswith(version.group(1))
        args = parser.parse_args(shlex.split(entry["command"])[1:])
        assert (args.command, args.model, args.dataset) == ("train", entry["model"], entry["dataset"])
        assert train_config.from_flags(args).source_split == "train", "never publish a model trained on a test split"
        vgzoo.get_spec(entry["model"]).resolve({k: v for k, v in entry["knobs"].items() if v is not None})
        if entry["published"]:
            assert entry["sha256"] and entry["size"] and entry["metrics"] and entry["date"]
    # The image half: trained on the MNIST training split, each with the input it expects.
    mnist = {entry["model"]: entry for entry in REPO_ENTRIES if entry["dataset"] == "mnist" and entry["published"]}
    assert {"plain20", "resnet20", "plain56", "resnet56", "mlp20", "resmlp20"} <= set(mnist)
    for entry in mnist.values():
        assert len(entry["input"]["mean"]) == len(entry["input"]["std"]) == 1
        assert abs(entry["input"]["mean"][0] - 0.1307) < 2e-3 and abs(entry["input"]["std"][0] - 0.3081) < 2e-3
    assert min(mnist["resnet20"]["metrics"]["test_accuracy"], mnist["resnet56"]["metrics"]["test_accuracy"]) >= 0.993
    convnets = {mnist[name]["command"].split(" --", 1)[1] for name in ("plain20", "resnet20", "plain56", "resnet56")}
    assert len(convnets) == 1, "the four share one budget"
    published_bytes = sum((REPO_MODELS / entry["file"]).stat().st_size for entry in REPO_ENTRIES if entry["published"])
    assert published_bytes < 30e6


def test_verify_passes_on_the_repo_manifest(monkeypatch, capsys):
    # The command on one image and one sequence checkpoint; every entry is measured below, and
    # `make pretrained-verify` (run by .ci/run) runs the command on all of them.
    monkeypatch.delenv(manifest.MODELS_DIR_ENV, raising=False)
    assert cli.main(["verify", "resnet20/mnist", "rnn-adding-T200"]) == 0
    out = capsys.readouterr().out
    assert "resnet20 on mnist" in out and "rnn on adding T=200" in out
    assert "3 of 3 metrics reproduce the manifest within tolerance" in out
    assert cli.main(["verify", "nosuch/model"]) == 2


@pytest.mark.parametrize(
    "entry", manifest.published(REPO_ENTRIES) or [pytest.param(None, marks=pytest.mark.skip(
        reason="no checkpoint is published in models/ yet"))],
    ids=lambda entry: entry and entry["file"])
def test_each_published_checkpoint_reproduces_its_manifest_metrics(entry, monkeypatch):
    monkeypatch.delenv(manifest.MODELS_DIR_ENV, raising=False)
    seq_len = entry["dataset_options"].get("seq_len")
    model = vgzoo.load(entry["model"], dataset=entry["dataset"], seq_len=seq_len)
    measured = publish.evaluate(model, entry)
    for metric, expected in entry["metrics"].items():
        assert abs(measured[metric] - expected) <= entry["tolerance"], metric
