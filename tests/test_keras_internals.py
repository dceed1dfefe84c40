"""Each Keras internal vgzoo relies on (vgzoo.keras_internals), checked against the installed Keras."""
import keras
import numpy as np
import tensorflow as tf

from vgzoo import keras_internals


def _compiled_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_make_function_compiles_a_train_step_as_fit_does():
    model = _compiled_model()
    data = tf.data.Dataset.from_tensor_slices((np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"))).batch(2)
    step = keras_internals.make_function(model, model.train_step)
    logs = step(iter(data))
    assert "loss" in logs and int(model.optimizer.iterations.numpy()) == 1


def test_the_compiled_loss_tracker_is_found_by_its_name():
    tracker = keras_internals.loss_tracker(_compiled_model())
    tracker.update_state(3.0)
    assert float(tracker.result()) == 3.0


def test_a_writer_flush_can_be_made_eager_only(tmp_path):
    writer = keras_internals.flush_only_when_eager(tf.summary.create_file_writer(str(tmp_path)))

    @tf.function
    def step():
        with writer.as_default(step=0):
            tf.summary.scalar("x", 1.0)

    operations = {op.type for op in step.get_concrete_function().graph.get_operations()}
    assert "FlushSummaryWriter" not in operations, "the replaced flush no longer keeps flushes out of a step"
    writer.close()


class _RecordsFirstBatch(keras.Model):
    """A model whose train step keeps the first example of each batch it sees."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.seen = tf.Variable(-1.0, trainable=False)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, _ = data
        self.seen.assign(x[0, 0])
        return {"first": x[0, 0]}


def _shuffled():
    data = tf.data.Dataset.range(16).map(lambda v: (tf.cast([v], tf.float32), 0.0))
    return data.shuffle(16, seed=3, reshuffle_each_iteration=True).batch(16)


def test_fit_opens_the_stated_number_of_iterators_per_epoch():
    # Each iterator opened on one dataset object advances its seeded reshuffle;
    # epoch e of fit() reads iterator ITERATORS_PER_EPOCH * e (counting from 0).
    probe = _shuffled()
    orders = [float(next(iter(probe))[0][0, 0]) for _ in range(12)]
    assert len(set(orders[:8])) > 4, "the seeded reshuffle should differ between iterators"
    model = _RecordsFirstBatch()
    model.compile(optimizer="sgd", loss="mse")
    firsts = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: firsts.append(float(model.seen.numpy())))
    model.fit(_shuffled(), epochs=3, verbose=0, callbacks=[callback], shuffle=False)
    expected = [orders[keras_internals.ITERATORS_PER_EPOCH * epoch] for epoch in range(3)]
    assert firsts == expected, (
        f"fit() no longer opens {keras_internals.ITERATORS_PER_EPOCH} iterators per epoch on a finite "
        "dataset: resume would replay the wrong data order (update keras_internals.ITERATORS_PER_EPOCH)")
