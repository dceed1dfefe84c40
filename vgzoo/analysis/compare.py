"""Compare models: train each at the same budget and seed, then report side by side.

Members train under one parent log folder, so `tensorboard --logdir PARENT`
overlays them; the report (table, verdicts, figures) goes to its own folder,
by default `reports/<dataset>-<models>-<stamp>/`.

    vgzoo.analysis.compare.compare(["plain20", "resnet20"], dataset="mnist", epochs=5)
"""
import datetime
from pathlib import Path

from vgzoo.analysis import report
from vgzoo.architectures import registry
from vgzoo.training import runs
from vgzoo.training.config import TrainConfig
from vgzoo.errors import VgzooError

DEFAULT_REPORTS = "reports"


def _stamp():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def train_members(models, config=None, **options):
    """Each model trained with the same options; returns (parent folder, run folders)."""
    if len(models) < 2:
        raise VgzooError("compare needs at least two models, e.g. `vgzoo compare plain20 resnet20`.")
    from vgzoo.training import loop

    data = {key: options.pop(key) for key in ("data", "num_classes") if key in options}
    chosen, knobs = loop.split_options(options)
    default_dataset = "custom" if "data" in data else "mnist"
    config = (config or TrainConfig(dataset=chosen.get("dataset", default_dataset))).replace(**chosen)
    for model in models:
        registry.get_spec(model).resolve(knobs)
    parent = Path(config.logdir) / "compare" / f"{config.dataset}-{'-vs-'.join(models)}-{_stamp()}"
    run_dirs = []
    for model in models:
        result = loop.train(model, config=config.replace(logdir=str(parent)), **data, **knobs)
        if result.interrupted:
            raise VgzooError(f"{model} was interrupted; its run is in {result.run_dir}. Compare "
                             f"the finished runs with --runs once they are done.")
        run_dirs.append(result.run_dir)
    return parent, run_dirs


def compare(models=(), *, run_dirs=(), report_dir=None, config=None, **options):
    """Train `models` (or reuse finished `run_dirs`) and write the report; returns its path."""
    if run_dirs:
        if models:
            raise VgzooError("give models to train or --runs to reuse, not both.")
        if len(run_dirs) < 2:
            raise VgzooError("--runs needs at least two run folders.")
        parent = None
    else:
        parent, run_dirs = train_members(list(models), config=config, **options)
    if report_dir is None:
        first = runs.read_config(run_dirs[0]).get("dataset", {}).get("name", "custom")
        names = "-".join(runs.read_config(d).get("model", {}).get("name", "run") for d in run_dirs)
        report_dir = Path(DEFAULT_REPORTS) / f"{first}-{names}-{_stamp()}"
    return report.write_report(run_dirs, report_dir, tensorboard_dir=parent)
