"""What the commands share: a quiet TensorFlow import and plain-text tables."""
import os
import sys


def quiet_tensorflow():
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


def print_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) + 2 for column in zip(header, *rows)]
    for row in (header, *rows):
        print("".join(f"{str(cell):<{width}}" for cell, width in zip(row, widths)).rstrip())
