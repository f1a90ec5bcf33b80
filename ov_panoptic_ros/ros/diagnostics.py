"""Counters, timing windows and throttled warnings behind the node's /diagnostics status.

The collector is plain Python and thread-safe (callbacks, the inference worker and the vocabulary
worker all report into it); `to_diagnostic_array` turns a snapshot into a DiagnosticArray.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


class ThrottledLog:
    """One log line per `kind` per `period_s`; the next line says how many were suppressed."""

    def __init__(self, emit, period_s: float = 5.0, clock=time.monotonic):
        self._emit = emit
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, message: str, key: str | None = None) -> bool:
        """Log `message` unless `key` (default: `kind`) was logged within the period; True if it was logged."""
        now = self._clock()
        key = key or kind
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
        suffix = f" ({skipped} similar message(s) suppressed)" if skipped else ""
        self._emit(f"[{kind}] {message}{suffix}")
        return True


@dataclass
class Snapshot:
    level: int
    message: str
    values: dict[str, str]


class NodeStats:
    """Everything /diagnostics reports. Counters are monotonic; timings cover the last `window` frames."""

    def __init__(self, window: int = 100, rate_window_s: float = 5.0, clock=time.monotonic):
        self._lock = threading.Lock()
        self._counted = threading.Condition(self._lock)  # notified on every counter change
        self._clock = clock
        self.counters: dict[str, int] = {}
        self.camera_misses: dict[str, int] = {}
        self._processing_ms: deque[float] = deque(maxlen=window)
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._stage_ms: dict[str, deque] = {}
        self._arrivals: deque[float] = deque()
        self.rate_window_s = rate_window_s
        self.info: dict[str, str] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n
            self._counted.notify_all()

    def set_counter(self, name: str, value: int) -> None:
        """For counters kept elsewhere (the synchronizer's), mirrored here for reporting."""
        with self._lock:
            self.counters[name] = int(value)
            self._counted.notify_all()

    def wait_for(self, predicate, timeout_s: float) -> bool:
        """Block until `predicate(counters)` holds or the timeout passes; returns whether it holds.
        For tools that follow the node's progress: they sleep on the counters instead of polling them,
        which would take CPU from the frames they measure."""
        with self._counted:
            return bool(self._counted.wait_for(lambda: predicate(self.counters), timeout_s))

    def get(self, name: str) -> int:
        with self._lock:
            return self.counters.get(name, 0)

    def set_info(self, **values) -> None:
        with self._lock:
            self.info.update({k: str(v) for k, v in values.items()})

    def set_camera_misses(self, misses: dict[str, int]) -> None:
        with self._lock:
            self.camera_misses = dict(misses)

    def cloud_arrived(self) -> None:
        now = self._clock()
        with self._lock:
            self._arrivals.append(now)
            while self._arrivals and now - self._arrivals[0] > self.rate_window_s:
                self._arrivals.popleft()

    def frame_done(self, total_ms: float, stages_ms: dict[str, float], latency_ms: float | None = None) -> None:
        """One processed frame: its processing time, per-stage split, and cloud-arrival-to-publish latency."""
        with self._lock:
            self._processing_ms.append(total_ms)
            if latency_ms is not None:
                self._latency_ms.append(latency_ms)
            for k, v in stages_ms.items():
                self._stage_ms.setdefault(k, deque(maxlen=self._processing_ms.maxlen)).append(v)

    def input_rate_hz(self) -> float:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._arrivals if now - t <= self.rate_window_s]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0], recent[-1] - recent[0])
        return (len(recent) - 1) / span if span > 0 else 0.0

    def processing_ms(self) -> tuple[float, float]:
        """(mean, max) over the window; zeros before the first frame."""
        with self._lock:
            t = np.array(self._processing_ms, dtype=np.float64)
        return (float(t.mean()), float(t.max())) if t.size else (0.0, 0.0)

    def stage_last_ms(self) -> dict[str, float]:
        """The most recent frame's per-stage milliseconds."""
        with self._lock:
            return {k: v[-1] for k, v in self._stage_ms.items() if v}

    def stage_means_ms(self) -> dict[str, float]:
        with self._lock:
            return {k: float(np.mean(v)) for k, v in self._stage_ms.items() if v}

    def snapshot(self, budget_ms: float) -> Snapshot:
        mean_ms, max_ms = self.processing_ms()
        values = {
            "processing_time_mean_ms": f"{mean_ms:.1f}",
            "processing_time_max_ms": f"{max_ms:.1f}",
            "budget_ms": f"{budget_ms:.1f}",
            "input_rate_hz": f"{self.input_rate_hz():.2f}",
        }
        values.update({f"stage_{k}_mean_ms": f"{v:.1f}" for k, v in sorted(self.stage_means_ms().items())})
        with self._lock:
            latency = float(np.mean(self._latency_ms)) if self._latency_ms else 0.0
        values["latency_mean_ms"] = f"{latency:.1f}"
        with self._lock:
            values.update({k: str(v) for k, v in sorted(self.counters.items())})
            values.update({f"sync_misses_{cam}": str(v) for cam, v in sorted(self.camera_misses.items())})
            values.update(self.info)
        if mean_ms > budget_ms:
            return Snapshot(WARN, f"processing {mean_ms:.0f} ms exceeds budget {budget_ms:.0f} ms", values)
        return Snapshot(OK, "running", values)


def to_diagnostic_array(snapshot: Snapshot, name: str, hardware_id: str, stamp):
    """Snapshot -> diagnostic_msgs/DiagnosticArray with one status."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([snapshot.level]), name=name, message=snapshot.message,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=k, value=v) for k, v in snapshot.values.items()]
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [status]
    return out
