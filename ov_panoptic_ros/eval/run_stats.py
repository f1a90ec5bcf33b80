"""What a replay run records about itself: frames scored and skipped with reasons, latencies, sample frames."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.bridge.problems import Problem, ProblemLog
from ov_panoptic_ros.core.frame import Frame, Vocabulary


def percentiles(values: list[float]) -> dict:
    """p50/p90/p99/mean/max of a list (None each when empty), for latency tables."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "max": None, "n": 0}
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()),
            "max": float(a.max()), "n": int(a.size)}


class RunStats:
    """Counts, skips with reasons, latencies: everything metrics.json says about the run itself.

    Skips and camera problems go into a ProblemLog: the frame source's own, so what the source left out
    and what the run skipped (a pipeline error, an unreadable output) are counted in one place.
    """

    def __init__(self, problems: ProblemLog | None = None):
        self.problems = problems if problems is not None else ProblemLog()
        self.processed = 0
        self.frames_without_cameras = 0
        self.latency_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = {}
        self.points = 0
        self.partial_reasons: list[str] = []

    def skip(self, index: int, stamp_ns: int, kind: str, detail: str) -> None:
        self.problems.add(Problem(kind, detail, frame=index, stamp_ns=stamp_ns))

    @property
    def skipped(self) -> int:
        return self.problems.frames_skipped

    def done(self, frame: Frame, latency_ms: float, timings: dict[str, float]) -> None:
        self.processed += 1
        self.points += frame.num_points
        self.latency_ms.append(latency_ms)
        for stage, ms in timings.items():
            self.stage_ms.setdefault(stage, []).append(float(ms))
        if not frame.cameras:
            self.frames_without_cameras += 1

    def points_dict(self) -> dict:
        return {"total": self.points, "per_frame_mean": self.points / self.processed if self.processed else None}

    def frames_dict(self, in_bag: int, read: int, every: int, max_frames: int | None) -> dict:
        examples = [{"frame": p.frame, "stamp_ns": p.stamp_ns, "kind": p.kind, "detail": p.detail}
                    for p in self.problems.examples if p.camera is None]
        return {
            "in_bag": in_bag, "read": read, "every": every, "max_frames": max_frames,
            "processed": self.processed, "skipped": self.skipped,
            "skipped_by_reason": dict(self.problems.frames), "skipped_examples": examples,
            "without_cameras": self.frames_without_cameras, "camera_issues": dict(self.problems.cameras),
        }


@dataclass
class FrameSample:
    """One frame kept for the figures."""

    index: int
    stamp_ns: int
    frame: Frame
    pred_labels: np.ndarray  # vocabulary indices
    pred_instances: np.ndarray
    gt_labels: np.ndarray | None  # None: a run without ground truth
    gt_instances: np.ndarray | None
    vocabulary: Vocabulary | None = None  # the one pred_labels index: what colors a run without ground truth


class SampleKeeper:
    """Keeps `k` frames spread over the expected run (plus the last one if the run ends early)."""

    def __init__(self, expected: int, k: int):
        self.targets = set(np.linspace(0, max(expected - 1, 0), k).round().astype(int).tolist()) if k else set()
        self.samples: list[FrameSample] = []
        self.last: FrameSample | None = None
        self.position = 0

    def offer(self, sample: FrameSample) -> None:
        if self.position in self.targets:
            self.samples.append(sample)
        self.last = sample
        self.position += 1

    def result(self) -> list[FrameSample]:
        if self.targets and self.last is not None and self.last not in self.samples \
                and len(self.samples) < len(self.targets):
            return self.samples + [self.last]
        return self.samples
