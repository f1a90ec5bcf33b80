"""Stopping a run cleanly: Ctrl-C (or SIGTERM) asks, the loop saves after the step under way and exits."""
from __future__ import annotations

import signal
import threading


class StopRequest:
    """Ctrl-C (or SIGTERM, which torchrun sends its workers on Ctrl-C) asks to stop after the current step;
    a second Ctrl-C interrupts at once (the last checkpoint on disk stays whole)."""

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
