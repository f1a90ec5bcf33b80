"""Where frames come from: one small interface for every offline input, and one factory that picks it.

A FrameSource (kiss-icp's dataset pattern) is iterable, yielding `(Frame, GroundTruth | None)` in time order,
and says what its ground-truth labels index (`classes`), where the last frame sits in it (`position`), and
which frames or cameras it had to leave out and why (`problems`, with the node's problem kinds). Replay,
training and the benchmarks take a FrameSource; only the node is fed by DDS instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import Frame


@dataclass
class GroundTruth:
    """Per-point panoptic ground truth, aligned with `Frame.points` (labels index the source's `classes`)."""

    labels: np.ndarray  # (N,) uint16
    instance_ids: np.ndarray  # (N,) uint32, 0 for stuff

    def __post_init__(self) -> None:
        if self.labels.shape != self.instance_ids.shape or self.labels.ndim != 1:
            raise ValueError(f"ground truth needs (N,) labels and instance ids, got {self.labels.shape} and "
                             f"{self.instance_ids.shape}")


class FrameSource(Protocol):
    classes: ClassInfo | None  # what GroundTruth.labels index; None for a source without ground truth
    problems: ProblemLog
    position: int  # the position in the source of the frame last yielded (0-based)

    def __iter__(self) -> Iterator[tuple[Frame, GroundTruth | None]]: ...


def ground_truth_problem(labels: np.ndarray, n_points: int, n_classes: int) -> tuple[str, str] | None:
    """(kind, detail) when a frame's ground truth cannot be scored against its cloud, else None."""
    if labels.shape[0] != n_points:
        return ("ground_truth_point_count", f"ground truth has {labels.shape[0]} points but the cloud has {n_points}")
    bad = np.unique(labels[labels >= n_classes])
    if bad.size:
        return ("ground_truth_unknown_class",
                f"ground truth label(s) {bad[:10].tolist()} outside the {n_classes}-class list")
    return None
