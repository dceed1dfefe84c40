"""Optimizers and learning-rate schedules by name."""
import keras

from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.training.config import OPTIMIZERS, SCHEDULES
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}


def learning_rate_schedule(name, learning_rate, total_steps, warmup_steps=0):
    """He et al. 2016 divide by 10 at 50% and 75% of training ("step").

    `warmup_steps` trains at a tenth of the rate first, as He et al. warmed
    up ResNet-110 (0.01 for about 400 iterations) because 0.1 was too large
    to start converging; only the step schedule takes it.
    """
    if warmup_steps and name != "step":
        raise VgzooError(f"warmup_steps applies to the step schedule, not to {name!r}.")
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
    if name == "step":
        boundaries = [max(total_steps // 2, 1), max(3 * total_steps // 4, 2)]
        values = [learning_rate, learning_rate / 10, learning_rate / 100]
        if warmup_steps:
            if warmup_steps >= boundaries[0]:
                raise VgzooError(f"warmup_steps={warmup_steps} must end before the first "
                                 f"step down at step {boundaries[0]}.")
            boundaries, values = [warmup_steps, *boundaries], [learning_rate / 10, *values]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    raise unknown_choice("schedule", name, SCHEDULES)


def build_optimizer(name, learning_rate, momentum, weight_decay, schedule, total_steps,
                    warmup_steps=0, **clipping):
    """Keras' own optimizers; weight decay is decoupled, clipping Keras' clipnorm options."""
    if name not in OPTIMIZERS:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    rate = learning_rate_schedule(schedule, learning_rate, total_steps, warmup_steps)
    decay = weight_decay or None
    clipping = {key: value for key, value in clipping.items() if value}
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=momentum, weight_decay=decay, **clipping)
    return keras.optimizers.Adam(rate, weight_decay=decay, **clipping)
