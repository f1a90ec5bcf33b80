"""Data never starves training: examples (a frame's CLIP point features and targets) are prepared on a
background thread into a bounded queue while the training thread trains.

A thread of the training process, because the frozen encoder lives there (on the GPU when there is one) and
its torch work releases the GIL; the frames themselves come from a child process (reader.py). `wait_s` is
the time training spent blocked on the queue: its share of the wall time is the measure of starvation.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """`next()` gives prepare(*item) for each item of `items`, computed ahead on one background thread."""

    def __init__(self, items: Iterator, prepare: Callable, depth: int):
        self.wait_s = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(items, prepare), name="train-data", daemon=True)
        self._thread.start()

    def _work(self, items: Iterator, prepare: Callable) -> None:
        try:
            for item in items:
                if not self._put(prepare(*item)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the training thread, which raises it
            self._put(_Failure(e))
            return
        self._put(_END)

    def _put(self, value) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        value = self._queue.get()
        self.wait_s += time.perf_counter() - start
        if isinstance(value, _Failure):
            raise value.error
        if value is _END:
            raise StopIteration
        return value

    def close(self) -> None:
        """Stop the worker (it finishes the example in hand) and wait for it."""
        self._stop.set()
        self._thread.join()
