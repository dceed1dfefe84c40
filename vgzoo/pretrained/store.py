"""The models folder as a store: one writer at a time, and a valid checkpoint at every instant.

Publishing writes the new weights beside the old under a name that carries
their hash (`resnet20-mnist-1a2b3c4d.weights.h5`), then switches the
manifest to it in one atomic rename, and only then deletes the file the old
entry named. A kill at any moment leaves the old manifest with its old file
or the new manifest with its new file. An exclusive lock on
`.manifest.lock` keeps two publishes from losing each other's entries.
"""
import contextlib
import fcntl
import os
from pathlib import Path

from vgzoo.errors import VgzooError
from vgzoo.pretrained import manifest
from vgzoo.storage import TEMPORARY_PREFIX, atomic_save_weights, file_digest, remove_leftovers

LOCK_NAME = ".manifest.lock"
VERSION_LENGTH = 8  # hex digits of the sha256 in a published file's name


@contextlib.contextmanager
def locked(folder):
    """The models folder, held by this process alone (waits for another publish)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            remove_leftovers(folder)
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _same_checkpoint(a, b):
    return (a["model"], a["dataset"], a.get("dataset_options", {})) == (
        b["model"], b["dataset"], b.get("dataset_options", {}))


def previous_entry(entries, entry):
    return next((old for old in entries if _same_checkpoint(old, entry)), None)


def check_replacement(old, new, force):
    """Refuse to replace a published checkpoint by one from a shorter or worse run."""
    if force or old is None or not old.get("published"):
        return
    reasons = []
    if old.get("steps") and new.get("steps") and new["steps"] < old["steps"]:
        reasons.append(f"it trained {new['steps']:,} steps, the published one {old['steps']:,}")
    old_loss, new_loss = old.get("metrics", {}).get("test_loss"), new["metrics"].get("test_loss")
    if old_loss is not None and new_loss is not None and new_loss > old_loss + new["tolerance"]:
        reasons.append(f"its test loss is {new_loss:.6g}, the published one's {old_loss:.6g}")
    if reasons:
        raise VgzooError(f"refusing to replace the published {manifest.label(old)} checkpoint: "
                         f"{'; '.join(reasons)}. Pass --force to replace it anyway.")


def save_versioned(model, folder, entry):
    """The model's weights under a name carrying their hash; sets file, size, sha256."""
    staging = Path(folder) / f"{TEMPORARY_PREFIX}publish.weights.h5"
    atomic_save_weights(model, staging)
    digest = file_digest(staging)
    stem = entry["file"].removesuffix(".weights.h5")
    entry["file"] = f"{stem}-{digest[:VERSION_LENGTH]}.weights.h5"
    os.replace(staging, Path(folder) / entry["file"])
    entry["size"] = (Path(folder) / entry["file"]).stat().st_size
    entry["sha256"] = digest
    return entry


def switch(folder, entries, entry):
    """The manifest with `entry` in place of its previous version; then the old file goes."""
    old = previous_entry(entries, entry)
    kept = [item for item in entries if not _same_checkpoint(item, entry)]
    position = entries.index(old) if old is not None else len(kept)
    kept.insert(position, entry)
    manifest.write_manifest(kept, folder)
    if old is not None and old.get("file") and old["file"] != entry["file"]:
        still_named = any(item.get("file") == old["file"] for item in kept)
        if not still_named:
            (Path(folder) / old["file"]).unlink(missing_ok=True)
    return kept
