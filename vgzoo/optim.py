"""Optimizers and learning-rate schedules by name."""
import keras

from vgzoo.errors import unknown_choice

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "cosine", "constant")
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}


def learning_rate_schedule(name, learning_rate, total_steps):
    """He et al. 2016 divide by 10 at 50% and 75% of training ("step")."""
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
    if name == "step":
        boundaries = [max(total_steps // 2, 1), max(3 * total_steps // 4, 2)]
        values = [learning_rate, learning_rate / 10, learning_rate / 100]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    raise unknown_choice("schedule", name, SCHEDULES)


def build_optimizer(name, learning_rate, momentum, weight_decay, schedule, total_steps, **clipping):
    """Keras' own optimizers; weight decay is decoupled, clipping Keras' clipnorm options."""
    if name not in OPTIMIZERS:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    rate = learning_rate_schedule(schedule, learning_rate, total_steps)
    decay = weight_decay or None
    clipping = {key: value for key, value in clipping.items() if value}
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=momentum, weight_decay=decay, **clipping)
    return keras.optimizers.Adam(rate, weight_decay=decay, **clipping)
