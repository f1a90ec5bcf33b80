"""The synthetic street (data/synthetic.py) as a FrameSource, and recorded as a bag: the drive the demo,
the tests and the benchmarks share."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.data.bag.recording import RecordedDrive, record_drive
from ov_panoptic_ros.data.source import GroundTruth
from ov_panoptic_ros.data.synthetic import CLASSES, NOVEL, STUFF, scene_sequence


def synthetic_classes() -> ClassInfo:
    return ClassInfo.from_names(CLASSES, things=[c for c in CLASSES if c not in STUFF], novel=NOVEL)


class SyntheticSource:
    """`frames` consecutive frames of one seeded street (10 Hz), with exact ground truth."""

    def __init__(self, seed: int = 0, frames: int = 6, rate_hz: float = 10.0, num_points: int = 4000,
                 num_cameras: int = 2, image_size: tuple[int, int] = (160, 120), ground_truth: bool = True):
        if frames < 1:
            raise ValueError(f"a synthetic drive needs at least 1 frame, got {frames}")
        self.seed, self.frames, self.rate_hz = seed, frames, rate_hz
        self.scene_options = dict(num_points=num_points, num_cameras=num_cameras, image_size=image_size)
        self.ground_truth = ground_truth
        self.classes = synthetic_classes()
        self.problems = ProblemLog()
        self.position = -1

    def __len__(self) -> int:
        return self.frames

    def __iter__(self) -> Iterator[tuple[Frame, GroundTruth | None]]:
        scenes = scene_sequence(self.frames, seed=self.seed, rate_hz=self.rate_hz, **self.scene_options)
        for self.position, scene in enumerate(scenes):
            truth = GroundTruth(scene.gt_labels, scene.gt_instance_ids) if self.ground_truth else None
            yield scene.frame, truth


def write_synthetic_bag(path: str | Path, n_frames: int = 6, storage: str | None = None, seed: int = 0,
                        num_points: int = 4000, num_cameras: int = 2, image_size: tuple[int, int] = (160, 120),
                        rate_hz: float = 10.0, compressed: bool = False, topics: BagTopics | None = None,
                        camera_delay_s: float = 0.004, ground_truth: bool = True,
                        attach_calibration: bool = True) -> RecordedDrive:
    """Record a synthetic drive in the evaluation layout (see `record_drive` for the timing of the messages)."""
    source = SyntheticSource(seed, n_frames, rate_hz, num_points, num_cameras, image_size, ground_truth)
    return record_drive(path, source, source.classes, storage=storage, topics=topics, compressed=compressed,
                        camera_delay_s=camera_delay_s, attach_calibration=attach_calibration)
