"""The offline demo measures gradient flow at initialisation and writes it to TensorBoard."""
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vgzoo.demos import initial

SIGMOID_MLP_PAIR = tuple(row for row in initial.DEMO_MODELS if row[0] in ("mlp20-sigmoid", "resmlp20-sigmoid"))


def test_sigmoid_mlp_vanishes_and_its_residual_partner_does_not(tmp_path):
    printed = []
    rows = initial.run_demo(logdir=tmp_path, batch_size=32, models=SIGMOID_MLP_PAIR, print_fn=printed.append)
    plain, residual = rows
    assert plain["first_layer"] == residual["first_layer"] == "stem_dense"
    assert plain["last_layer"] == residual["last_layer"] == "predictions"
    assert plain["ratio"] < 1e-4 < 1e-2 < residual["ratio"]
    output = "\n".join(printed)
    assert "mlp20-sigmoid" in output and "make tensorboard" in output

    run_dir = next((tmp_path / "demo" / "gradients-at-init").iterdir())
    events = EventAccumulator(str(run_dir / "resmlp20-sigmoid"), size_guidance={"histograms": 0})
    events.Reload()
    histogram_tags = events.Tags()["histograms"]
    assert "gradients/stem_dense/kernel" in histogram_tags
    assert "gradients/predictions/kernel" in histogram_tags
    assert "grad_norm/block10_dense" in events.Tags()["tensors"]


def test_the_demo_covers_the_pairs_the_readme_promises():
    labels = [label for label, _, _ in initial.DEMO_MODELS]
    assert labels[:6] == [
        "plain56", "resnet56", "mlp20-sigmoid", "resmlp20-sigmoid", "mlp20-sigmoid-bn", "resmlp20-sigmoid-bn",
    ]
    assert len(labels) % 2 == 0
