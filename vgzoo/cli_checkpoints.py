"""The checkpoint commands of `vgzoo`: list --pretrained, publish, verify, reproduce.

Thin like the rest of the command line: each calls `vgzoo.checkpoints` or
`vgzoo.publish` and prints what it returns.
"""
from vgzoo.errors import VgzooError


def _quiet_tensorflow():
    # Imported when called: vgzoo.cli imports this module.
    from vgzoo.cli import _quiet_tensorflow as quiet

    quiet()


def print_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) + 2 for column in zip(header, *rows)]
    for row in (header, *rows):
        print("".join(f"{str(cell):<{width}}" for cell, width in zip(row, widths)).rstrip())


def list_pretrained():
    from vgzoo import checkpoints

    rows = []
    for entry in checkpoints.read_manifest():
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in entry["metrics"].items())
        size = f"{entry['size'] / 1e6:.2f} MB" if entry.get("size") else "-"
        state = "published" if entry.get("published") else "unpublished"
        rows.append((entry["model"], checkpoints.dataset_label(entry), state,
                     metrics or "-", size))
    if not rows:
        print(f"no checkpoints in {checkpoints.manifest_path()}")
        return 0
    print_table(("model", "dataset", "state", "test metrics", "size"), rows)
    print(f"{len(checkpoints.published())} published; vgzoo.load(model, dataset=..., pretrained=True)")
    return 0


def cmd_publish(args):
    _quiet_tensorflow()
    from vgzoo import checkpoints, publish

    for run_dir in args.run_dirs:
        entry = publish.publish(run_dir, weights=args.weights)
        print(f"published {checkpoints.label(entry)}: {entry['file']}, sha256 {entry['sha256']}, "
              + ", ".join(f"{name} {value:.6g}" for name, value in entry["metrics"].items()))
    return 0


def cmd_verify(args):
    from vgzoo import checkpoints

    if not checkpoints.published():
        print(f"no published checkpoints in {checkpoints.manifest_path()}: nothing to verify")
        return 0
    _quiet_tensorflow()
    from vgzoo import publish

    rows = publish.verify()
    print_table(("checkpoint", "metric", "manifest", "measured", "ok"), [
        (row["checkpoint"], row["metric"], f"{row['manifest']:.6g}", f"{row['measured']:.6g}",
         "ok" if row["ok"] else "DIFFERS") for row in rows])
    failed = sum(not row["ok"] for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} metrics reproduce the manifest within tolerance")
    return 1 if failed else 0


def cmd_reproduce(args):
    from vgzoo import checkpoints

    entries = checkpoints.read_manifest()
    chosen = [e for e in entries if not args.entries or e["file"].removesuffix(".weights.h5")
              in args.entries or f"{e['model']}/{e['dataset']}" in args.entries]
    if not chosen:
        raise VgzooError(f"no manifest entry matches {' '.join(args.entries)}; name them as "
                         "MODEL/DATASET or by file stem, e.g. lstm/adding or lstm-adding-T200.")
    _quiet_tensorflow()
    from vgzoo import publish

    for entry in chosen:
        published = publish.reproduce(entry, args.logdir)
        print(f"published {checkpoints.label(published)}: {published['metrics']}")
    return 0


def add_commands(commands):
    publishing = commands.add_parser("publish", help="publish finished runs as checkpoints")
    publishing.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    publishing.add_argument("--weights", default="best", help="best (default) or last")
    publishing.set_defaults(run=cmd_publish)

    verify = commands.add_parser("verify", help="re-measure published checkpoints")
    verify.set_defaults(run=cmd_verify)

    reproduce = commands.add_parser(
        "reproduce", help="train manifest entries from their commands, then publish them")
    reproduce.add_argument("entries", nargs="*", metavar="ENTRY",
                           help="MODEL/DATASET or file stem (default: all)")
    reproduce.add_argument("--logdir", default="tensorboard_logs/pretrained")
    reproduce.set_defaults(run=cmd_reproduce)
