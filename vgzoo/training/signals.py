"""Stopping cleanly on a signal: the current step finishes, the state is saved."""
import signal
import threading


class InterruptFlag:
    """SIGINT or SIGTERM asks the run to stop after the current step; a second one stops at once.

    SIGTERM is what Slurm and Kubernetes send before they kill, so it is
    handled as Ctrl-C is: the step finishes, the state is saved.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.raised = False
        self.reason = None
        self.signal = None
        self._previous = {}

    def stop(self, reason):
        """Stop for another reason than Ctrl-C (a diverged run, say)."""
        self.raised = True
        self.reason = reason

    def __enter__(self):
        # Signal handlers can only be set from the main thread; elsewhere
        # Ctrl-C keeps Python's default behaviour.
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}

    def _handle(self, signum, frame):
        self.raised = True
        self.reason = "interrupted"
        self.signal = signum
        for number, previous in self._previous.items():
            signal.signal(number, previous)  # a second signal acts at once
