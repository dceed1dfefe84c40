"""A tiny real log folder: a convnet pair on MNIST and a sequence pair on the adding problem.

What a user's `tensorboard_logs/` becomes, at a size that trains in about half
a minute on two busy cores: plain20 and resnet20 at depth 8 on 64 MNIST test
images, rnn and lstm of width 4 on the adding problem with T=10. Every step is
recorded (`hist_every=1`). The plugin tests, the HParams tests and the browser
test share it: `folder()` trains it once per test session.

    python tests/browser/tiny_runs.py DIR     # the same folder, for a look in TensorBoard
"""
import os
import shutil
import sys
from pathlib import Path

CONVNETS = ("plain20", "resnet20")
SEQUENCES = ("rnn", "lstm")
SEQ_LEN = 10
_DONE = ".complete"


def build(logdir):
    """Train the four runs into `logdir`; returns {model name: run folder}."""
    import vgzoo

    runs = {}
    for name in CONVNETS:
        result = vgzoo.train(name, dataset="mnist", source_split="test", limit=64, epochs=2,
                             batch_size=32, depth=8, hist_every=1, logdir=logdir, verbose=0)
        runs[name] = result.run_dir
    for name in SEQUENCES:
        result = vgzoo.train(name, dataset="adding", seq_len=SEQ_LEN, steps_per_epoch=3, epochs=2,
                             width=4, optimizer="adam", hist_every=1, logdir=logdir, verbose=0)
        runs[name] = result.run_dir
    return runs


def runs_in(logdir):
    """{model name: run folder} of a folder `build` wrote."""
    import json

    found = {}
    for config in sorted(Path(logdir).glob("*/*/*/config.json")):
        found[json.loads(config.read_text())["model"]["name"]] = config.parent
    return found


def folder(tmp_path_factory):
    """The folder, trained on first use in this test session (MNIST must be in $VGZOO_DATA_DIR)."""
    logdir = tmp_path_factory.getbasetemp() / "vgzoo-tiny-runs"
    if not (logdir / _DONE).exists():
        shutil.rmtree(logdir, ignore_errors=True)  # a build cut short starts again
        build(logdir)
        (logdir / _DONE).write_text("")
    return logdir


if __name__ == "__main__":
    os.environ.setdefault("VGZOO_OFFLINE", "1")
    build(sys.argv[1])
    print(sys.argv[1])
