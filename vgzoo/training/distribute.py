"""tf.distribute strategies by name.

`mirrored` copies the model to every GPU (or to the CPU devices set by
VGZOO_CPU_REPLICAS, to try distribution on a laptop); `multiworker` reads
the cluster from TF_CONFIG. The observed train step records the gradients
summed across replicas, the ones the optimizer applies, from replica 0 only.
"""
import os

import tensorflow as tf

from vgzoo.errors import VgzooError, unknown_choice

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


def make_strategy(name):
    if name not in STRATEGIES:
        raise unknown_choice("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise VgzooError("--strategy multiworker needs the cluster in TF_CONFIG.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    replicas = os.environ.get(CPU_REPLICAS_ENV)
    if replicas and not tf.config.list_physical_devices("GPU"):
        if not replicas.isdigit() or int(replicas) < 1:
            raise VgzooError(f"{CPU_REPLICAS_ENV} must be a positive integer, got {replicas!r}.")
        return tf.distribute.MirroredStrategy(split_cpu(int(replicas)))
    return tf.distribute.MirroredStrategy()

