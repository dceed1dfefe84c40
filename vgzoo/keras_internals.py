"""The Keras and TensorFlow internals vgzoo leans on, listed in one place.

Each is something no public API offers; each has a test in
`tests/test_keras_internals.py` that fails with a message naming it when a
Keras release changes it. Keep this list short.

1. `Trainer._make_function(step)` (Keras 3, TensorFlow backend): wraps a
   train step in `tf.function` and the `steps_per_execution` loop exactly as
   `fit()` does. The observed model compiles two steps with it, recorded and
   quiet, and picks one before each step.
2. The loss tracker: the compiled metric named "loss" (`Trainer._loss_tracker`),
   which a custom train step must update for `fit()` to report the loss.
3. A summary writer's `flush` replaced at run time: `tf.summary` flushes on
   leaving `as_default()`, which inside a compiled step is a flush and an
   fsync on every step.
4. How many iterators `fit()` opens on a finite `tf.data.Dataset` per epoch:
   each advances a seeded reshuffle, so a resumed run must open as many to
   read the order the uninterrupted run would have read.
5. An optimizer's count of batches, `_iterations`: with gradient
   accumulation its public `iterations` counts updates, one per N batches,
   and the observer numbers steps by batch.
"""
import tensorflow as tf

from vgzoo.errors import VgzooError

ITERATORS_PER_EPOCH = 2
LOSS_TRACKER_NAME = "loss"


def _changed(what, detail):
    import keras

    return VgzooError(f"Keras {keras.__version__} changed {what}, which vgzoo relies on: {detail}. "
                      "Install a Keras version within the bounds in setup.cfg.")


def make_function(model, step):
    """`step` compiled the way `fit()` compiles its train step."""
    make = getattr(model, "_make_function", None)
    if make is None:
        raise _changed("Trainer._make_function", "the model has no _make_function")
    return make(step)


def loss_tracker(model):
    """The metric that `fit()` reports as the loss."""
    for metric in model.metrics:
        if metric.name == LOSS_TRACKER_NAME:
            return metric
    raise _changed("the compiled loss tracker", f"no metric named {LOSS_TRACKER_NAME!r} after compile")


def flush_only_when_eager(writer):
    """Make `writer.flush` act only when called eagerly; returns the writer."""
    flush = getattr(writer, "flush", None)
    if flush is None:
        raise _changed("tf.summary writers", "a writer has no flush method")

    def flush_when_eager():
        return flush() if tf.executing_eagerly() else None

    writer.flush = flush_when_eager
    return writer


def batch_counter(optimizer):
    """The variable counting every batch the optimizer was given (updates or not)."""
    inner = getattr(optimizer, "inner_optimizer", None)  # a LossScaleOptimizer's wrapped one
    if inner is not None:
        return batch_counter(inner)
    counter = getattr(optimizer, "_iterations", None)
    if counter is None:
        raise _changed("optimizers", "an optimizer has no _iterations counter")
    return counter
