"""A side-by-side report of finished runs, read back from their event files.

Everything in the report is measured: final losses and accuracies, the
gradient at the first layer relative to the last (`vanishing_ratio`, images)
or at the first timestep relative to the last (`grad_reach`, sequences) at
the first and last recorded steps, all read with TensorBoard's own event
reader; parameters from the rebuilt architecture. The verdict lines are
computed from those figures, never written by hand.
"""
import dataclasses
import itertools
from pathlib import Path

import numpy as np
from tensorboard.util import tensor_util

from vgzoo.architectures import factory, registry
from vgzoo.errors import VgzooError
from vgzoo.training import runs
from vgzoo.training.config import FROM_PYTHON
from vgzoo.observe import figures, tags as layer_tags
from vgzoo.analysis.events import open_events, scalar_series
from vgzoo.tensorboard_plugin import TIMESTEP_TAG

NEGLIGIBLE_LOG10 = 0.1  # a gradient ratio within 10^0.1 (26%) counts as the same


@dataclasses.dataclass
class RunSummary:
    name: str
    run_dir: Path
    config: dict
    parameters: object  # int, or None for a model outside the registry
    finals: dict  # loss, val_loss, accuracy, val_accuracy: last epoch's values
    curves: dict  # the same names: (epochs, values)
    flow_tag: str  # "vanishing_ratio" (images) or "grad_reach" (sequences)
    flow: tuple  # (steps, values) of flow_tag
    layers: list  # depth order, from the index in their tags
    layer_norms: dict  # recorded step -> grad_norm per layer, first and last step
    through_time: object  # (steps, rows): |dL/dx_t| per timestep at each recorded step, or None
    through_time_png: object  # the last recorded heat map, PNG bytes, or None
    wall_time: float  # seconds from the first recorded step to the last epoch


def _series(events, tag):
    pairs = scalar_series(events, tag)
    return [step for step, _ in pairs], [value for _, value in pairs]


def _through_time(events):
    """The per-timestep gradient norms the train step wrote, as (steps, rows), or None."""
    if TIMESTEP_TAG not in events.Tags()["tensors"]:
        return None  # not a sequence run, or recorded before the norms were kept as numbers
    records = sorted(events.Tensors(TIMESTEP_TAG), key=lambda record: record.step)
    return ([record.step for record in records],
            [tensor_util.make_ndarray(record.tensor_proto).reshape(-1) for record in records])


def _parameters(config):
    model = config["model"]
    if "family" not in model:
        return None
    spec = registry.get_spec(model["name"])
    knobs = {key: value for key, value in model["arguments"].items()
             if key in spec.knobs and value is not None}
    built = factory.create_model(spec.name, tuple(config["dataset"]["input_shape"]),
                                  config["dataset"]["num_classes"], **knobs)
    return built.count_params()


def summarize(run_dir, name=None):
    """What the report says about one run."""
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if not config or not (run_dir / "train").is_dir():
        raise VgzooError(f"{run_dir} is not a finished vgzoo run folder (no config.json or "
                         "train/ events): give the folder `vgzoo train` printed.")
    train, validation = open_events(run_dir / "train"), open_events(run_dir / "validation")
    curves = {"loss": _series(train, "epoch_loss"), "accuracy": _series(train, "epoch_accuracy"),
              "val_loss": _series(validation, "epoch_loss"),
              "val_accuracy": _series(validation, "epoch_accuracy")}
    tags = train.Tags()["tensors"]
    flow_tag = "grad_reach" if "grad_reach" in tags else "vanishing_ratio"
    ordered = layer_tags.in_depth_order([tag.split("/", 1)[1] for tag in tags if tag.startswith("grad_norm/")])
    layers = [layer for _, layer in ordered]
    norms = {layer: _series(train, f"grad_norm/{name}") for name, layer in ordered}
    steps = norms[layers[0]][0] if layers else []
    layer_norms = {step: [norms[layer][1][steps.index(step)] for layer in layers]
                   for step in sorted({steps[0], steps[-1]})} if steps else {}
    heat = train.Tensors(figures.HEATMAP_TAG) if figures.HEATMAP_TAG in tags else []
    walls = [record.wall_time for tag in ("step_loss", "epoch_loss") if tag in tags
             for record in train.Tensors(tag)]
    return RunSummary(
        name=name or config["model"]["name"], run_dir=run_dir, config=config,
        parameters=_parameters(config),
        finals={key: values[-1] for key, (_, values) in curves.items() if values},
        curves=curves, flow_tag=flow_tag, flow=_series(train, flow_tag), layers=layers,
        layer_norms=layer_norms, through_time=_through_time(train),
        # An image summary holds width, height, then the encoded picture.
        through_time_png=heat[-1].tensor_proto.string_val[2] if heat else None,
        wall_time=max(walls) - min(walls) if walls else 0.0,
    )


def _number(value, digits=4):
    return "—" if value is None else f"{value:.{digits}g}"


def _flow_cell(summary):
    steps, values = summary.flow
    if not values:
        return "—"
    return f"{values[0]:+.2f} (step {steps[0]}) → {values[-1]:+.2f} (step {steps[-1]})"


def table(summaries):
    """The Markdown table: one row per run."""
    flow = "grad_reach start → end" if summaries[0].flow_tag == "grad_reach" else \
        "vanishing_ratio first → last"
    lines = [f"| model | parameters | train loss | val loss | train accuracy | val accuracy | "
             f"{flow} | wall time |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for s in summaries:
        cells = [s.name, f"{s.parameters:,}" if s.parameters else "—",
                 *(_number(s.finals.get(key)) for key in ("loss", "val_loss", "accuracy", "val_accuracy")),
                 _flow_cell(s), f"{s.wall_time:.1f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(a, b):
    """One sentence comparing two runs, from their last recorded figures."""
    metric = "val_loss" if "val_loss" in a.finals and "val_loss" in b.finals else "loss"
    if not (a.flow[1] and b.flow[1]):
        better, worse = sorted((a, b), key=lambda s: s.finals.get(metric, np.inf))
        return (f"{better.name} reached {metric} {_number(better.finals.get(metric))} vs "
                f"{_number(worse.finals.get(metric))} for {worse.name} (no gradient recorded).")
    better, worse = sorted((a, b), key=lambda s: s.flow[1][-1], reverse=True)
    gap = better.flow[1][-1] - worse.flow[1][-1]
    where = "the first timestep" if a.flow_tag == "grad_reach" else "the first layer"
    relative = "the last timestep's" if a.flow_tag == "grad_reach" else "the last layer's"
    losses = (f"{metric} {_number(better.finals.get(metric))} vs "
              f"{_number(worse.finals.get(metric))}")
    if gap < NEGLIGIBLE_LOG10:
        return (f"{better.name} and {worse.name} kept about the same gradient at {where} "
                f"({a.flow_tag} {better.flow[1][-1]:+.2f} vs {worse.flow[1][-1]:+.2f}) and reached {losses}.")
    return (f"{better.name} kept the gradient at {where} 10^{gap:.1f} times larger than "
            f"{worse.name}, relative to {relative} ({a.flow_tag} {better.flow[1][-1]:+.2f} vs "
            f"{worse.flow[1][-1]:+.2f} at the last recorded step), and reached {losses}.")


def _figures(summaries, folder):
    """Write the PNGs; returns (file name, caption) in report order."""
    written = []

    def save(name, png, caption):
        (folder / name).write_bytes(png)
        written.append((name, caption))

    series = {}
    for index, s in enumerate(summaries):
        for key, style in (("loss", "-"), ("val_loss", "--")):
            if s.curves[key][1]:
                series[f"{s.name} {key.replace('_', ' ')}"] = (*s.curves[key], style, index)
    save("loss.png", figures.curves_png(series, "epoch", "loss", "loss: train (solid), "
                                        "validation (dashed)", log=True), "loss curves")
    flow = {s.name: (*s.flow, "-", i) for i, s in enumerate(summaries) if s.flow[1]}
    if flow:
        tag = summaries[0].flow_tag
        save(f"{tag}.png", figures.curves_png(flow, "training step", f"{tag} (log10 ratio)", tag),
             f"{tag} over training")
    for s in summaries:
        if s.layer_norms:
            steps, rows = list(s.layer_norms), list(s.layer_norms.values())
            save(f"{s.name}-gradient-flow.png", figures.gradient_flow_png(
                s.layers, steps, rows, title=f"{s.name}: gradient norm by layer",
                ylabel="gradient L2 norm (grad_norm)"), f"{s.name}: gradient against depth, "
                f"first and last recorded step")
    _through_time_figures(summaries, save)
    return written


def _through_time_figures(summaries, save):
    """Each sequence run's heat map, all on one colour scale so the runs compare at a glance."""
    drawn = [s for s in summaries if s.through_time]
    if drawn:
        ranges = [figures.log_range(s.through_time[1]) for s in drawn]
        scale = (min(low for low, _ in ranges), max(high for _, high in ranges))
    for s in summaries:
        if s.through_time:
            save(f"{s.name}-through-time.png", figures.heatmap_png(*s.through_time, title=s.name, scale=scale),
                 f"{s.name}: gradient norm per input timestep (one colour scale for every run)")
        elif s.through_time_png:
            save(f"{s.name}-through-time.png", s.through_time_png,
                 f"{s.name}: gradient norm per input timestep (recorded heat map, its own colour scale)")


def _budget(config):
    train = config["train"]
    optimizer = train["optimizer"]
    if optimizer == FROM_PYTHON:  # a Keras optimizer given to vgzoo.train, described beside
        optimizer = config.get("optimizer", {}).get("class_name", optimizer)
    rate = config.get("learning_rate")
    rate = "scheduled" if rate is None else f"{rate:g}"
    return (f"{train['epochs']} epochs × {config['steps_per_epoch']} steps, batch "
            f"{train['batch_size']}, {optimizer} lr {rate}, seed {train['seed']}")


def _changed_knobs(model):
    """`knob=value` for each argument a run changed from its registry defaults."""
    try:
        defaults = registry.get_spec(model.get("name", "")).defaults
    except VgzooError:
        return ""
    arguments = model.get("arguments", {})
    return " ".join(f"{key}={value}" for key, value in sorted(arguments.items())
                    if key in defaults and defaults[key] != value and key != "head")


def _names(run_dirs):
    """Model names; where two runs share one, the knobs they changed (else their folder)."""
    models = [runs.read_config(run_dir).get("model", {}) for run_dir in run_dirs]
    names = [model.get("name", Path(run_dir).name) for model, run_dir in zip(models, run_dirs)]
    labels = [f"{name} ({_changed_knobs(model) or 'defaults'})" if names.count(name) > 1 else name
              for name, model in zip(names, models)]
    return [f"{label} {Path(run_dir).name}" if labels.count(label) > 1 else label
            for label, run_dir in zip(labels, run_dirs)]


def write_report(run_dirs, folder, tensorboard_dir=None):
    """report.md and its figures in `folder`; returns the report's path."""
    summaries = [summarize(run_dir, name) for run_dir, name in zip(run_dirs, _names(run_dirs))]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dataset = summaries[0].config["dataset"]
    budgets = {_budget(s.config) for s in summaries}
    lines = [f"# {' vs '.join(s.name for s in summaries)} on {dataset['name']}", "",
             f"Budget: {'; '.join(sorted(budgets))}."]
    if len(budgets) > 1:
        lines.append("**The runs were trained at different budgets: compare with care.**")
    lines += ["", table(summaries), "", "## Verdict", ""]
    lines += [f"- {verdict(a, b)}" for a, b in itertools.combinations(summaries, 2)]
    lines += ["", "## Figures", ""]
    lines += [f"![{caption}]({name})\n" for name, caption in _figures(summaries, folder)]
    lines += ["## Runs", ""] + [f"- {s.name}: `{s.run_dir}`" for s in summaries]
    if tensorboard_dir:
        lines += ["", f"Overlay them in TensorBoard: `tensorboard --logdir {tensorboard_dir}`"]
    path = folder / "report.md"
    runs.atomic_write_text(path, "\n".join(lines) + "\n")
    return path
