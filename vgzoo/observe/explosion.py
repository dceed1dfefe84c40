"""Stopping cleanly when gradients or the loss stop being numbers.

The observed step notes the step whose loss or gradients are NaN or
infinite and the first layer (in depth order) whose gradient went bad; this
callback reads that note after each batch and stops the run. `vgzoo.train`
(and `vgzoo.watch(keep_finite=True)`) also skips that step's update, so the
weights stay the last good ones (`apply_if_finite`). Holding every update
back until all gradients are checked costs a model whose step takes a few
milliseconds several percent of it, so `vgzoo.watch` by default applies the
update as Keras' own step does and notes the bad step beside it
(`note_beside_update`): the run still stops after that step, its weights
holding that step's update.
"""
import keras
import tensorflow as tf

from vgzoo.observe.summaries import layer_of_path

NO_EXPLOSION = -1


def holds_updates(keep_finite):
    """Whether the step holds each update until its gradients are known finite (`apply_if_finite`).

    Never under a distribution strategy, whose optimizer cannot apply inside
    a branch: there every update is applied and checked beside.
    """
    return bool(keep_finite) and not tf.distribute.has_strategy()


def apply_if_finite(apply, gradients, loss, step, note):
    """`apply()` unless the loss or a gradient holds NaN or inf; then `note` := [step, first bad index].

    Every gradient must be in before the decision, so the check sits on the
    step's critical path: a quiet step pays one sum per gradient and one
    `is_finite` (the sum of finite numbers is finite unless it overflows
    float32). Only when that sum is not finite, which is rare, does each
    gradient get checked on its own: an overflow of finite gradients still
    applies, and a bad step notes which layer went first.
    """

    def apply_and_say_so():
        apply()
        return tf.constant(True)

    # One branch on the common path: a branch point costs a small model's step about 0.1 ms.
    return tf.cond(sum_is_finite(gradients, loss), apply_and_say_so,
                   lambda: _check_each(gradients, loss, step, note, apply_and_say_so))


def note_beside_update(gradients, loss, step, note):
    """`note` := [step, first bad index] when the loss or a gradient is not finite; nothing waits for it.

    The update does not depend on this check, so it starts as each gradient
    arrives, as in Keras' own step. No branch: a flag per gradient and a
    `tf.where` on the note every step cost less than the branch point that
    would spare them on the common path (a few hundredths of a millisecond
    of a 3 ms step, docs/overhead.md), and a distribution strategy's
    cross-replica variables cannot be assigned inside a branch anyway.
    """
    flags, all_finite = finite_each(gradients, loss)
    note.assign(tf.where(all_finite, note.read_value(), bad_note(step, flags)))


def _check_each(gradients, loss, step, note, when_finite):
    """`when_finite()` if every gradient and the loss are finite, else `note` := [step, first bad index]."""
    flags, all_finite = finite_each(gradients, loss)

    def mark_bad():
        note.assign(bad_note(step, flags))
        return tf.constant(False)

    return tf.cond(all_finite, when_finite, mark_bad)


def sum_is_finite(gradients, loss):
    totals = [tf.cast(tf.reduce_sum(tensor), tf.float32) for tensor in [*gradients, loss]]
    return tf.math.is_finite(tf.add_n(totals))


def finite_each(gradients, loss):
    """One finiteness flag per gradient, and whether those and the loss are all finite."""
    flags = finite_by_variable(gradients)
    return flags, tf.logical_and(tf.reduce_all(flags), tf.reduce_all(tf.math.is_finite(loss)))


def finite_by_variable(gradients):
    return tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])


def bad_note(step, finite_flags):
    """[step, index of the first non-finite gradient], the index NO_EXPLOSION when only the loss is bad."""
    index = tf.where(tf.reduce_all(finite_flags), tf.constant(NO_EXPLOSION, tf.int64), first_bad_index(finite_flags))
    return tf.stack([tf.cast(step, tf.int64), index])


def first_bad_index(finite_flags):
    """Index of the first False flag (the flags are in depth order)."""
    return tf.cast(tf.argmin(tf.cast(finite_flags, tf.int32)), tf.int64)


class ExplosionGuard(keras.callbacks.Callback):
    def __init__(self, read_note, variables, stop):
        super().__init__()
        self.read_note = read_note  # -> [step, variable index], as the train step last set it
        self.variable_paths = [variable.path for variable in variables]
        self.stop = stop
        self.message = None

    def on_train_batch_end(self, batch, logs=None):
        step, index = (int(value) for value in self.read_note())
        if step == NO_EXPLOSION:
            return
        if index == NO_EXPLOSION:
            where = "the loss became NaN or infinite"
        else:
            where = f"the gradient of layer {layer_of_path(self.variable_paths[index])} became NaN or infinite"
        self.message = f"training diverged at step {step}: {where}"
        self.model.stop_training = True
        self.stop(self.message)

