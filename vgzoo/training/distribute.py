"""tf.distribute strategies by name.

`mirrored` copies the model to every GPU (or to the CPU devices set by
VGZOO_CPU_REPLICAS, to try distribution on a laptop); `multiworker` reads
the cluster from TF_CONFIG (`vgzoo.training.cluster` says who is chief and
where each worker writes). The observed train step records the gradients
summed across replicas, the ones the optimizer applies, from replica 0 only.
"""
import os

import tensorflow as tf

from vgzoo.errors import VgzooError, unknown_choice
from vgzoo.training import cluster

STRATEGIES = ("default", "mirrored", "multiworker")
CPU_REPLICAS_ENV = "VGZOO_CPU_REPLICAS"


def split_cpu(count):
    """Split the CPU into `count` logical devices; possible only before TensorFlow runs an op."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        pass  # already configured or started: checked below
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    if len(devices) < count:
        raise VgzooError(
            f"{CPU_REPLICAS_ENV}={count} came too late: TensorFlow had already started with "
            f"{len(devices)} CPU device(s). Set it before the process first uses TensorFlow."
        )
    return devices[:count]


class MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` with the `reduce` that Keras 3's `fit()` calls.

    `fit()` reduces values that the multi-worker strategy refuses, where
    `MirroredStrategy` takes them (Keras issue 20585):
    - its first batch, a tuple of inputs and labels, to build the model
      (`Trainer._maybe_symbolic_build`): `MirroredStrategy` reduces a nest
      leaf by leaf, this strategy fails with "Attempt to convert a value
      (PerReplica...)" (TensorFlow's own TODO in `Strategy.reduce`);
    - each step's scalar logs, with `axis=0` (`reduce_per_replica`), which a
      scalar does not have: averaging them across replicas is what is meant;
    - and with no `axis` at all for a sum.
    """

    def reduce(self, reduce_op, value, axis=None):
        def leaf(tensor):
            scalar = axis is not None and getattr(tensor, "shape", None) is not None \
                and tensor.shape.rank == 0
            return super(MultiWorker, self).reduce(reduce_op, tensor, None if scalar else axis)

        return tf.nest.map_structure(leaf, value)


def _multiworker():
    cluster.from_environment()  # a missing or malformed TF_CONFIG is told in one line
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=cluster.collective_timeout())
    return MultiWorker(communication_options=options)


def make_strategy(name):
    if name not in STRATEGIES:
        raise unknown_choice("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        return _multiworker()
    replicas = os.environ.get(CPU_REPLICAS_ENV)
    if replicas and not tf.config.list_physical_devices("GPU"):
        if not replicas.isdigit() or int(replicas) < 1:
            raise VgzooError(f"{CPU_REPLICAS_ENV} must be a positive integer, got {replicas!r}.")
        return tf.distribute.MirroredStrategy(split_cpu(int(replicas)))
    return tf.distribute.MirroredStrategy()
