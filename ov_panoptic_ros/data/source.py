"""Where frames come from: one small interface for every offline input, and one factory that picks it.

A FrameSource (kiss-icp's dataset pattern) is iterable, yielding `(Frame, GroundTruth | None)` in time order,
and says what its ground-truth labels index (`classes`), where the last frame sits in it (`position`), and
which frames or cameras it had to leave out and why (`problems`, with the node's problem kinds). Replay,
training and the benchmarks take a FrameSource; only the node is fed by DDS instead.

A source that can build any frame on its own also offers random access, `__len__` and `__getitem__(i)` (the
world, nuScenes, SemanticKITTI): `source[i]` is the i-th frame of the iteration order, built as iteration
builds it, and sets `position` as yielding it would. The consumers test for the two methods: a training order
(train/data.py) then shuffles by index, and sharded replay (eval/strided.py) and the feature cache extraction
(train/feature_extract.py) build only their own shard's frames. Indices count the frames the source selects,
so a frame that iteration skips (its problem counted) still has one: `source[i]` of it counts the same problem
and raises FrameUnavailable, never IndexError (that means i is out of range).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from ov_panoptic_ros.bridge.problems import Problem, ProblemLog
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


class FrameProblem(Exception):
    """One frame's file or record (cloud, image, labels) that cannot be used: it costs its frame or its camera,
    not the run. `kind` is the problem kind the source counts (bridge/problems.py's where one fits)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class FrameUnavailable(Exception):
    """`source[i]` of a frame the source cannot build (its cloud or its ground truth cannot be used): iteration
    skips such a frame, an index cannot. `problem` says why and is also counted in the source's `problems`, as
    when iteration skips the frame. A consumer that can do without the frame (sharded replay) skips it; one that
    needs every index (a training order, a feature cache: every frame 0..len-1) stops on it, with this message."""

    def __init__(self, index: int, problem: Problem):
        super().__init__(f"frame {index} (position {problem.frame} in the source) cannot be used: {problem.kind}: "
                         f"{problem.detail}")
        self.index, self.problem = index, problem


class IndexedFrames:
    """Random access and iteration over one per-index builder, shared so that every indexed source checks and
    skips alike: a subclass gives `_frame(i)` (a frame, or FrameUnavailable with its problem counted), `NAME`,
    and `__len__`, or for a dataset on disk (nuScenes, SemanticKITTI) `_positions()`, `every`, `max_frames` and
    `problems`. Iteration skips what `[i]` raises for, so both give the same frames."""

    NAME = "dataset"
    every: int
    max_frames: int | None
    problems: ProblemLog

    def _positions(self) -> int:
        """How many frames the dataset holds, before `every` and `max_frames` select among them."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Frames this source selects (frames it yields, plus those it has to skip)."""
        n = (self._positions() + self.every - 1) // self.every
        return n if self.max_frames is None else min(n, int(self.max_frames))

    def _count(self, p: FrameProblem, index: int, stamp_ns: int | None, camera: str | None = None) -> Problem:
        """Count `p` (of the frame at position `index`, or of its `camera`) in `problems`, and return it."""
        problem = Problem(p.kind, p.detail, camera=camera, frame=index, stamp_ns=stamp_ns)
        self.problems.add(problem)
        return problem

    def _frame(self, i: int) -> tuple[Frame, GroundTruth | None]:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[Frame, GroundTruth | None]:
        i = operator.index(i)
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} of a {len(self)}-frame {self.NAME} source")
        return self._frame(i)

    def __iter__(self) -> Iterator[tuple[Frame, GroundTruth | None]]:
        for i in range(len(self)):
            try:
                item = self._frame(i)
            except FrameUnavailable:  # counted in the source's problems
                continue
            yield item


class FrameSource(Protocol):
    classes: ClassInfo | None  # what GroundTruth.labels index; None for a source without ground truth
    problems: ProblemLog
    position: int  # the position in the source of the frame last yielded, or last returned by [i] (0-based)

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
