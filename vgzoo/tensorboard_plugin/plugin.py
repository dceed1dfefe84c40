"""The `vgzoo` tab's backend: a TBPlugin whose routes read TensorBoard's data provider.

Routes, under `/data/plugin/vgzoo/`:

- `runs`: the vgzoo runs of the folder (model, partner, dataset, the knob
  the pair varies in) and the matched pairs found among them;
- `run?run=<dataset>/<model>/<run>`: one run's gradient norm per layer in
  depth order at each recorded step, its vanishing ratio, `grad_reach`,
  losses, and for sequence models the gradient norm per timestep;
- `static/*`: the page (`index.js`, `style.css`), served from the package.

The page fetches both members of a pair and draws them on shared axes and
one colour scale.
"""
import json
import math
import mimetypes
import posixpath
from pathlib import Path

from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.context import RequestContext
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from vgzoo.tensorboard_plugin import PLUGIN_NAME, TIMESTEP_TAG, depth, pairs

STATIC = Path(__file__).resolve().parent / "static"
SCALARS, TEXT = "scalars", "text"
CONFIG_TAG = "config"
GRAD_PREFIX = "grad_norm/"
SERIES = ("vanishing_ratio", "grad_reach", "step_loss", "epoch_loss")
# Samples a time series keeps (TensorBoard keeps 1,000 scalars a series, and
# this many of the per-timestep vectors: `VgzooLoader` asks for them).
SAMPLES = 1000


class VgzooLoader(base_plugin.TBLoader):
    """Loads the plugin; keeps as many per-timestep vectors as scalars, unless told otherwise.

    TensorBoard keeps 10 samples a series of a plugin it does not know, which
    would leave the timestep heat map 10 rows; `--samples_per_plugin
    vgzoo=N` still decides.
    """

    def fix_flags(self, flags):
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, dict):
            samples.setdefault(PLUGIN_NAME, SAMPLES)

    def load(self, context):
        return VgzooPlugin(context)


class VgzooPlugin(base_plugin.TBPlugin):
    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._data = context.data_provider
        self._logdir = context.logdir
        hints = getattr(context, "sampling_hints", None) or {}
        self._samples = hints.get(PLUGIN_NAME, SAMPLES)

    def get_plugin_apps(self):
        return {
            "/runs": self._serve_runs,
            "/run": self._serve_run,
            "/static/*": self._serve_static,
        }

    def data_plugin_names(self):
        return (PLUGIN_NAME,)

    def is_active(self):
        """Any run with a `vanishing_ratio`, which every vgzoo run writes."""
        if self._data is None:
            return False
        found = self._data.list_scalars(
            RequestContext(), experiment_id="", plugin_name=SCALARS,
            run_tag_filter=provider.RunTagFilter(tags=["vanishing_ratio"]),
        )
        return any(found.values())

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/static/index.js", tab_name="vgzoo")

    # ---- reading -------------------------------------------------------------------

    def configs(self, ctx, experiment):
        """{run root: config} for every vgzoo run: its `config` text summary, else config.json."""
        found = self._data.read_tensors(
            ctx, experiment_id=experiment, plugin_name=TEXT, downsample=1,
            run_tag_filter=provider.RunTagFilter(tags=[CONFIG_TAG]),
        )
        configs = {}
        for run, tags in found.items():
            data = tags.get(CONFIG_TAG)
            if not data or not (run == "train" or run.endswith("/train")):
                continue
            config = pairs.parse_config(_text(data[-1].numpy))
            if config is not None:
                configs[pairs.run_root(run)] = config
        for root in self._roots_without_text(ctx, experiment, configs):
            # A `vgzoo.watch` run of the user's own model may record no model: named by its folder.
            configs[root] = self._config_file(root) or {
                "model": {"name": root.rsplit("/", 1)[-1] if root != "." else "run"}}
        return configs

    def _roots_without_text(self, ctx, experiment, configs):
        listed = self._data.list_scalars(
            ctx, experiment_id=experiment, plugin_name=SCALARS,
            run_tag_filter=provider.RunTagFilter(tags=["vanishing_ratio"]),
        )
        return [pairs.run_root(run) for run in listed if pairs.run_root(run) not in configs]

    def _config_file(self, root):
        """config.json beside the events, for runs whose text summary is missing."""
        if not self._logdir or "://" in self._logdir:
            return None
        try:
            text = (Path(self._logdir).expanduser() / root / "config.json").read_text()
        except OSError:
            return None
        return pairs.parse_config(text)

    def run_data(self, ctx, experiment, root, config):
        train, validation = pairs.subrun(root, "train"), pairs.subrun(root, "validation")
        listed = self._data.list_scalars(
            ctx, experiment_id=experiment, plugin_name=SCALARS,
            run_tag_filter=provider.RunTagFilter(runs=[train]),
        ).get(train, {})
        layer_tags = [tag for tag in listed if tag.startswith(GRAD_PREFIX)]
        scalars = self._data.read_scalars(
            ctx, experiment_id=experiment, plugin_name=SCALARS, downsample=SAMPLES,
            run_tag_filter=provider.RunTagFilter(runs=[train, validation],
                                                 tags=layer_tags + list(SERIES)),
        )
        train_scalars = scalars.get(train, {})
        layers = depth.in_depth_order([tag[len(GRAD_PREFIX):] for tag in layer_tags], config)
        steps, matrix = _matrix([train_scalars.get(GRAD_PREFIX + layer, []) for layer, _ in layers])
        result = dict(pairs.describe(root, config))
        names = depth.shown_names([layer for layer, _ in layers])  # the tags' index is for sorting
        result.update(
            layers=[{"name": name, "kind": kind} for name, (_, kind) in zip(names, layers)],
            steps=steps,
            grad_norm=matrix,
            series={tag: _series(train_scalars.get(tag)) for tag in SERIES},
            validation_loss=_series(scalars.get(validation, {}).get("epoch_loss")),
            timesteps=self._timesteps(ctx, experiment, train),
        )
        return result

    def _timesteps(self, ctx, experiment, train):
        found = self._data.read_tensors(
            ctx, experiment_id=experiment, plugin_name=PLUGIN_NAME, downsample=self._samples,
            run_tag_filter=provider.RunTagFilter(runs=[train], tags=[TIMESTEP_TAG]),
        ).get(train, {}).get(TIMESTEP_TAG)
        if not found:
            return None
        return {"steps": [datum.step for datum in found],
                "norms": [[_finite(value) for value in datum.numpy.reshape(-1).tolist()]
                          for datum in found]}

    # ---- routes --------------------------------------------------------------------

    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx, experiment = _request_context(request)
        configs = self.configs(ctx, experiment)
        body = {
            "runs": [pairs.describe(root, configs[root]) for root in sorted(configs)],
            "pairs": [list(pair) for pair in pairs.find_pairs(configs)],
        }
        return _json(request, body)

    @wrappers.Request.application
    def _serve_run(self, request):
        ctx, experiment = _request_context(request)
        root = request.args.get("run", "")
        configs = self.configs(ctx, experiment)
        if root not in configs:
            return _json(request, {"error": f"no vgzoo run {root!r} in this folder"}, code=404)
        return _json(request, self.run_data(ctx, experiment, root, configs[root]))

    @wrappers.Request.application
    def _serve_static(self, request):
        """A file of `static/`, refusing any path that climbs out of it."""
        name = request.path.split("/static/", 1)[-1]
        normal = posixpath.normpath(name)
        path = (STATIC / normal).resolve()
        if normal.startswith(("..", "/")) or "\\" in name or STATIC not in path.parents \
                or not path.is_file():
            return http_util.Respond(request, "Not found", "text/plain", code=404)
        mimetype = "text/javascript" if path.suffix == ".js" else mimetypes.guess_type(path.name)[0]
        return http_util.Respond(request, path.read_bytes(), mimetype or "application/octet-stream")


def _request_context(request):
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _json(request, body, code=200):
    text = json.dumps(body, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, text, "application/json", code=code)


def _text(array):
    value = array.reshape(-1)[0] if array.size else b""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _finite(value):
    """JSON has no NaN or infinity: a non-finite value is sent as null."""
    value = float(value)
    return value if math.isfinite(value) else None


def _series(data):
    data = data or []
    return {"steps": [datum.step for datum in data], "values": [_finite(datum.value) for datum in data]}


def _matrix(columns):
    """(steps, rows): one row a recorded step, one entry a layer (null where missing)."""
    steps = sorted({datum.step for column in columns for datum in column})
    index = {step: row for row, step in enumerate(steps)}
    rows = [[None] * len(columns) for _ in steps]
    for layer, column in enumerate(columns):
        for datum in column:
            rows[index[datum.step]][layer] = _finite(datum.value)
    return steps, rows
