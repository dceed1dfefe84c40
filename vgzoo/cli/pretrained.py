"""The checkpoint commands of `vgzoo`: list --pretrained, publish, verify, reproduce.

Thin like the rest of the command line: each calls `vgzoo.pretrained.manifest` or
`vgzoo.pretrained.publish` and prints what it returns.
"""
from vgzoo.cli.common import print_table, quiet_tensorflow
from vgzoo.errors import VgzooError


def list_pretrained():
    from vgzoo.pretrained import manifest

    rows = []
    for entry in manifest.read_manifest():
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in entry["metrics"].items())
        size = f"{entry['size'] / 1e6:.2f} MB" if entry.get("size") else "-"
        state = "published" if entry.get("published") else "unpublished"
        rows.append((entry["model"], manifest.dataset_label(entry), state,
                     metrics or "-", size))
    if not rows:
        print(f"no checkpoints in {manifest.manifest_path()}")
        return 0
    print_table(("model", "dataset", "state", "test metrics", "size"), rows)
    print(f"{len(manifest.published())} published; vgzoo.load(model, dataset=..., pretrained=True)")
    return 0


def cmd_publish(args):
    quiet_tensorflow()
    from vgzoo.pretrained import manifest, publish

    for run_dir in args.run_dirs:
        entry = publish.publish(run_dir, weights=args.weights, force=args.force)
        print(f"published {manifest.label(entry)}: {entry['file']}, sha256 {entry['sha256']}, "
              + ", ".join(f"{name} {value:.6g}" for name, value in entry["metrics"].items()))
    return 0


def _chosen(entries, names):
    """The entries named MODEL/DATASET or by file stem (all of them when no name is given)."""
    if not names:
        return entries
    chosen = [e for e in entries if f"{e['model']}/{e['dataset']}" in names
              or any(e["file"].startswith(f"{name}.") or e["file"].startswith(f"{name}-") for name in names)]
    if not chosen:
        raise VgzooError(f"no manifest entry matches {' '.join(names)}; name them as "
                         "MODEL/DATASET or by file stem, e.g. lstm/adding or lstm-adding-T200.")
    return chosen


def cmd_verify(args):
    from vgzoo.pretrained import manifest

    entries = _chosen(manifest.published(), args.entries)
    if not entries:
        print(f"no published checkpoints in {manifest.manifest_path()}: nothing to verify")
        return 0
    quiet_tensorflow()
    from vgzoo.pretrained import publish

    rows = publish.verify(entries)
    print_table(("checkpoint", "metric", "manifest", "measured", "ok"), [
        (row["checkpoint"], row["metric"], f"{row['manifest']:.6g}", f"{row['measured']:.6g}",
         "ok" if row["ok"] else "DIFFERS") for row in rows])
    failed = sum(not row["ok"] for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} metrics reproduce the manifest within tolerance")
    return 1 if failed else 0


def cmd_reproduce(args):
    from vgzoo.pretrained import manifest

    chosen = _chosen(manifest.read_manifest(), args.entries)
    quiet_tensorflow()
    from vgzoo.pretrained import publish

    for entry in chosen:
        published = publish.reproduce(entry, args.logdir)
        print(f"published {manifest.label(published)}: {published['metrics']}")
    return 0


def add_commands(commands):
    publishing = commands.add_parser("publish", help="publish finished runs as checkpoints")
    publishing.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    publishing.add_argument("--weights", default="best", help="best (default) or last")
    publishing.add_argument("--force", action="store_true",
                            help="replace a published checkpoint even by one from a shorter or worse run")
    publishing.set_defaults(run=cmd_publish)

    verify = commands.add_parser("verify", help="re-measure published checkpoints")
    verify.add_argument("entries", nargs="*", metavar="ENTRY",
                        help="MODEL/DATASET or file stem (default: every published one)")
    verify.set_defaults(run=cmd_verify)

    reproduce = commands.add_parser(
        "reproduce", help="train manifest entries from their commands, then publish them")
    reproduce.add_argument("entries", nargs="*", metavar="ENTRY",
                           help="MODEL/DATASET or file stem (default: all)")
    reproduce.add_argument("--logdir", default="tensorboard_logs/pretrained")
    reproduce.set_defaults(run=cmd_reproduce)
