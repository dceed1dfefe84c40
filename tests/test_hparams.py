"""HParams: one experiment for the whole folder, read back through the HParams plugin's own backend.

The folder mixes a convnet pair (plain20/resnet20 on MNIST) and a sequence pair
(rnn/lstm on the adding problem), as a user's `tensorboard_logs/` does; the
requests are the ones the HParams tab sends.
"""
import dataclasses
import json
import sys
from pathlib import Path

import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as tb_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.custom_scalar import custom_scalars_plugin
from tensorboard.plugins.hparams import hparams_plugin, metadata, plugin_data_pb2
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

import vgzoo
from vgzoo.architectures import registry
from vgzoo.observe import hparams
from vgzoo.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).parent / "browser"))
import tiny_runs  # noqa: E402

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def tensorboard(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = tb_data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider,
                                    multiplexer=multiplexer)
    plugins = [hparams_plugin.HParamsPlugin(context),
               custom_scalars_plugin.CustomScalarsPlugin(context)]
    app = application.TensorBoardWSGI(plugins, data_provider=provider)
    return werkzeug_test.Client(app, wrappers.Response)


def post(client, route, body):
    response = client.post(f"/data/plugin/hparams/{route}", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 200, response.data
    return json.loads(response.data)


def session_groups(client, *col_params):
    """What the tab asks for: every column, with the given filters."""
    filtered = {column["hparam"] for column in col_params}
    columns = list(col_params) + [{"hparam": info.name, "includeInResult": True}
                                  for info in hparams.experiment().hparam_infos
                                  if info.name not in filtered]
    return post(client, "session_groups", {
        "experimentName": "", "allowedStatuses": STATUSES, "colParams": columns,
        "startIndex": 0, "sliceSize": 100,
    })["sessionGroups"]


@pytest.fixture(scope="module")
def folder(tiny_log_folder):
    return tiny_log_folder


@pytest.fixture(scope="module")
def client(folder):
    return tensorboard(folder)


@pytest.fixture(scope="module")
def experiment(client):
    return post(client, "experiment", {"experimentName": "", "hparamsLimit": 1000})


def displayed_by_default(experiment):
    """The columns the HParams tab checks at first: the first five, those that differ first."""
    infos = experiment["hparamInfos"]
    ordered = [info for info in infos if info.get("differs")] + [
        info for info in infos if not info.get("differs")]
    return [info["name"] for info in ordered[:5]]


def test_a_mixed_folder_shows_every_knob_of_both_families(experiment):
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    for knob in ("model", "dataset", "residual", "activation", "initializer", "batch_norm",
                 "preactivation", "depth", "cell", "width", "chrono", "optimizer", "seed",
                 "learning_rate", "batch_size", "global_clipnorm", "seq_len"):
        assert knob in infos, knob


def test_the_model_and_the_knob_a_pair_varies_are_shown_by_default(experiment):
    shown = displayed_by_default(experiment)
    assert {"model", "residual", "cell"} <= set(shown)


def test_domains_are_typed_so_the_tab_can_filter(experiment):
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    assert infos["residual"]["type"] == "DATA_TYPE_BOOL"
    assert infos["residual"]["domainDiscrete"] == [False, True]
    assert infos["activation"]["type"] == "DATA_TYPE_STRING"
    assert set(infos["activation"]["domainDiscrete"]) == set(registry.ACTIVATIONS)
    assert set(infos["cell"]["domainDiscrete"]) >= {"rnn", "lstm", "gru"}
    assert set(infos["optimizer"]["domainDiscrete"]) == {"sgd", "adam"}
    assert infos["learning_rate"]["type"] == "DATA_TYPE_FLOAT64"
    # Integers are strings, so the table prints 20 rather than 20.000.
    assert infos["depth"]["type"] == infos["seed"]["type"] == "DATA_TYPE_STRING"
    assert all(info["type"] != "DATA_TYPE_UNSET" for info in infos.values())


def test_trial_ids_name_the_run_and_values_print_as_written(client, folder):
    groups = {group["name"]: group for group in session_groups(client)}
    expected = {run.relative_to(folder).as_posix(): name
                for name, run in tiny_runs.runs_in(folder).items()}
    assert set(groups) == set(expected)
    for trial, name in expected.items():
        assert groups[trial]["hparams"]["model"] == name
    plain = groups[next(t for t, n in expected.items() if n == "plain20")]["hparams"]
    assert plain["depth"] == "8" and plain["seed"] == "0" and plain["batch_size"] == "32"
    assert plain["residual"] is False and plain["learning_rate"] == pytest.approx(0.1)
    assert "cell" not in plain
    lstm = groups[next(t for t, n in expected.items() if n == "lstm")]["hparams"]
    assert lstm["cell"] == "lstm" and lstm["width"] == "4" and lstm["seq_len"] == "10"
    assert "residual" not in lstm


def test_finished_runs_have_status_success_and_final_metrics(client):
    for group in session_groups(client):
        (session,) = group["sessions"]
        assert session["status"] == "STATUS_SUCCESS", group["name"]
        metrics = {(value["name"].get("group", ""), value["name"]["tag"])
                   for value in session["metricValues"]}
        assert {("", "final/loss"), ("", "final/val_loss"), ("train", "vanishing_ratio"),
                ("train", "epoch_loss"), ("validation", "epoch_loss")} <= metrics


def test_filters_on_typed_domains_select_runs(client):
    def models(*col_params):
        return sorted(group["hparams"]["model"] for group in session_groups(client, *col_params))

    residual_only = {"hparam": "residual", "filterDiscrete": [True], "excludeMissingValues": True}
    assert models(residual_only) == ["resnet20"]
    lstm_only = {"hparam": "cell", "filterDiscrete": ["lstm"], "excludeMissingValues": True}
    assert models(lstm_only) == ["lstm"]
    sgd_rates = {"hparam": "learning_rate", "filterInterval": {"minValue": 0.01, "maxValue": 1}}
    assert models(sgd_rates) == ["plain20", "resnet20"]
    depth_eight = {"hparam": "depth", "filterRegexp": "^8$", "excludeMissingValues": True}
    assert models(depth_eight) == ["plain20", "resnet20"]


def test_every_run_declares_the_same_experiment(folder):
    declared = []
    for run in tiny_runs.runs_in(folder).values():
        accumulator = EventAccumulator(str(run))
        accumulator.Reload()
        content = accumulator.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content
        declared.append(plugin_data_pb2.HParamsPluginData.FromString(content).experiment)
    assert len(declared) == 4
    assert all(experiment == declared[0] for experiment in declared)


def test_no_run_writes_a_custom_scalars_layout(client):
    listing = json.loads(client.get("/data/plugins_listing").data)
    assert listing["custom_scalars"]["enabled"] is False


def test_the_experiment_covers_every_knob_of_the_registry_and_every_training_option():
    names = {info.name for info in hparams.experiment().hparam_infos}
    assert set(registry.KNOB_TYPES) <= names
    for name in registry.list_models():
        assert set(vgzoo.get_spec(name).defaults) <= names, name
    options = {field.name for field in dataclasses.fields(TrainConfig)
               if not field.metadata["where"] and field.name not in ("log_layers", "weights")}
    assert options <= names


def test_a_custom_keras_model_has_values_too():
    config = {"model": {"name": "my_model", "knobs": {}},
              "train": TrainConfig(dataset="custom").to_json(),
              "dataset": {"name": "custom"}, "learning_rate": 0.1, "steps_per_epoch": 3}
    values = hparams.run_hparams(config)
    assert values["model"] == "my_model" and values["family"] == "custom"
    assert values["steps_per_epoch"] == "3" and values["learning_rate"] == 0.1


def test_a_failed_run_says_so_and_a_later_end_replaces_it(tmp_path):
    run_dir = tmp_path / "mnist" / "plain20" / "run-1"
    run_dir.mkdir(parents=True)
    config = {"model": {"name": "plain20", "family": "convnet",
                        "arguments": {"residual": False, "depth": 20}},
              "train": TrainConfig().to_json(), "dataset": {"name": "mnist"}, "learning_rate": 0.1}
    hparams.write_run_start(run_dir, config, run_dir.name)
    hparams.write_run_end(run_dir, "failure")
    client = tensorboard(tmp_path)
    (group,) = session_groups(client)
    assert group["name"] == "mnist/plain20/run-1"
    assert group["sessions"][0]["status"] == "STATUS_FAILURE"
    hparams.write_final_metrics(run_dir, {"loss": [1.0]}, 1)
    assert len(list(run_dir.glob(f"*{hparams.STATUS_SUFFIX}"))) == 1
    (group,) = session_groups(tensorboard(tmp_path))
    assert group["sessions"][0]["status"] == "STATUS_SUCCESS"
