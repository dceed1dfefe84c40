"""Drawing a run's pictures in a child process, so training never waits for matplotlib.

A figure takes matplotlib 0.2 to 0.5 s of pure Python. Drawn in the training
process, even on a thread of its own, it holds the GIL that the train loop
needs between steps, and a fast model's epoch grows by as much as the
drawing takes. The child (`python -m vgzoo.observe.painter`) imports numpy
and matplotlib only, runs only when training leaves a core idle
(`SCHED_IDLE` on Linux), draws there and sends back PNG bytes; a thread
of the training process waits for them with the GIL released and hands them
to a callback (the TensorBoard image summary). A picture that cannot be
drawn costs a warning, never the run.
"""
import os
import pickle
import signal
import subprocess
import sys
import traceback
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DRAWINGS = ("gradient_flow_png", "heatmap_png", "curves_png")


class PaintingFailed(RuntimeError):
    """The child could not draw a picture; the message is its error's last line."""


class Painter:
    """Queues drawings for one child process; `then(png)` runs when one is ready."""

    def __init__(self):
        self._child = None
        self._stop_child = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vgzoo-painter")
        self._pending = []
        self._warned = False

    def submit(self, drawing, args, options, then):
        if drawing not in DRAWINGS:
            raise ValueError(f"unknown drawing {drawing!r}; one of {', '.join(DRAWINGS)}")
        self._collect(wait=False)
        self._pending.append(self._worker.submit(self._draw, drawing, args, options, then))

    def finish(self):
        """Waits until every submitted picture is drawn and handed over."""
        self._collect(wait=True)

    def close(self):
        """Waits for the pictures, then ends the child."""
        self.finish()
        if self._child is not None:
            self._stop_child()  # a weakref.finalize: stops it once, however often called
            self._child = None

    def _draw(self, drawing, args, options, then):
        child = self._start()
        try:
            pickle.dump((drawing, args, options), child.stdin)
            child.stdin.flush()
            kind, payload = pickle.load(child.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as error:
            self._stop_child()
            self._child = None  # the next drawing starts a fresh child
            raise PaintingFailed(f"the drawing process stopped ({error})") from error
        if kind == "error":
            raise PaintingFailed(payload.strip().splitlines()[-1])
        then(payload)

    def _start(self):
        if self._child is None:
            package_root = str(Path(__file__).resolve().parents[2])
            path = os.environ.get("PYTHONPATH")
            environment = dict(os.environ, PYTHONPATH=package_root + (os.pathsep + path if path else ""))
            # A session of its own: Ctrl-C, sent to the terminal's process group, is the
            # training process's to handle; the child ends when its input closes.
            self._child = subprocess.Popen(
                [sys.executable, "-m", "vgzoo.observe.painter"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment,
                start_new_session=True,
            )
            # Closing its input ends the child, when the painter goes or Python exits.
            self._stop_child = weakref.finalize(self, _stop, self._child)
        return self._child

    def _collect(self, wait):
        for drawing in list(self._pending):
            if not (wait or drawing.done()):
                continue
            self._pending.remove(drawing)
            try:
                drawing.result()
            except Exception as error:  # a picture is never worth a training run
                self._warn(error)

    def _warn(self, error):
        if not self._warned:
            self._warned = True
            warnings.warn(f"vgzoo could not draw a gradient picture; training goes on without it: {error}")


_SHARED = []


def shared():
    """The process's painter: its child, and matplotlib's second of start-up, serve every fit.

    Started afresh for each fit, the child's start-up fell inside a short
    fit's middle epochs, on the cores training uses; it ends with the process.
    """
    if not _SHARED:
        _SHARED.append(Painter())
    return _SHARED[0]


def _stop(child):
    # The shared painter's child is stopped as Python exits, when a failed run's
    # last line has been printed: nothing here may print a traceback after it.
    try:
        child.stdin.close()
        child.wait(timeout=10)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        child.kill()
    try:
        child.stdout.close()
    except (OSError, ValueError):
        pass


def _yield_to_training():
    """Runs the child only on CPU time that training leaves idle.

    A niced child still slows training on a small machine: once it holds a
    core, the training threads that wake up wait for the scheduler to preempt
    it, and the train step waits for its slowest thread. Under `SCHED_IDLE` a
    waking training thread preempts it at once (docs/overhead.md measures both).
    """
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    if hasattr(os, "nice"):
        os.nice(19)


def serve(requests, replies):
    """The child's loop: (drawing, args, options) in, ("png", bytes) or ("error", text) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it by closing its input
    _yield_to_training()  # before importing matplotlib, which takes a second of CPU
    from vgzoo.observe import figures

    while True:
        try:
            drawing, args, options = pickle.load(requests)
        except EOFError:
            return
        try:
            if drawing not in DRAWINGS:
                raise ValueError(f"unknown drawing {drawing!r}")
            reply = ("png", getattr(figures, drawing)(*args, **options))
        except Exception:
            reply = ("error", traceback.format_exc(limit=3))
        pickle.dump(reply, replies)
        replies.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
