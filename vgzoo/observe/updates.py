"""The update-to-weight ratio: how far one step actually moved each layer.

`update_ratio/<NN>_<layer>` (NN: the depth index `grad_norm` uses) is
||w_after - w_before|| / ||w_before|| over the layer's trainable variables,
measured around `optimizer.apply`, so momentum, Adam's scaling, clipping and
weight decay are all in it. Karpathy's rule of thumb puts healthy values
near 1e-3: far below, the layer has stopped learning (its gradient
vanished); far above, it is being thrown around.

The weights are copied only on recorded steps (`summaries.when`); other
steps hold no copy, so the optimizer updates in place as usual.
"""
import tensorflow as tf

from vgzoo.observe import tags
from vgzoo.observe.summaries import layer_norms, layers_in_order, when, write_scalars


def snapshot(variables, record_now):
    """The variables' values before the update on recorded steps; empty tensors otherwise."""
    return when(
        record_now,
        lambda: [tf.identity(variable) for variable in variables],
        # Empty stand-ins: a skipped step reads and keeps nothing.
        lambda: [tf.zeros([0], variable.dtype) for variable in variables],
    )


def record_update_ratios(variables, before, size, step, record_now):
    """Writes `update_ratio/<NN>_<layer>` on recorded steps from `snapshot`'s values and their norms `size`."""
    order = layers_in_order(variables)
    ratio_tags = tags.layer_tags("update_ratio", order)

    def measure_and_write():
        deltas = [variable - old for variable, old in zip(variables, before)]
        moved = layer_norms(variables, deltas)
        write_scalars(
            [(ratio_tags[layer], tf.math.divide_no_nan(moved[layer], size[layer])) for layer in order],
            step,
        )
        return tf.constant(True)

    when(record_now, measure_and_write, lambda: tf.constant(False))
