"""Faults of the machine rather than bugs, told to the user in one line.

A full disk or exhausted memory ends a run with a message that says what
happened and what to do; what was saved before stays valid, since every
file is written atomically, so freeing space and rerunning resumes.
"""
import contextlib
import errno
import shutil

from vgzoo.errors import VgzooError

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _is_full_disk(error):
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text


def _is_out_of_memory(error):
    return isinstance(error, MemoryError) or "OOM when allocating" in str(error)


@contextlib.contextmanager
def reported(run_dir, started=False):
    """Turn a full disk or exhausted memory inside the block into a VgzooError.

    `started`: whether the run has saved anything worth resuming from.
    """
    import tensorflow as tf

    try:
        yield
    except (OSError, MemoryError, tf.errors.ResourceExhaustedError, tf.errors.UnknownError,
            tf.errors.InternalError) as error:
        if _is_full_disk(error):
            free = shutil.disk_usage(run_dir).free if run_dir.exists() else 0
            again = "run the same command to resume" if started else "run the same command again"
            raise VgzooError(f"the disk holding {run_dir} is full ({free / 1e6:.0f} MB free): free "
                             f"some space, then {again}.") from None
        if _is_out_of_memory(error):
            raise VgzooError(f"out of memory while training into {run_dir}: lower --batch-size "
                             "(or --seq-len, --width), then run the same command again.") from None
        raise


def remove_if_empty(folder):
    """Remove a run folder that a refused start left holding nothing but its lock."""
    with contextlib.suppress(OSError):
        if folder.is_dir() and not any(path.name != "run.lock" for path in folder.iterdir()):
            shutil.rmtree(folder)
