"""vgzoo runs in a log folder, and the matched pairs among them.

A run lives in `<logdir>/<dataset>/<model>/<run>/`, its per-step summaries
in `train/`, and records its configuration (`config.json`, and the `config`
text summary in `train/`) with `"model": {"name", "partner", "arguments",
...}`. A run's partner runs are those of the model its config names as
partner, in a sibling model folder of the same dataset folder (the model
folder is the built model's name, `plain8` for `plain20` at depth 8, so
models are matched by their recorded names, not by folder). Of those, the
partner is the run trained most alike: the same training options and the
same arguments but the one the pair varies in, then the nearest in time.
"""
import json

# Options that say where a run goes or how it prints, not what it trains.
_WHERE = {"logdir", "run_name", "resume", "verbose"}


def parse_config(text):
    """The config dict of a `config` text summary (a fenced JSON block), or None."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        config = json.loads(text)
    except ValueError:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        return None
    return config if config["model"].get("name") else None


def run_root(run):
    """`mnist/plain8/<id>` for TensorBoard's run `mnist/plain8/<id>/train`."""
    if run == "train":
        return "."
    return run[: -len("/train")] if run.endswith("/train") else run


def subrun(root, name):
    return name if root == "." else f"{root}/{name}"


def _dataset_folder(root):
    parts = root.split("/")
    return "/".join(parts[:-2])


def _varies(name):
    try:
        from vgzoo.architectures import registry

        return registry.get_spec(name).varies
    except Exception:
        return None


def _hubs():
    """Models that several others name as partner (the tanh RNN): listed first in a pair."""
    from vgzoo.architectures import registry

    named = [registry.get_spec(name).partner for name in registry.list_models()]
    return {name for name in named if named.count(name) > 1}


def describe(root, config):
    """What the page shows of a run: its model, partner, data and the knob it varies."""
    model = config["model"]
    arguments = model.get("arguments") or {}
    varies = _varies(model["name"])
    dataset = config.get("dataset") or {}
    shape = dataset.get("input_shape") or []
    return {
        "run": root,
        "model": model["name"],
        "partner": model.get("partner"),
        "family": model.get("family", "custom"),
        "dataset": dataset.get("name") or (config.get("train") or {}).get("dataset"),
        "varies": varies,
        "value": arguments.get(varies) if varies else None,
        "sequence": len(shape) == 2,
    }


def _likeness(first, second):
    """How alike two runs were trained: equal options and equal non-varying arguments."""
    train_a, train_b = first.get("train") or {}, second.get("train") or {}
    score = sum(train_a.get(key) == train_b.get(key) for key in set(train_a) | set(train_b)
                if key not in _WHERE)
    arguments_a = first["model"].get("arguments") or {}
    arguments_b = second["model"].get("arguments") or {}
    varies = _varies(first["model"]["name"])
    score += sum(arguments_a.get(key) == arguments_b.get(key)
                 for key in set(arguments_a) | set(arguments_b) if key != varies)
    return score + 10 * (train_a.get("seed") == train_b.get("seed"))


def partner_of(root, configs):
    """The run in `configs` ({root: config}) that is `root`'s matched partner, or None."""
    config = configs[root]
    partner = config["model"].get("partner")
    folder = _dataset_folder(root)
    order = sorted(configs)
    candidates = [other for other in order if other != root
                  and configs[other]["model"]["name"] == partner
                  and _dataset_folder(other) == folder]
    if not candidates:
        return None
    here = order.index(root)
    return max(candidates, key=lambda other: (_likeness(config, configs[other]),
                                              -abs(order.index(other) - here)))


def ordered(first, second, configs):
    """The pair's members, the plain (or baseline) one first."""
    hubs = _hubs()

    def key(root):
        described = describe(root, configs[root])
        return (described["model"] not in hubs, described["value"] is True, described["model"], root)

    return sorted((first, second), key=key)


def find_pairs(configs):
    """Each matched pair in `configs` once, members ordered, pairs sorted by their runs."""
    found = {}
    for root in sorted(configs):
        other = partner_of(root, configs)
        if other is not None:
            pair = tuple(ordered(root, other, configs))
            found.setdefault(frozenset(pair), pair)
    return sorted(found.values())
