"""The painter draws pictures in a child process and survives its failures."""
import os
import struct

import numpy as np
import pytest

from vgzoo.observe.painter import Painter


def _png_size(png):
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])  # IHDR: width, height


def _flow(layers=3, steps=2):
    random = np.random.default_rng(0)
    rows = [random.random(layers) for _ in range(steps)]
    return ([f"layer{i}" for i in range(layers)], list(range(steps)), rows), {"title": "flow"}


def test_drawings_come_back_as_png_in_submission_order():
    painter = Painter()
    received = []
    arguments, options = _flow()
    painter.submit("gradient_flow_png", arguments, options, lambda png: received.append(("flow", png)))
    heat_rows = [np.full(20, 10.0 ** -k) for k in range(4)]
    painter.submit("heatmap_png", ([0, 5, 10, 15], heat_rows), {}, lambda png: received.append(("heat", png)))
    painter.finish()
    assert [name for name, _ in received] == ["flow", "heat"]
    for _, png in received:
        width, height = _png_size(png)
        assert width > 300 and height > 200


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_child_draws_only_on_idle_cpu():
    painter = Painter()
    arguments, options = _flow()
    painter.submit("gradient_flow_png", arguments, options, lambda png: None)
    painter.finish()
    assert os.sched_getscheduler(painter._child.pid) == os.SCHED_IDLE
    painter.close()


def test_a_failed_drawing_warns_once_and_the_next_one_is_drawn():
    painter = Painter()
    received = []
    with pytest.warns(UserWarning, match="could not draw a gradient picture.*TypeError"):
        painter.submit("curves_png", ({},), {}, received.append)  # missing arguments
        painter.finish()
    arguments, options = _flow()
    painter.submit("gradient_flow_png", arguments, options, received.append)
    painter.finish()
    assert len(received) == 1 and _png_size(received[0])


def test_a_killed_child_is_replaced():
    painter = Painter()
    received = []
    arguments, options = _flow()
    painter.submit("gradient_flow_png", arguments, options, received.append)
    painter.finish()
    first_child = painter._child
    first_child.kill()
    first_child.wait()
    with pytest.warns(UserWarning, match="drawing process stopped"):
        painter.submit("gradient_flow_png", arguments, options, received.append)
        painter.finish()
    painter.submit("gradient_flow_png", arguments, options, received.append)
    painter.finish()
    assert len(received) == 2 and painter._child is not first_child


def test_unknown_drawings_are_refused_before_they_reach_the_child():
    with pytest.raises(ValueError, match="unknown drawing 'pie_png'"):
        Painter().submit("pie_png", (), {}, print)
