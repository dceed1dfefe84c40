"""vgzoo, the vanishing-gradient zoo: matched pairs of Keras models whose
gradient flow you can watch in TensorBoard.

    import vgzoo
    vgzoo.list_models("resnet*")
    model = vgzoo.create_model("plain56", input_shape=(32, 32, 3), num_classes=10)
    vgzoo.train("resnet20", dataset="cifar10", epochs=30)
    vgzoo.plot_gradient_flow("tensorboard_logs/cifar10/resnet20/<run>", "flow.png")
    lstm = vgzoo.load("lstm", dataset="adding", pretrained=True)

Importing vgzoo does not import TensorFlow; building or training a model does.
"""
from vgzoo.errors import VgzooError
from vgzoo.architectures import create_model, get_spec, list_models, load, pairs, partner_of

__version__ = "0.1.0"


def train(model, **options):
    """Train a registered model (or a Keras model) with gradients recorded.

    See `vgzoo.training.loop.train` for the options.
    """
    from vgzoo.training import loop

    return loop.train(model, **options)


def watch(model, logdir, hist_every=50, log_layers=None, keep_finite=False):
    """Record the gradients of any Keras model's own `fit()` in TensorBoard.

    Returns a model sharing `model`'s layers and weights; compile and fit
    it as usual. See `vgzoo.observe.watch.watch`.
    """
    from vgzoo.observe.watch import watch as watch_model

    return watch_model(model, logdir, hist_every=hist_every, log_layers=log_layers, keep_finite=keep_finite)


def plot_gradient_flow(run_dir, path, max_lines=8):
    """Write a run's gradient norm per layer against depth as a PNG file.

    See `vgzoo.analysis.flow.plot_gradient_flow`.
    """
    from vgzoo.analysis import flow

    return flow.plot_gradient_flow(run_dir, path, max_lines=max_lines)


__all__ = [
    "VgzooError",
    "create_model",
    "get_spec",
    "list_models",
    "load",
    "pairs",
    "partner_of",
    "plot_gradient_flow",
    "train",
    "watch",
]
