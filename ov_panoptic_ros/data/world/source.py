"""Drives of the synthetic world as a FrameSource (data/source.py): what replay, training and `record_drive`
take. One seed or a range of seeds (one drive each); random access by frame, so training can shuffle."""
from __future__ import annotations

from collections.abc import Sequence

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.source import GroundTruth, IndexedFrames
from ov_panoptic_ros.data.world.generator import World, WorldConfig


def world_config(config: WorldConfig | None = None, cameras: int | None = None,
                 image_size: Sequence[int] | None = None, duration_s: float | None = None) -> WorldConfig:
    """A WorldConfig from plain options (what a YAML or the command line can say)."""
    base = config or WorldConfig()
    return WorldConfig(duration_s=base.duration_s if duration_s is None else float(duration_s),
                       rate_hz=base.rate_hz, cameras=base.cameras if cameras is None else int(cameras),
                       image_size=base.image_size if image_size is None else tuple(int(v) for v in image_size),
                       lidar=base.lidar, view_radius_m=base.view_radius_m, frame_id=base.frame_id)


class WorldSource(IndexedFrames):
    """Per seed, frames start, start + every, ... (`frames` of them; to the end of the drive without it), with
    their per-point ground truth (labels index `classes`, the world's 16 classes). Seeds come one after another.
    Every frame can be built, so iteration yields them all."""

    NAME = "world"

    def __init__(self, seed: int | Sequence[int] = 0, frames: int | None = None, config: WorldConfig | None = None,
                 start: int = 0, ground_truth: bool = True, every: int = 1, cameras: int | None = None,
                 image_size: Sequence[int] | None = None, duration_s: float | None = None) -> None:
        self.seeds = [int(seed)] if isinstance(seed, int) else [int(s) for s in seed]
        if not self.seeds or every < 1 or start < 0:
            raise ValueError(f"a world source needs seeds, every >= 1 and start >= 0; got {self.seeds}, {every}, {start}")
        self.config = world_config(config, cameras, image_size, duration_s)
        self._worlds: dict[int, World] = {}
        total = self.world(0).num_frames
        available = (total - 1 - start) // every + 1 if start < total else 0
        self.frames_per_seed = available if frames is None else frames
        if self.frames_per_seed < 1 or self.frames_per_seed > available:
            raise ValueError(f"{self.frames_per_seed} frames from {start} every {every} are not in the drive's {total}"
                             " frames (duration_s makes longer drives)")
        self.start, self.every, self.ground_truth = start, every, ground_truth
        self.classes = self.world(0).classes
        self.problems = ProblemLog()
        self.position = -1

    def world(self, k: int) -> World:
        """The k-th seed's world (built once: its layout takes a few seconds)."""
        if k not in self._worlds:
            self._worlds[k] = World(self.seeds[k], self.config)
        return self._worlds[k]

    def __len__(self) -> int:
        return len(self.seeds) * self.frames_per_seed

    def _frame(self, i: int) -> tuple[Frame, GroundTruth | None]:
        k, j = divmod(i, self.frames_per_seed)
        wf = self.world(k).frame(self.start + j * self.every)
        self.position = i
        return wf.frame, GroundTruth(wf.labels, wf.instance_ids) if self.ground_truth else None
