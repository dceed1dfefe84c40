"""The task registry: every dataset and sequence task vgzoo trains on, as one type.

A `Task` says what a model needs (input shape, head, classes), what training
needs (loss, metrics) and how its train, validation and test data are made,
so training and publishing never ask which kind of task they hold. Like the
model registry, this module is metadata only and does not import TensorFlow;
the data functions import their pipelines when called.

    task = get_task("adding")
    train_ds, val_ds, info = task.datasets(batch_size=32, seq_len=200)
"""
import dataclasses
import importlib

from vgzoo.errors import VgzooError, unknown_choice

CLASSIFICATION_LOSS = "sparse_categorical_crossentropy"


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model and a training loop need to know about the data they got."""

    name: str
    input_shape: tuple
    num_classes: int
    train_size: object  # None for an endless stream
    val_size: int
    source_split: object = None  # "train" or "test" for files; None for generated data
    head: str = "classes"
    loss: str = CLASSIFICATION_LOSS
    seq_len: object = None
    baseline: object = None  # the memoryless loss (adding, copy) or chance accuracy
    # Per-channel statistics on [0, 1] that images were standardised with.
    mean: object = None
    std: object = None

    @property
    def metrics(self):
        return ["accuracy"] if self.loss == CLASSIFICATION_LOSS else []


@dataclasses.dataclass(frozen=True)
class Task:
    """A named task: its shapes and loss, and the functions that make its data."""

    name: str
    display: str  # how reports and messages name it: "MNIST", "adding"
    description: str
    head: str
    loss: str
    num_classes: int
    # "module:function" pairs, imported only when data is made.
    make: str
    make_test: str
    generated: bool = False  # drawn from seeds (adding, copy) rather than read from files
    takes_seq_len: bool = False

    @property
    def metrics(self):
        return ["accuracy"] if self.loss == CLASSIFICATION_LOSS else []

    @property
    def images(self):
        return self.make.startswith("vgzoo.data.images:")

    def datasets(self, *, batch_size, seed=0, seq_len=None, limit=None, validation_split=0.1,
                 source_split="train"):
        """`(train_ds, val_ds, info)`; options that do not apply to this task are refused."""
        self._refuse_options(seq_len=seq_len, limit=limit, validation_split=validation_split,
                             source_split=source_split)
        options = dict(batch_size=batch_size, seed=seed)
        if self.takes_seq_len:
            options["seq_len"] = seq_len
        if not self.generated:
            options.update(limit=limit, validation_split=validation_split, source_split=source_split)
        return _load(self.make)(self.name, **options)

    def test_dataset(self, *, batch_size, seq_len=None, size=None, seed=0, mean=None, std=None):
        """The held-out test set, standardised like training for images."""
        if self.images:
            return _load(self.make_test)(self.name, mean, std, batch_size=batch_size)
        options = dict(seq_len=seq_len, batch_size=batch_size)
        if self.generated:
            options.update(test_size=size, seed=seed)
        return _load(self.make_test)(self.name, **options)

    def _refuse_options(self, *, seq_len, limit, validation_split, source_split):
        if seq_len is not None and not self.takes_seq_len:
            raise VgzooError(f"seq_len applies to the tasks {', '.join(_names(takes_seq_len=True))}, "
                             f"not to {self.name}.")
        if self.generated:
            given = [name for name, value, default in (
                ("limit", limit, None), ("validation_split", validation_split, 0.1),
                ("source_split", source_split, "train")) if value != default]
            if given:
                raise VgzooError(f"{', '.join(given)} applies to data read from files; {self.name} "
                                 "draws fresh examples (set steps_per_epoch instead).")


def _load(path):
    module_name, function_name = path.split(":")
    return getattr(importlib.import_module(module_name), function_name)


_IMAGES = dict(head="classes", loss=CLASSIFICATION_LOSS, make="vgzoo.data.images:make_datasets",
               make_test="vgzoo.data.images:make_test_dataset")
_SEQUENCES = dict(make="vgzoo.data.sequences:make_sequence_datasets",
                  make_test="vgzoo.data.sequences:make_sequence_test_dataset")

TASKS = {task.name: task for task in (
    Task("mnist", "MNIST", "MNIST handwritten digits, 28x28 grayscale (LeCun et al. 1998)",
         num_classes=10, **_IMAGES),
    Task("cifar10", "CIFAR-10", "CIFAR-10 natural images, 32x32 RGB, 10 classes (Krizhevsky 2009)",
         num_classes=10, **_IMAGES),
    Task("cifar100", "CIFAR-100", "CIFAR-100 natural images, 32x32 RGB, 100 fine classes",
         num_classes=100, **_IMAGES),
    Task("adding", "adding", "the adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015)",
         head="value", loss="mse", num_classes=1, generated=True, takes_seq_len=True, **_SEQUENCES),
    Task("copy", "copy", "copy memory: repeat 10 symbols after T blanks (Arjovsky et al. 2016)",
         head="per_step", loss=CLASSIFICATION_LOSS, num_classes=10, generated=True,
         takes_seq_len=True, **_SEQUENCES),
    Task("seqmnist", "sequential MNIST", "MNIST one pixel at a time, 784 steps (Le et al. 2015)",
         head="classes", loss=CLASSIFICATION_LOSS, num_classes=10, **_SEQUENCES),
    Task("pmnist", "permuted MNIST", "MNIST one pixel at a time in one fixed permutation",
         head="classes", loss=CLASSIFICATION_LOSS, num_classes=10, **_SEQUENCES),
)}
TASK_NAMES = tuple(TASKS)


def _names(**wanted):
    return [name for name, task in TASKS.items()
            if all(getattr(task, key) == value for key, value in wanted.items())]


def get_task(name):
    if name not in TASKS:
        raise unknown_choice("dataset", name, TASK_NAMES)
    return TASKS[name]
