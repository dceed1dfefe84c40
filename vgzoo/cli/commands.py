"""The `vgzoo` command (also `python -m vgzoo`).

Thin: parses arguments and calls the Python API. TensorFlow is imported only
by the commands that build models, so `vgzoo list` answers at once.
"""
import argparse
import signal
import sys

from vgzoo.architectures import factory, registry
from vgzoo.cli import pretrained
from vgzoo.cli.common import quiet_tensorflow
from vgzoo.errors import TrainingDiverged, VgzooError
from vgzoo.training import config as train_config

KNOB_FLAGS = tuple(registry.KNOB_TYPES)


def cmd_list(args):
    if args.pretrained:
        return pretrained.list_pretrained()
    names = registry.list_models(args.pattern)
    if not names:
        raise VgzooError(f"no model matches {args.pattern!r}; try `vgzoo list` for all of them.")
    width = max(len(name) for name in names) + 2
    print(f"{'name':<{width}}{'family':<10}{'partner':<{width}}description")
    for name in names:
        spec = registry.get_spec(name)
        print(f"{name:<{width}}{spec.family:<10}{spec.partner:<{width}}{spec.description}")
    return 0


def _knobs(args):
    return {key: getattr(args, key) for key in KNOB_FLAGS if getattr(args, key) is not None}


# Shapes `vgzoo info` builds for when none is given: CIFAR images; seqmnist sequences.
DEFAULT_INFO_SHAPES = {3: "32,32,3", 2: "784,1"}


def _input_shape(text):
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise VgzooError(
            f"--input-shape takes H,W,C such as 32,32,3 (T,C such as 200,2 for sequences); got {text!r}."
        ) from None
    return shape


def cmd_info(args):
    registry.get_spec(args.model).resolve(_knobs(args))
    quiet_tensorflow()
    spec = registry.get_spec(args.model)
    shape_text = args.input_shape or DEFAULT_INFO_SHAPES[spec.input_rank]
    model = factory.create_model(args.model, _input_shape(shape_text), args.num_classes, **_knobs(args))
    print(f"{spec.name}: {spec.description}")
    print(f"family {spec.family}, matched partner {spec.partner}")
    print(f"arguments: {spec.resolve(_knobs(args))}")
    print(f"parameters: {model.count_params():,}")
    model.summary(line_length=100)
    return 0


def _config(args):
    """(model, knobs, TrainConfig): from --config run.json when given, the flags on top."""
    model, knobs, base = args.model, _knobs(args), None
    if args.config:
        stored_model, stored_knobs, base = train_config.read_run_config(args.config)
        if model not in (None, stored_model):
            raise VgzooError(f"{args.config} trains {stored_model}, not {model}; drop the model "
                             "name or the --config.")
        model, knobs = stored_model, dict(stored_knobs, **knobs)
    if model is None:
        raise VgzooError("say which model to train: `vgzoo train resnet20 ...` or --config run.json.")
    return model, knobs, train_config.from_flags(args, base)


def cmd_train(args):
    model, knobs, config = _config(args)
    registry.get_spec(model).resolve(knobs)
    quiet_tensorflow()
    from vgzoo.training import loop

    result = loop.train(model, config=config, **knobs)
    if result.resumed_from_epoch:
        print(f"resumed {result.run_dir} from epoch {result.resumed_from_epoch}")
    if result.interrupted:
        what = "terminated (SIGTERM)" if result.signal == signal.SIGTERM else "interrupted"
        print(
            f"{what} after step {result.step}: events in {result.run_dir}, last weights in "
            f"{result.run_dir / 'last.weights.h5'}; run the same command to resume from the "
            "last completed epoch.",
            file=sys.stderr,
        )
        return 128 + int(result.signal or signal.SIGINT)
    final = {name: values[-1] for name, values in result.history.items()}
    print("final: " + ", ".join(f"{name} {value:.4f}" for name, value in sorted(final.items())))
    print(f"run folder: {result.run_dir}")
    print(f"browse: tensorboard --logdir {config.logdir}")
    return 0


def cmd_compare(args):
    knobs = _knobs(args)
    for model in args.models:
        registry.get_spec(model).resolve(knobs)
    config = train_config.from_flags(args)
    quiet_tensorflow()
    from vgzoo.analysis.compare import compare

    path = compare(args.models, run_dirs=args.runs or (), report_dir=args.report_dir,
                   config=config, **knobs)
    print(path.read_text().split("## Figures")[0].rstrip())
    print(f"\nreport: {path}")
    return 0


def cmd_demo(args):
    quiet_tensorflow()
    from vgzoo.demos.initial import run_demo

    if args.part in ("all", "init"):
        run_demo(logdir=args.logdir, batch_size=args.batch_size, seed=args.seed)
    if args.part in ("all", "sequences"):
        from vgzoo.demos.sequences import SequenceDemoBudget, run_sequence_demo

        print()
        run_sequence_demo(args.logdir, SequenceDemoBudget(seed=args.seed))
    return 0


def _add_knobs(parser):
    group = parser.add_argument_group("knobs (defaults follow each model's paper)")
    for key in KNOB_FLAGS:
        expected_type, choices = registry.KNOB_TYPES[key]
        hint = "|".join(choices) if choices else ("true|false" if expected_type is bool else "N")
        group.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar=hint)


def _add_training_flags(parser):
    """The flags of `vgzoo train`, which `vgzoo compare` takes too: one per TrainConfig field."""
    train_config.add_flags(parser.add_argument_group("training (vgzoo.training.config.TrainConfig)"))
    _add_knobs(parser)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="vgzoo", description="The vanishing-gradient zoo: matched pairs of Keras models."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list registered models (shell wildcards)")
    listing.add_argument("pattern", nargs="?", default="*")
    listing.add_argument("--pretrained", action="store_true", help="list the checkpoints instead")
    listing.set_defaults(run=cmd_list)

    info = commands.add_parser("info", help="build a model and print its layers")
    info.add_argument("model")
    info.add_argument(
        "--input-shape", default=None,
        help="H,W,C for images (default 32,32,3); T,C for sequences (default 784,1)",
    )
    info.add_argument("--num-classes", type=int, default=10)
    _add_knobs(info)
    info.set_defaults(run=cmd_info)

    train = commands.add_parser("train", help="train a model with gradients recorded")
    train.add_argument("model", nargs="?", default=None)
    train.add_argument("--config", default=None, metavar="RUN/config.json",
                       help="replay a run: its model, knobs and options (flags given override them)")
    _add_training_flags(train)
    train.set_defaults(run=cmd_train)

    comparing = commands.add_parser(
        "compare", help="train models at the same budget and seed, report them side by side")
    comparing.add_argument("models", nargs="*", metavar="MODEL")
    comparing.add_argument("--runs", nargs="+", metavar="RUN_DIR",
                           help="report on these finished runs instead of training")
    comparing.add_argument("--report-dir", default=None, help="where report.md and the figures "
                           "go (default reports/<dataset>-<models>-<stamp>)")
    _add_training_flags(comparing)
    comparing.set_defaults(run=cmd_compare)

    pretrained.add_commands(commands)

    demo = commands.add_parser("demo", help="gradient flow of matched models, offline")
    demo.add_argument("--logdir", default=train_config.DEFAULT_LOGDIR)
    demo.add_argument("--batch-size", type=int, default=128)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--part", choices=("all", "init", "sequences"), default="all",
        help="init: gradient flow at initialisation (~1 min); sequences: train the sequence "
        "group on the adding problem (a few minutes); all: both (default)",
    )
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except VgzooError as error:
        print(f"vgzoo: error: {error}", file=sys.stderr)
        # A run that diverged was good input that went bad: told apart from usage errors.
        return 3 if isinstance(error, TrainingDiverged) else 2
    except KeyboardInterrupt:
        print("vgzoo: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("vgzoo: error: out of memory: lower --batch-size or --seq-len and try again.",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
