"""A world's drive as a FrameSource (data/source.py): what replay, training and `record_drive` take."""
from __future__ import annotations

from collections.abc import Iterator

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.source import GroundTruth
from ov_panoptic_ros.data.world.generator import World, WorldConfig


class WorldSource:
    """Frames start .. start + frames - 1 (to the end of the drive without `frames`) of World(seed, config),
    with their per-point ground truth (labels index `classes`, the world's 16 classes)."""

    def __init__(self, seed: int = 0, frames: int | None = None, config: WorldConfig | None = None, start: int = 0,
                 ground_truth: bool = True) -> None:
        self.world = World(seed, config)
        self.start = start
        self.frames = self.world.num_frames - start if frames is None else frames
        if self.frames < 1 or start < 0 or start + self.frames > self.world.num_frames:
            raise ValueError(f"frames {start}..{start + self.frames - 1} are not in the drive's "
                             f"{self.world.num_frames} frames (WorldConfig.duration_s makes longer drives)")
        self.ground_truth = ground_truth
        self.classes = self.world.classes
        self.problems = ProblemLog()
        self.position = -1

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[tuple[Frame, GroundTruth | None]]:
        for self.position, wf in enumerate(self.world.frames(self.frames, self.start)):
            yield wf.frame, GroundTruth(wf.labels, wf.instance_ids) if self.ground_truth else None
