"""Run-level summaries for TensorBoard's HParams tab: one experiment, a session per run.

The HParams plugin shows one experiment description per log folder, and when
several runs each declare one it picks one of them. So every run declares the
same description: every knob any vgzoo run can have (the registry's knobs and
builder arguments, and the training options), typed, with the known choices
as discrete domains. A folder mixing convnet pairs and sequence groups then
shows all the columns, and `model`, `dataset` and the knobs a pair or group
varies in (`residual`, `cell`) are marked as differing, so the tab shows
them by default.

Integers are recorded as strings: the HParams table prints every number with
five significant digits (20 as "20.000"). Each run is a session whose trial
ID names its folder (`mnist/resnet20/<run>`); its status (success, failure)
is written when it ends.

No custom-scalars layout is written: tag regexes match every run of the
folder, so a per-run layout would put every run on every pair's charts.
"""
import dataclasses
import time
from pathlib import Path

import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary

from vgzoo.architectures import registry
from vgzoo.data.tasks import TASK_NAMES
from vgzoo.training import config as train_config

CUSTOM = "custom"
FINAL_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# (group, tag, display name, dataset type): group is the run's subfolder.
METRICS = tuple(
    ("", f"final/{name}", f"final {name}", api_pb2.DATASET_UNKNOWN) for name in FINAL_METRICS
) + (
    ("train", "vanishing_ratio", "vanishing ratio (log10 first/last layer)", api_pb2.DATASET_TRAINING),
    ("train", "grad_reach", "grad reach (log10 first/last timestep)", api_pb2.DATASET_TRAINING),
    ("train", "epoch_loss", "train loss", api_pb2.DATASET_TRAINING),
    ("validation", "epoch_loss", "validation loss", api_pb2.DATASET_VALIDATION),
)
# Training options that say where a run goes, or are not values (paths, globs).
_NOT_HPARAMS = ("dataset", "log_layers", "weights")
# Whatever the folder holds, these separate its runs.
_SHOWN = ("model", "dataset")
# No "running": the tab keeps the first status it reads, so it would never see the end.
STATUS = {"success": api_pb2.STATUS_SUCCESS, "failure": api_pb2.STATUS_FAILURE}
STATUS_SUFFIX = ".vgzoo-status"


def _kind(value_type, choices):
    if value_type is bool:
        return "bool"
    if value_type is int:
        return "int"
    if value_type is float:
        return "float"
    return "choice" if choices else "text"


def _model_hparams():
    """{name: (kind, choices, description)} for the registry's knobs and builder arguments."""
    specs = [registry.get_spec(name) for name in registry.list_models()]
    families = sorted({spec.family for spec in specs}) + [CUSTOM]
    schema = {
        "model": ("choice", registry.list_models(), "registered model name"),
        "family": ("choice", families, "architecture family"),
    }
    for knob, (value_type, choices) in registry.KNOB_TYPES.items():
        schema[knob] = (_kind(value_type, choices), choices, "model knob")
    for varies in sorted({spec.varies for spec in specs}):
        values = sorted({spec.defaults[varies] for spec in specs if varies in spec.defaults},
                        key=str)
        value_type = type(values[0])
        schema[varies] = (_kind(value_type, values), values if value_type is str else None,
                          "what a matched pair or group differs in")
    return schema


def _training_hparams():
    schema = {"dataset": ("choice", list(TASK_NAMES) + [CUSTOM], "task or data set")}
    for field in dataclasses.fields(train_config.TrainConfig):
        if field.metadata["where"] or field.name in _NOT_HPARAMS:
            continue
        choices = field.metadata["choices"]
        schema[field.name] = (_kind(field.type, choices), choices, field.metadata["help"])
    return schema


def hparam_schema():
    """{name: (kind, choices, description)}: every knob a vgzoo run can have."""
    return dict(_model_hparams(), **_training_hparams())


def _hparam_info(name, kind, choices, description, shown):
    info = api_pb2.HParamInfo(name=name, description=description, differs=shown)
    if kind == "bool":
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend([False, True])
    elif kind == "float":
        info.type = api_pb2.DATA_TYPE_FLOAT64  # the tab offers a min/max filter
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        # An empty domain for open values: no checkbox list that would miss some.
        info.domain_discrete.SetInParent()
        if choices:
            info.domain_discrete.extend([str(choice) for choice in choices])
    return info


def experiment():
    """The experiment every run declares: the same for every run of every folder."""
    # The tab shows the first five by default, those marked `differs` first.
    shown = set(_SHOWN) | {registry.get_spec(name).varies for name in registry.list_models()}
    hparam_infos = [_hparam_info(name, *entry, shown=name in shown)
                    for name, entry in hparam_schema().items()]
    metric_infos = [
        api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag), display_name=display,
                           dataset_type=dataset_type)
        for group, tag, display, dataset_type in METRICS
    ]
    return api_pb2.Experiment(hparam_infos=hparam_infos, metric_infos=metric_infos)


def _typed(kind, value):
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return str(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def run_hparams(config):
    """The run's values for `hparam_schema()`, typed as the experiment declares them."""
    model = config["model"]
    train = dict(config.get("train", {}))
    train.update(learning_rate=config.get("learning_rate", train.get("learning_rate")),
                 steps_per_epoch=config.get("steps_per_epoch", train.get("steps_per_epoch")))
    raw = dict(train, **model.get("arguments", {}))
    raw.update(model=model["name"], family=model.get("family", CUSTOM),
               dataset=config.get("dataset", {}).get("name", train.get("dataset")))
    values = {}
    for name, (kind, _, _) in hparam_schema().items():
        value = _typed(kind, raw.get(name))
        if value is not None:
            values[name] = value
    return values


def trial_id(run_dir, run_id=None):
    """`<dataset>/<model>/<run>`: the run's folder below the log folder."""
    parts = Path(run_dir).parts[-3:]
    return "/".join(parts[:-1] + ((run_id or parts[-1]),))


def _summary(tag, plugin_data):
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data),
                      tensor=metadata.NULL_TENSOR)
    return summary.SerializeToString()


def write_run_start(run_dir, config, run_id):
    """The folder's experiment and this run's session (its knobs), in the run's root folder."""
    experiment_pb = _summary(metadata.EXPERIMENT_TAG,
                             plugin_data_pb2.HParamsPluginData(experiment=experiment()))
    session_pb = hparams_summary.hparams_pb(run_hparams(config), trial_id=trial_id(run_dir, run_id))
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default(step=0):
        tf.summary.experimental.write_raw_pb(experiment_pb, step=0)
        tf.summary.experimental.write_raw_pb(session_pb.SerializeToString(), step=0)
    writer.close()


def write_run_end(run_dir, status):
    """The run's status in the HParams tab: "success", or "failure" (diverged, crashed).

    Written into a file of its own, which replaces an earlier one (a failed
    run resumed to success ends as a success for a TensorBoard started after).
    """
    end = plugin_data_pb2.SessionEndInfo(status=STATUS[status], end_time_secs=time.time())
    for old in Path(run_dir).glob(f"events.out.tfevents.*{STATUS_SUFFIX}"):
        old.unlink()
    writer = tf.summary.create_file_writer(str(run_dir), filename_suffix=STATUS_SUFFIX)
    with writer.as_default(step=0):
        tf.summary.experimental.write_raw_pb(
            _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
            step=0,
        )
    writer.close()


def write_final_metrics(run_dir, history, epoch):
    """The last epoch's metrics as `final/*`, and the run's status: success."""
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default(step=epoch):
        for name in FINAL_METRICS:
            if history.get(name):
                tf.summary.scalar(f"final/{name}", history[name][-1])
    writer.close()
    write_run_end(run_dir, "success")
