"""The training order: which frame each process trains on next, resumable from one number.

Global position g is frame k = g mod L of epoch g // L (L frames per epoch). A source that offers `__len__`
and `__getitem__` is shuffled per epoch by index, with a permutation seeded by (seed, epoch), so any
position is recomputed without replaying the past; a plain iterable source is read in order, epoch after
epoch (a resume re-reads at most the epoch it stopped in). Process r of W takes the positions start + r,
start + r + W, ...: once every process has taken n frames, the positions before start + n W are consumed,
and that number is what a checkpoint stores.

Frames read may be kept in memory (`cache_frames`): the synthetic generators take seconds per frame and a
training step a fraction of one, so without a cache every epoch would wait on generating the frames again.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.source import FrameSource, GroundTruth


class TrainingDataError(RuntimeError):
    """The training source cannot feed training (no frames, a frame without ground truth)."""


class FrameOrder:
    def __init__(self, source: FrameSource, seed: int = 0, rank: int = 0, world: int = 1, cache_frames: int = 0,
                 epoch_frames: int | None = None):
        """`epoch_frames`: L of an iterable source when known (from a checkpoint), so a resume skips whole epochs."""
        self.source, self.seed, self.rank, self.world = source, seed, rank, world
        self.indexed = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        self.epoch_frames = len(source) if self.indexed else epoch_frames
        self.cache_frames = cache_frames
        self.cache: dict[int, tuple[Frame, GroundTruth]] = {}
        self.cache_complete = False  # iterable: every frame of an epoch is cached, the source is no longer read
        self._permutation: tuple[int, np.ndarray] | None = None

    def frames(self, start: int) -> Iterator[tuple[int, Frame, GroundTruth]]:
        """(global position, frame, ground truth) for this process, from position `start` on, forever."""
        return ((g, frame, truth) for g, _, frame, truth in self.numbered_frames(start))

    def numbered_frames(self, start: int) -> Iterator[tuple[int, int, Frame, GroundTruth]]:
        """(global position, the frame's index in the source, frame, ground truth), as `frames`."""
        items = self._indexed(start) if self.indexed else self._in_order(start)
        for g, k, frame, truth in items:
            if truth is None:
                raise TrainingDataError(f"training frame at position {g} (stamp {frame.stamp_ns}) has no ground truth")
            yield g, k, frame, truth

    def _indexed(self, start: int):
        n = self.epoch_frames
        if n == 0:
            raise TrainingDataError("the training source has no frames")
        g = start + self.rank
        while True:
            epoch, k = divmod(g, n)
            i = int(self.permutation(epoch)[k])
            frame, truth = self.cache[i] if i in self.cache else self._keep(i, self.source[i])
            yield g, i, frame, truth
            g += self.world

    def permutation(self, epoch: int) -> np.ndarray:
        if self._permutation is None or self._permutation[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._permutation = (epoch, rng.permutation(self.epoch_frames))
        return self._permutation[1]

    def _in_order(self, start: int):
        length = self.epoch_frames
        g = start - start % length if length else 0  # the first position of start's epoch
        while True:
            count = 0
            for frame, truth in self._epoch():
                if g >= start and (g - start) % self.world == self.rank:
                    yield g, count, frame, truth
                g += 1
                count += 1
            if count == 0:
                raise TrainingDataError("the training source yields no frames")
            self.epoch_frames = count

    def _epoch(self):
        if self.cache_complete:
            yield from (self.cache[k] for k in range(len(self.cache)))
            return
        k = -1
        for k, item in enumerate(self.source):
            yield self._keep(k, item)
        self.cache_complete = 0 < len(self.cache) == k + 1

    def _keep(self, key: int, item):
        if len(self.cache) < self.cache_frames:
            self.cache[key] = item
        return item
