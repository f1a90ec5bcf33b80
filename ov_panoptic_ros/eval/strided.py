"""One shard's share of a frame source: the frames whose ordinal k (0, 1, ... in the source's order) has
k % world == rank.

Why frames and not whole inputs: a source spec (a world seed range, a dataset split) is one input, and striding
spreads it evenly over the shards whatever its length. A source with random access (`__len__` and
`__getitem__`: the synthetic world, nuScenes, SemanticKITTI) builds only this shard's frames, and skips one it
cannot build (FrameUnavailable, its problem counted in the source's log, which is then this shard's, as
iteration skips it). Any other is read in full by every shard
and the other shards' frames are dropped before the pipeline, which is the cost sharding saves; the
problems the source logs (frames or cameras it left out) are then kept only by the shard of the next frame
it yields (shard 0 for those after the last), so each is counted once in the merged report.
"""
from __future__ import annotations

from collections import Counter

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.data.source import FrameUnavailable


class StridedSource:
    """A FrameSource (data/source.py) over `source`; `ordinal` is the last frame's place in the whole source."""

    def __init__(self, source, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"shard {rank} of {world}")
        self.source, self.rank, self.world = source, rank, world
        self.classes = source.classes
        self.indexed = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        self.problems = source.problems if world == 1 or self.indexed else ProblemLog()
        self.position = self.ordinal = -1
        self.yielded = 0  # frames of this shard the source gave

    def __len__(self) -> int:
        """This shard's frames; 0 when the source does not know its length."""
        return len(range(self.rank, len(self.source), self.world)) if hasattr(self.source, "__len__") else 0

    def __iter__(self):
        if self.indexed and self.world > 1:
            for k in range(self.rank, len(self.source), self.world):
                try:
                    item = self.source[k]
                except FrameUnavailable:
                    continue
                self.position, self.ordinal = self.source.position, k
                self.yielded += 1
                yield item
            return
        seen = _Seen(self.source.problems)
        for k, item in enumerate(self.source):
            mine = k % self.world == self.rank
            self._take(seen, mine)
            if mine:
                self.position, self.ordinal = self.source.position, k
                self.yielded += 1
                yield item
        self._take(seen, self.rank == 0)

    def _take(self, seen: "_Seen", mine: bool) -> None:
        """The problems the source logged since the last look: this shard's if `mine`, else another's."""
        if self.problems is self.source.problems:
            return
        new = seen.new()
        if mine:
            self.problems.extend(*new)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


class _Seen:
    """What a ProblemLog held at the last look, to tell the problems added since."""

    def __init__(self, log: ProblemLog):
        self.log = log
        self.frames, self.cameras, self.examples = Counter(), Counter(), 0

    def new(self) -> tuple[Counter, Counter, list]:
        frames, cameras = self.log.frames - self.frames, self.log.cameras - self.cameras
        examples = self.log.examples[self.examples:]
        self.frames, self.cameras, self.examples = Counter(self.log.frames), Counter(self.log.cameras), \
            len(self.log.examples)
        return frames, cameras, examples
