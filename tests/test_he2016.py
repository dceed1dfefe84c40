"""The He et al. Figure 6 reproduction: training error recovered exactly, the table as stated."""
import numpy as np

from vgzoo.analysis import he2016


def test_per_step_accuracy_is_recovered_from_keras_running_means():
    rng = np.random.default_rng(0)
    steps_per_epoch, epochs = 7, 3
    accuracies = rng.uniform(0, 1, steps_per_epoch * epochs)
    running = []
    for epoch in range(epochs):
        block = accuracies[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        means = np.cumsum(block) / np.arange(1, steps_per_epoch + 1)
        running += [(epoch * steps_per_epoch + i, mean) for i, mean in enumerate(means)]
    steps, recovered = he2016.per_step_accuracy(running, steps_per_epoch)
    np.testing.assert_array_equal(steps, np.arange(steps_per_epoch * epochs))
    np.testing.assert_allclose(recovered, accuracies, atol=1e-12)


def test_a_smaller_last_batch_is_weighted_as_keras_weights_it():
    batch_size, steps_per_epoch, train_size = 4, 3, 10  # batches of 4, 4 and 2 examples
    accuracies, sizes = np.array([0.25, 0.5, 1.0]), np.array([4, 4, 2])
    means = np.cumsum(accuracies * sizes) / np.cumsum(sizes)
    _, recovered = he2016.per_step_accuracy(list(enumerate(means)), steps_per_epoch, batch_size, train_size)
    np.testing.assert_allclose(recovered, accuracies, atol=1e-12)


def test_smoothing_keeps_length_and_constants():
    values = np.full(120, 0.25)
    smoothed = he2016.smooth(values)
    assert smoothed.shape == values.shape
    np.testing.assert_allclose(smoothed, 0.25)


def test_table_puts_the_paper_figures_beside_the_measured_ones():
    row = {"steps": 1688, "final_train_error": 0.0123, "final_test_error": 0.0061}
    text = he2016.table({"plain56": row, "resnet56": row})
    assert "| resnet56 | 1,688 | 1.23% | 0.61% | 6.97% |" in text
    assert "above plain-20 in training error" in text.splitlines()[2]


def test_the_recipe_is_the_papers_and_the_same_for_all_four(tmp_path):
    commands = [he2016.train_command(m, "mnist", 4, 211, tmp_path, "he") for m in he2016.MODELS]
    flags = {tuple(command[5:]) for command in commands}
    assert len(flags) == 1
    text = " ".join(commands[0])
    for flag in ("--lr 0.1", "--momentum 0.9", "--weight-decay 1e-4", "--batch-size 128", "--schedule step"):
        assert flag in text
