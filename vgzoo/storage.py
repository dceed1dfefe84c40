"""Files written whole or not at all, and file hashes.

Every file vgzoo writes goes through a temporary name in the same folder and
a rename, so a kill at any moment leaves the old file or the new one, never
half of one. Importing this module does not import TensorFlow.
"""
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

_HASH_CHUNK = 1 << 20
# Temporary files start with this, so a folder's leftovers after a kill -9 are
# recognisable (and ignored by git).
TEMPORARY_PREFIX = ".vgzoo-tmp."


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in chunks so large archives stay out of memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write, suffix=".tmp"):
    """Call `write(temporary_path)`, then rename the result onto `path`.

    The file gets the permissions an ordinary write would (0666 less the
    umask), not the owner-only 0600 of a temporary file.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMPORARY_PREFIX}{path.name}.",
                                         suffix=suffix)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_leftovers(folder):
    """Delete temporary files a killed writer left in `folder`; call it holding the folder's lock."""
    for leftover in Path(folder).glob(f"{TEMPORARY_PREFIX}*"):
        leftover.unlink(missing_ok=True)


def atomic_write_text(path, text):
    """Write text through a temporary file, synced to disk, and rename."""

    def write(temporary):
        with open(temporary, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())

    atomic_write(path, write)


def _check_room(folder, needed):
    """Raise ENOSPC before writing when `folder`'s disk has less than `needed` bytes free.

    h5py fails on a full disk from inside its object finaliser, which prints
    a traceback no caller can catch; checking first keeps the error one line.
    """
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device: {needed} bytes needed, {free} free",
                      str(folder))


def atomic_save_weights(model, path):
    """`model.save_weights` through a temporary file and a rename."""
    optimizer = getattr(model, "optimizer", None)  # absent on a model never compiled
    variables = list(model.weights) + list(getattr(optimizer, "variables", None) or [])
    needed = sum(int(variable.numpy().nbytes) for variable in variables) + (1 << 20)
    _check_room(Path(path).parent, needed)
    atomic_write(path, lambda temporary: model.save_weights(temporary, overwrite=True),
                 suffix=".weights.h5")
