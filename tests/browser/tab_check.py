"""The vgzoo tab in a real browser: TensorBoard on a real log folder, Debian's Chromium headless.

Run by `make test-browser` (and `.ci/run`), never by `make test`: the file
name is not a test module name, so plain pytest does not collect it. Skips
when Chromium is absent (`apt-get install -y chromium`; or set $CHROMIUM).

It trains the tiny folder (tests/browser/tiny_runs.py), starts
`tensorboard --logdir` on it, and checks what Chromium renders: TensorBoard's
page loads the tab's frame, and the tab draws both members of each pair by
name, the depth chart with its slider, the heat maps on one scale, and for
the sequence pair the timestep heat maps. Screenshots are kept in
$VGZOO_BROWSER_ARTIFACTS (default: the test's temporary folder).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_runs  # noqa: E402

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,2400", "--virtual-time-budget=20000")
STARTUP_SECONDS = 120


def chromium():
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


pytestmark = pytest.mark.skipif(not chromium(), reason="Chromium is not installed "
                                "(apt-get install -y chromium)")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def folder(tiny_log_folder):
    return tiny_log_folder


@pytest.fixture(scope="module")
def server(folder, tmp_path_factory):
    """`tensorboard --logdir folder`, as a user starts it; the URL once the tab is listed."""
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    log = open(tmp_path_factory.mktemp("tensorboard") / "tensorboard.log", "w+")
    process = subprocess.Popen(
        [str(tensorboard), "--logdir", str(folder), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                listing = json.loads(get(f"{url}/data/plugins_listing"))
                if listing.get("vgzoo", {}).get("enabled"):
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"TensorBoard did not list an enabled vgzoo tab:\n{log.read()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = os.environ.get("VGZOO_BROWSER_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


def browse(url, artifacts, name, profile_parent):
    """The DOM Chromium renders for `url` once its scripts have run; a screenshot beside it."""
    profile = profile_parent / f"profile-{name}"
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}"]
    subprocess.run([*command, f"--screenshot={artifacts / (name + '.png')}", url],
                   capture_output=True, timeout=180)
    result = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True,
                            timeout=180)
    (artifacts / f"{name}.html").write_text(result.stdout)
    assert result.stdout.strip(), result.stderr[-2000:]
    return result.stdout


def entry(server, **hash_params):
    fragment = f"#{urllib.parse.urlencode(hash_params)}" if hash_params else ""
    return f"{server}/data/plugin_entry.html?name=vgzoo{fragment}"


def test_tensorboard_shows_the_tab_and_loads_it_from_the_package(server, artifacts, tmp_path):
    dom = browse(f"{server}/#vgzoo", artifacts, "tensorboard", tmp_path)
    assert 'src="data/plugin_entry.html?name=vgzoo"' in dom
    listing = json.loads(get(f"{server}/data/plugins_listing"))["vgzoo"]
    assert listing["loading_mechanism"]["module_path"] == "/data/plugin/vgzoo/static/index.js"


def test_the_tab_draws_the_sequence_pair_by_default(server, folder, artifacts, tmp_path):
    runs = {name: path.relative_to(folder).as_posix() for name, path in tiny_runs.runs_in(folder).items()}
    dom = browse(entry(server), artifacts, "sequence-pair", tmp_path)
    for name in ("rnn", "lstm"):
        assert f'data-run="{runs[name]}"' in dom, name
    assert 'data-chart="depth"' in dom
    assert 'id="vgzoo-step"' in dom and 'type="range"' in dom
    assert dom.count('class="vgzoo-heatmap-canvas"') == 4  # depth and timesteps, both members
    assert 'id="vgzoo-heatmaps-timesteps"' in dom
    for chart in ("vanishing_ratio", "grad_reach", "step_loss", "epoch_loss"):
        assert f'data-chart="{chart}"' in dom, chart
    assert "Could not read" not in dom


def test_the_tab_draws_the_convnet_pair_with_batch_norm_apart(server, folder, artifacts, tmp_path):
    runs = {name: path.relative_to(folder).as_posix() for name, path in tiny_runs.runs_in(folder).items()}
    dom = browse(entry(server, run=runs["plain20"]), artifacts, "convnet-pair", tmp_path)
    assert f'data-run="{runs["plain20"]}"' in dom and f'data-run="{runs["resnet20"]}"' in dom
    assert "residual=false" in dom and "residual=true" in dom
    assert 'class="series hollow"' in dom  # batch-norm layers drawn apart from weight layers
    assert dom.count('class="vgzoo-heatmap-canvas"') == 2
    assert 'id="vgzoo-heatmaps-timesteps"' not in dom
    assert "vgzoo-colourbar" in dom
