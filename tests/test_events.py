"""A run's event files: written without a sync per step, cut back cleanly for a resumed run."""
import tensorflow as tf

from vgzoo.analysis import events
from vgzoo.training import resume
from vgzoo.observe import summaries


def _written_steps(folder, tag):
    return [step for step, _ in events.read_scalars(folder, tag)]


def test_a_compiled_step_leaves_flushing_to_the_writer(tmp_path):
    writer = summaries.create_writer(tmp_path)

    @tf.function
    def step(number):
        with writer.as_default(step=number):  # as_default flushes as it exits
            tf.summary.scalar("step_loss", tf.cast(number, tf.float32))
        return number

    graph = step.get_concrete_function(tf.constant(0, tf.int64)).graph
    operations = {operation.type for operation in graph.get_operations()}
    assert "WriteSummary" in operations and "FlushSummaryWriter" not in operations
    for number in range(5):
        step(tf.constant(number, tf.int64))
    writer.flush()  # eagerly, as at an epoch's end: it still writes
    assert _written_steps(tmp_path, "step_loss") == [0, 1, 2, 3, 4]
    writer.close()


def test_truncation_keeps_epoch_summaries_by_epoch_and_the_rest_by_step(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for number in range(10):
            tf.summary.scalar("step_loss", float(number), step=number)
        for epoch in range(3):
            tf.summary.scalar("epoch_loss", float(epoch), step=epoch)
    writer.close()

    resume.truncate_events(tmp_path, epoch=2, step=6)

    assert _written_steps(tmp_path, "step_loss") == [0, 1, 2, 3, 4, 5]
    assert _written_steps(tmp_path, "epoch_loss") == [0, 1]


def test_a_png_is_written_as_tensorboard_image_summaries_are(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vgzoo.observe import figures

    png = figures.gradient_flow_png(["stem", "block", "head"], [0, 5], [[1.0, 0.1, 0.01], [2.0, 0.2, 0.02]])
    writer = summaries.create_writer(tmp_path)
    with writer.as_default():
        summaries.write_png("gradient_flow/by_layer", png, 3)
    writer.close()

    accumulator = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    (event,) = accumulator.Tensors("gradient_flow/by_layer")
    assert event.step == 3
    assert accumulator.SummaryMetadata("gradient_flow/by_layer").plugin_data.plugin_name == "images"
    width, height, stored = event.tensor_proto.string_val
    assert stored == png
    pixels = tf.image.decode_png(stored)
    # Twice TensorBoard's 350-px card width, for the card's fonts to stay sharp.
    assert (int(width), int(height)) == (pixels.shape[1], pixels.shape[0]) == (700, 520)
