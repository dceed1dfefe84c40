"""The vgzoo TensorBoard tab: its routes on real event files, through TensorBoard's own app.

The runs are real (tests/browser/tiny_runs.py: a convnet pair on MNIST and a
sequence pair on the adding problem, trained once per session); TensorBoard's
event multiplexer and data provider read them, and TensorBoard's WSGI app
routes the requests, as `tensorboard --logdir` does.
"""
import importlib.metadata
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as tb_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.util import tensor_util
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from vgzoo.tensorboard_plugin import TIMESTEP_TAG, depth, pairs, plugin

sys.path.insert(0, str(Path(__file__).parent / "browser"))
import tiny_runs  # noqa: E402

PREFIX = "/data/plugin/vgzoo"


def serve(logdir):
    """TensorBoard's WSGI app over `logdir` with the vgzoo plugin, loaded as the entry point loads it."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"vgzoo": 1000})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = tb_data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider,
                                    multiplexer=multiplexer, sampling_hints={"vgzoo": 1000})
    vgzoo_plugin = plugin.VgzooLoader().load(context)
    app = application.TensorBoardWSGI([vgzoo_plugin], data_provider=provider)
    return werkzeug_test.Client(app, wrappers.Response), vgzoo_plugin


def get_json(client, path, **query):
    response = client.get(PREFIX + path, query_string=query)
    return response.status_code, json.loads(response.data)


@pytest.fixture(scope="module")
def folder(tiny_log_folder):
    return tiny_log_folder


@pytest.fixture(scope="module")
def client(folder):
    return serve(folder)[0]


@pytest.fixture(scope="module")
def runs(folder):
    return {name: run_dir.relative_to(folder).as_posix()
            for name, run_dir in tiny_runs.runs_in(folder).items()}


def test_the_package_registers_the_plugin_for_tensorboard():
    found = [entry for entry in importlib.metadata.entry_points(group="tensorboard_plugins")
             if entry.name == "vgzoo"]
    assert len(found) == 1, "reinstall the package (make install) to register the entry point"
    loader = application.make_plugin_loader(found[0].load())
    assert isinstance(loader, plugin.VgzooLoader)


def test_the_tab_is_listed_enabled_and_loads_its_module_from_the_package(client):
    response = client.get("/data/plugins_listing")
    listing = json.loads(response.data)["vgzoo"]
    assert listing["enabled"] is True
    assert listing["tab_name"] == "vgzoo"
    assert listing["loading_mechanism"] == {"type": "IFRAME",
                                            "module_path": f"{PREFIX}/static/index.js"}
    entry = client.get("/data/plugin_entry.html", query_string={"name": "vgzoo"})
    assert b"./static/index.js" in entry.data


def test_the_tab_is_off_on_a_folder_without_vgzoo_runs(tmp_path):
    import tensorflow as tf

    with tf.summary.create_file_writer(str(tmp_path / "other")).as_default():
        tf.summary.scalar("loss", 1.0, step=0)
    client, vgzoo_plugin = serve(tmp_path)
    assert vgzoo_plugin.is_active() is False
    assert json.loads(client.get("/data/plugins_listing").data)["vgzoo"]["enabled"] is False
    assert get_json(client, "/runs") == (200, {"runs": [], "pairs": []})


def test_a_run_without_a_recorded_config_is_listed_by_its_folder(tmp_path):
    """As `vgzoo.watch` on a user's own model may leave it: the step's scalars, no model record."""
    import tensorflow as tf

    with tf.summary.create_file_writer(str(tmp_path / "mine" / "train")).as_default():
        for step in range(2):
            for tag, value in (("grad_norm/out", 1.0), ("grad_norm/hidden", 0.5),
                               ("vanishing_ratio", -0.3), ("step_loss", 2.0)):
                tf.summary.scalar(tag, value, step=step)
    client, _ = serve(tmp_path)
    _, body = get_json(client, "/runs")
    assert [(run["run"], run["model"]) for run in body["runs"]] == [("mine", "mine")]
    assert body["pairs"] == []
    status, data = get_json(client, "/run", run="mine")
    assert status == 200
    assert [layer["name"] for layer in data["layers"]] == ["hidden", "out"]  # by name, no registry
    assert data["grad_norm"] == [[0.5, 1.0], [0.5, 1.0]]


def test_runs_lists_every_run_and_the_matched_pairs_plain_member_first(client, runs):
    status, body = get_json(client, "/runs")
    assert status == 200
    described = {run["run"]: run for run in body["runs"]}
    assert set(described) == set(runs.values())
    plain = described[runs["plain20"]]
    assert (plain["model"], plain["partner"], plain["dataset"]) == ("plain20", "resnet20", "mnist")
    assert (plain["varies"], plain["value"], plain["sequence"]) == ("residual", False, False)
    lstm = described[runs["lstm"]]
    assert (lstm["varies"], lstm["value"], lstm["sequence"]) == ("cell", "lstm", True)
    assert sorted(map(tuple, body["pairs"])) == sorted([(runs["plain20"], runs["resnet20"]),
                                                        (runs["rnn"], runs["lstm"])])


def _events(folder, run, tag):
    accumulator = EventAccumulator(str(Path(folder) / run / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator.Tensors(tag)


def test_run_gives_the_gradient_norm_of_every_layer_in_depth_order(client, runs, folder):
    import vgzoo
    from vgzoo.observe.summaries import layers_in_order

    status, data = get_json(client, "/run", run=runs["plain20"])
    assert status == 200
    model = vgzoo.create_model("plain20", (28, 28, 1), 10, depth=8)
    assert [layer["name"] for layer in data["layers"]] == layers_in_order(model.trainable_variables)
    kinds = {layer["name"]: layer["kind"] for layer in data["layers"]}
    assert kinds["stem_bn"] == kinds["stage2_block1_1_bn"] == "norm"
    assert kinds["stem_conv"] == kinds["stage3_block1_conv2"] == kinds["predictions"] == "weight"
    # Two epochs of two batches, every step recorded: the numbers the event file holds.
    assert data["steps"] == [0, 1, 2, 3]
    column = [layer["name"] for layer in data["layers"]].index("stage2_block1_conv1")
    written = _events(folder, runs["plain20"], "grad_norm/06_stage2_block1_conv1")
    assert [row[column] for row in data["grad_norm"]] == pytest.approx(
        [tensor_util.make_ndarray(event.tensor_proto).item() for event in written])


def test_run_gives_the_curves_of_both_kinds_of_run(client, runs):
    _, convnet = get_json(client, "/run", run=runs["resnet20"])
    assert convnet["series"]["vanishing_ratio"]["steps"] == [0, 1, 2, 3]
    assert convnet["series"]["step_loss"]["steps"] == [0, 1, 2, 3]
    assert convnet["series"]["epoch_loss"]["steps"] == [0, 1]
    assert convnet["validation_loss"]["steps"] == [0, 1]
    assert convnet["series"]["grad_reach"]["steps"] == []
    assert convnet["timesteps"] is None
    _, sequence = get_json(client, "/run", run=runs["rnn"])
    assert sequence["series"]["grad_reach"]["steps"] == list(range(6))
    assert [layer["name"] for layer in sequence["layers"]] == ["recurrent1/cell", "predictions"]


def test_run_gives_the_per_timestep_norms_the_train_step_wrote(client, runs, folder):
    _, data = get_json(client, "/run", run=runs["lstm"])
    timesteps = data["timesteps"]
    assert timesteps["steps"] == list(range(6))
    assert all(len(row) == tiny_runs.SEQ_LEN for row in timesteps["norms"])
    written = _events(folder, runs["lstm"], TIMESTEP_TAG)
    assert np.array(timesteps["norms"]) == pytest.approx(
        np.array([tensor_util.make_ndarray(event.tensor_proto) for event in written]))
    assert np.all(np.array(timesteps["norms"]) > 0)


def test_an_unknown_run_is_a_404_with_a_reason(client):
    status, body = get_json(client, "/run", run="mnist/nothing/here")
    assert status == 404
    assert "no vgzoo run" in body["error"]


def test_the_page_is_served_from_the_package_and_fetches_nothing_else(client):
    for name, mimetype in (("index.js", "text/javascript"), ("charts.js", "text/javascript"),
                           ("style.css", "text/css")):
        response = client.get(f"{PREFIX}/static/{name}")
        assert response.status_code == 200, name
        assert response.mimetype == mimetype
    static = Path(plugin.__file__).parent / "static"
    for path in static.iterdir():
        text = path.read_text()
        urls = {word for word in text.replace("'", " ").replace('"', " ").split()
                if "://" in word}
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
    assert "import " not in (static / "charts.js").read_text()  # no dependencies


@pytest.mark.parametrize("path", ["static/../plugin.py", "static/%2e%2e/plugin.py",
                                  "static/..%2fplugin.py", "static/missing.js", "static/"])
def test_static_refuses_paths_outside_its_folder(client, path):
    assert client.get(f"{PREFIX}/{path}").status_code == 404


def test_the_loader_keeps_enough_timestep_vectors_for_the_heat_map():
    flags = type("Flags", (), {})()
    flags.samples_per_plugin = {}
    plugin.VgzooLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"vgzoo": plugin.SAMPLES}
    flags.samples_per_plugin = {"vgzoo": 50}
    plugin.VgzooLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"vgzoo": 50}  # the user's flag wins


# ---- depth order ---------------------------------------------------------------------------

ZOO = [
    ("plain20", (12, 12, 1), 3, dict(depth=8)),
    ("resnet20", (12, 12, 1), 3, dict(depth=8, preactivation=True)),
    ("resnet20", (12, 12, 1), 3, dict(depth=8, batch_norm=False)),
    ("resmlp10", (6, 6, 1), 3, dict(depth=3, width=4, batch_norm=True)),
    ("lstm", (5, 2), 1, dict(width=4, depth=2, head="value")),
    ("gru", (5, 2), 3, dict(width=4, head="per_step")),
    ("transformer", (5, 2), 3, dict(width=8, depth=2, heads=2, head="classes")),
]


@pytest.mark.parametrize("name, shape, classes, knobs", ZOO)
def test_depth_order_of_zoo_models_is_their_variable_order(name, shape, classes, knobs):
    import vgzoo
    from vgzoo.observe.summaries import layers_in_order

    spec = vgzoo.get_spec(name)
    model = vgzoo.create_model(name, shape, classes, **knobs)
    expected = layers_in_order(model.trainable_variables)
    config = {"model": {"name": name, "arguments": spec.resolve(knobs)},
              "dataset": {"input_shape": list(shape), "num_classes": classes}}
    shuffled = list(expected)
    random.Random(0).shuffle(shuffled)
    ordered = depth.in_depth_order(shuffled, config)
    assert [layer for layer, _ in ordered] == expected
    norms = {layer for layer, kind in ordered if kind == depth.NORM}
    assert norms == {layer for layer in expected if layer.endswith(("_bn", "_norm"))}


def test_depth_order_without_the_registry_goes_by_the_names():
    layers = ["predictions", "stage2_block10_conv1", "stage1_block2_conv1", "stem_bn",
              "stage2_block2_conv1", "stem_conv", "head_bn"]
    config = {"model": {"name": "my_own_model"}, "dataset": {"input_shape": [8, 8, 1]}}
    ordered = depth.in_depth_order(layers, config)
    assert [layer for layer, _ in ordered] == [
        "stem_bn", "stem_conv", "stage1_block2_conv1", "stage2_block2_conv1",
        "stage2_block10_conv1", "head_bn", "predictions"]
    assert dict(ordered)["head_bn"] == depth.NORM and dict(ordered)["stem_conv"] == depth.WEIGHT


def test_depth_order_follows_a_recorded_order_or_an_index_in_the_tag():
    recorded = {"model": {"name": "x"}, "layer_order": ["b", "c_bn", "a"]}
    assert depth.in_depth_order(["a", "b", "c_bn"], recorded) == [
        ("b", depth.WEIGHT), ("c_bn", depth.NORM), ("a", depth.WEIGHT)]
    indexed = ["10_predictions", "02_stem_bn", "01_stem_conv"]
    assert [layer for layer, _ in depth.in_depth_order(indexed, {"model": {}})] == [
        "01_stem_conv", "02_stem_bn", "10_predictions"]


# ---- pairs ---------------------------------------------------------------------------------


def _config(model, partner, seed=0, dataset="mnist", **arguments):
    return {"model": {"name": model, "partner": partner, "arguments": arguments},
            "train": {"seed": seed, "epochs": 10, "logdir": "anywhere"},
            "dataset": {"name": dataset, "input_shape": [28, 28, 1]}}


def test_pairs_match_the_partner_trained_alike_in_the_same_dataset_folder():
    configs = {
        "mnist/plain20/a-seed0": _config("plain20", "resnet20", 0, residual=False),
        "mnist/plain20/b-seed1": _config("plain20", "resnet20", 1, residual=False),
        "mnist/resnet20/c-seed1": _config("resnet20", "plain20", 1, residual=True),
        "mnist/resnet20/d-seed0": _config("resnet20", "plain20", 0, residual=True),
        "cifar10/resnet20/e-seed0": _config("resnet20", "plain20", 0, "cifar10", residual=True),
    }
    assert pairs.find_pairs(configs) == [
        ("mnist/plain20/a-seed0", "mnist/resnet20/d-seed0"),
        ("mnist/plain20/b-seed1", "mnist/resnet20/c-seed1"),
    ]
    assert pairs.partner_of("cifar10/resnet20/e-seed0", configs) is None


def test_a_sequence_group_pairs_each_cell_with_the_tanh_rnn_listed_first():
    configs = {
        "adding/gru/1": _config("gru", "rnn", cell="gru"),
        "adding/lstm/2": _config("lstm", "rnn", cell="lstm"),
        "adding/rnn/3": _config("rnn", "lstm", cell="rnn"),
    }
    assert pairs.find_pairs(configs) == [("adding/rnn/3", "adding/gru/1"),
                                         ("adding/rnn/3", "adding/lstm/2")]


def test_the_config_text_summary_parses_and_other_text_does_not():
    config = _config("plain20", "resnet20")
    assert pairs.parse_config("```json\n" + json.dumps(config) + "\n```") == config
    assert pairs.parse_config("not json") is None
    assert pairs.parse_config(json.dumps({"model": "plain20"})) is None
    assert pairs.run_root("mnist/plain8/x/train") == "mnist/plain8/x"
    assert pairs.run_root("train") == "."
