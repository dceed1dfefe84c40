"""Gradient flow through time: how much of the loss's gradient reaches each input step.

For a sequence input x of shape (batch, time, features), the observed step
takes dL/dx from the same backward pass as the weight gradients. Its norm
per timestep, averaged over the batch, shows how far back the gradient
reaches (Bengio et al. 1994; Pascanu et al. 2013): a vanilla RNN's falls off
exponentially with the distance from the loss, a gated one's does not.
"""
import tensorflow as tf

from vgzoo.observe.summaries import log10_ratio

HISTOGRAM_TAG = "grad_through_time/norm_per_timestep"


def is_sequence(inputs):
    """Sequences are (batch, time, features); images have rank 4."""
    return len(inputs.shape) == 3


def norms_per_timestep(input_gradient):
    """||dL/dx_t|| over features, averaged over the batch: shape (time,)."""
    gradient = tf.cast(input_gradient, tf.float32)
    return tf.reduce_mean(tf.norm(gradient, axis=-1), axis=0)


def grad_reach(norms):
    """log10 of the first timestep's gradient norm over the last one's."""
    return log10_ratio(norms[0], norms[-1])
