"""Run-level summaries for comparing runs: HParams and a custom-scalars layout.

Each run records its knobs through TensorBoard's HParams plugin, with its
final metrics, so the HParams tab sorts and filters runs; and a layout that
puts a matched pair's loss, accuracy and vanishing ratio on shared charts.
"""
import tensorflow as tf
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
from tensorboard.plugins.hparams import api as hparams_api

FINAL_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def run_hparams(config):
    """The knobs of a run as HParams values (bool, int, float or str)."""
    model = config["model"]
    arguments = model.get("arguments", {})
    train = config["train"]
    values = {
        "model": model["name"],
        "family": model.get("family", "custom"),
        "dataset": config["dataset"]["name"],
        "optimizer": train["optimizer"],
        "learning_rate": float(config["learning_rate"]),
        "clipnorm": float(train.get("clipnorm") or 0.0),
        "global_clipnorm": float(train.get("global_clipnorm") or 0.0),
        "seed": int(train["seed"]),
    }
    for knob in ("residual", "depth", "width", "activation", "initializer", "batch_norm", "cell"):
        if knob in arguments:
            value = arguments[knob]
            values[knob] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return values


def pair_layout(model_name, partner_name):
    charts = [
        layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[pattern]))
        for title, pattern in (
            ("loss", r"^epoch_loss$"),
            ("accuracy", r"^epoch_accuracy$"),
            ("vanishing ratio (log10 first/last layer gradient norm)", r"^vanishing_ratio$"),
        )
    ]
    first, second = sorted((model_name, partner_name))
    category = layout_pb2.Category(title=f"matched pair: {first} vs {second}", chart=charts)
    return layout_pb2.Layout(category=[category])


def write_run_start(run_dir, config, run_id):
    """HParams of the run and its pair's chart layout, in the run's root folder."""
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default(step=0):
        hparams_api.hparams_config(
            hparams=[hparams_api.HParam(name) for name in run_hparams(config)],
            metrics=[hparams_api.Metric(f"final/{name}") for name in FINAL_METRICS],
        )
        hparams_api.hparams(run_hparams(config), trial_id=run_id)
        partner = config["model"].get("partner")
        if partner:
            layout = pair_layout(config["model"]["name"], partner)
            tf.summary.experimental.write_raw_pb(
                custom_scalar_summary.pb(layout).SerializeToString(), step=0
            )
    writer.close()


def write_final_metrics(run_dir, history, epoch):
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default(step=epoch):
        for name in FINAL_METRICS:
            if history.get(name):
                tf.summary.scalar(f"final/{name}", history[name][-1])
    writer.close()
