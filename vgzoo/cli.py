"""The `vgzoo` command (also `python -m vgzoo`).

Thin: parses arguments and calls the Python API. TensorFlow is imported only
by the commands that build models, so `vgzoo list` answers at once.
"""
import argparse
import os
import sys

from vgzoo import cli_checkpoints, registry
from vgzoo.errors import VgzooError

KNOB_FLAGS = tuple(registry.KNOB_TYPES)


def _quiet_tensorflow():
    """Import TensorFlow without its start-up chatter on stderr.

    TensorFlow's C++ logging prints device and build notes while it loads,
    before TF_CPP_MIN_LOG_LEVEL is honoured, so the command's own one-line
    errors would drown. They are silenced for the import and device discovery
    only; set VGZOO_TF_LOGS=1 to see them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("VGZOO_TF_LOGS"):
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def cmd_list(args):
    if args.pretrained:
        return cli_checkpoints.list_pretrained()
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
    _quiet_tensorflow()
    spec = registry.get_spec(args.model)
    shape_text = args.input_shape or DEFAULT_INFO_SHAPES[spec.input_rank]
    model = registry.create_model(args.model, _input_shape(shape_text), args.num_classes, **_knobs(args))
    print(f"{spec.name}: {spec.description}")
    print(f"family {spec.family}, matched partner {spec.partner}")
    print(f"arguments: {spec.resolve(_knobs(args))}")
    print(f"parameters: {model.count_params():,}")
    model.summary(line_length=100)
    return 0


def _train_options(args):
    """The keyword arguments of `training.train` from the flags `vgzoo train` takes."""
    return dict(
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        seed=args.seed,
        hist_every=args.hist_every,
        log_layers=args.log_layers,
        logdir=args.logdir,
        limit=args.limit,
        validation_split=args.validation_split,
        source_split=args.data_split,
        seq_len=args.seq_len,
        steps_per_epoch=args.steps_per_epoch,
        run_name=args.run_name,
        weights=args.weights,
        resume_run=not args.no_resume,
        strategy=args.strategy,
        clipnorm=args.clipnorm,
        global_clipnorm=args.global_clipnorm,
        warmup_steps=args.warmup_steps,
        test_every=args.test_every,
        verbose="auto" if args.verbose is None else args.verbose,
        **_knobs(args),
    )


def cmd_train(args):
    registry.get_spec(args.model).resolve(_knobs(args))
    _quiet_tensorflow()
    from vgzoo import training

    result = training.train(args.model, **_train_options(args))
    if result.resumed_from_epoch:
        print(f"resumed {result.run_dir} from epoch {result.resumed_from_epoch}")
    if result.interrupted:
        print(
            f"interrupted after step {result.step}: events in {result.run_dir}, last weights in "
            f"{result.run_dir / 'last.weights.h5'}; run the same command to resume from the "
            "last completed epoch.",
            file=sys.stderr,
        )
        return 130
    final = {name: values[-1] for name, values in result.history.items()}
    print("final: " + ", ".join(f"{name} {value:.4f}" for name, value in sorted(final.items())))
    print(f"run folder: {result.run_dir}")
    print(f"browse: tensorboard --logdir {args.logdir}")
    return 0


def cmd_compare(args):
    knobs = _knobs(args)
    for model in args.models:
        registry.get_spec(model).resolve(knobs)
    _quiet_tensorflow()
    from vgzoo.compare import compare

    options = _train_options(args)
    logdir = options.pop("logdir")
    path = compare(args.models, run_dirs=args.runs or (), report_dir=args.report_dir,
                   logdir=logdir, **options)
    print(path.read_text().split("## Figures")[0].rstrip())
    print(f"\nreport: {path}")
    return 0


def cmd_demo(args):
    _quiet_tensorflow()
    from vgzoo.demo import run_demo

    if args.part in ("all", "init"):
        run_demo(logdir=args.logdir, batch_size=args.batch_size, seed=args.seed)
    if args.part in ("all", "sequences"):
        from vgzoo.sequence_demo import SequenceDemoBudget, run_sequence_demo

        print()
        run_sequence_demo(args.logdir, SequenceDemoBudget(seed=args.seed))
    return 0


def _add_knobs(parser):
    group = parser.add_argument_group("knobs (defaults follow each model's paper)")
    for key in KNOB_FLAGS:
        expected_type, choices = registry.KNOB_TYPES[key]
        hint = "|".join(choices) if choices else ("true|false" if expected_type is bool else "N")
        group.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar=hint)


def _add_training_flags(train):
    """The flags of `vgzoo train`, which `vgzoo compare` takes too."""
    train.add_argument(
        "--dataset", default="mnist",
        help="mnist, cifar10, cifar100, or a sequence task: adding, copy, seqmnist, pmnist",
    )
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--optimizer", default="sgd", help="sgd or adam")
    train.add_argument("--lr", type=float, default=None, help="default 0.1 (sgd), 1e-3 (adam)")
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--schedule", default="step", help="step, cosine or constant")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--hist-every", type=int, default=50, help="steps between histograms")
    train.add_argument(
        "--log-layers", default=None, metavar="GLOB[,GLOB...]",
        help="layers whose histograms are written (default: stem, head and the first and last block of each stage)",
    )
    train.add_argument("--logdir", default="tensorboard_logs")
    train.add_argument("--limit", type=int, default=None, help="use the first N examples")
    train.add_argument("--validation-split", type=float, default=0.1)
    train.add_argument(
        "--data-split", default="train", help="train (default) or test: smoke runs only"
    )
    train.add_argument("--seq-len", type=int, default=None, help="T for the adding and copy tasks")
    train.add_argument(
        "--steps-per-epoch", type=int, default=None,
        help="steps between epoch summaries on streamed sequence tasks (default 100)",
    )
    train.add_argument("--run-name", default=None, help="run folder name (default: time-stamp)")
    train.add_argument("--weights", default=None, help="start from this .weights.h5 checkpoint")
    train.add_argument(
        "--no-resume", action="store_true",
        help="start a new run even if an interrupted one with the same settings exists",
    )
    train.add_argument(
        "--strategy", default="default",
        help="default, mirrored (all GPUs; VGZOO_CPU_REPLICAS=N splits the CPU) or multiworker (TF_CONFIG)",
    )
    train.add_argument("--clipnorm", type=float, default=None, help="clip each gradient's norm")
    train.add_argument("--global-clipnorm", type=float, default=None, help="clip the global norm")
    train.add_argument("--warmup-steps", type=int, default=0,
                       help="steps at a tenth of the rate before the step schedule (He et al. 2016)")
    train.add_argument("--test-every", type=int, default=0,
                       help="measure the test split every N steps (figures only; never for selection)")
    train.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=None,
        help="1: progress bar (default), 2: one line per epoch, 0: silent",
    )
    _add_knobs(train)


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
    train.add_argument("model")
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

    cli_checkpoints.add_commands(commands)

    demo = commands.add_parser("demo", help="gradient flow of matched models, offline")
    demo.add_argument("--logdir", default="tensorboard_logs")
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
        return 3 if type(error).__name__ == "TrainingDiverged" else 2
    except KeyboardInterrupt:
        print("vgzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
