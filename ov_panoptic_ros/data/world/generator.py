"""The world's frame API: `World(seed, config).frame(i)` and `.frames(n)`.

A frame depends on (seed, index) alone: the street is drawn from the seed's layout stream once, and frame i
poses it at time i / rate and draws each sensor's noise from its own stream, so a data loader can ask for
any frame in any order, and two processes agree on it. `sweep(i)` and `views(i)` make one sensor's part of
frame i (a 2D teacher needs no LiDAR).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ov_panoptic_ros.core.calibration import Calibration
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import CameraModel, Frame, Vocabulary
from ov_panoptic_ros.data.world import cameras as rig
from ov_panoptic_ros.data.world.classes import WORLD_CLASSES, vocabulary
from ov_panoptic_ros.data.world.layout import Layout, make_layout
from ov_panoptic_ros.data.world.lidar import LidarConfig, Sweep, sweep
from ov_panoptic_ros.data.world.render import Rendering, render
from ov_panoptic_ros.data.world.scene import Posed

LAYOUT_STREAM, FRAME_STREAM = 0x57A7, 0xF4A3  # seed-sequence keys: one street per seed, noise per frame
EPOCH_NS = 1_700_000_000 * 10**9


@dataclass
class WorldConfig:
    duration_s: float = 20.0  # the drive; frames 0 .. duration * rate - 1 exist
    rate_hz: float = 10.0
    cameras: int = 2  # the first N of cameras.MOUNTS: front, back, front-left, front-right, back-left, back-right
    image_size: tuple[int, int] = (480, 320)  # width, height
    lidar: LidarConfig = field(default_factory=LidarConfig)
    view_radius_m: float = 150.0  # primitives farther from the ego are left out of a frame
    frame_id: str = "lidar_top"


@dataclass
class WorldFrame:
    """One synchronized sweep + images with exact panoptic ground truth for both."""

    index: int
    time_s: float
    frame: Frame  # points, intensity, images, cameras, stamp_ns, frame_id
    labels: np.ndarray  # (N,) uint16 index into classes.CLASSES
    instance_ids: np.ndarray  # (N,) uint32, 0 for stuff; one id per thing for the whole drive
    rings: np.ndarray  # (N,) uint16 beam of each point
    image_labels: list[np.ndarray]  # per camera (H, W) uint16, UNLABELED for the sky
    image_instance_ids: list[np.ndarray]  # per camera (H, W) uint32
    image_depths: list[np.ndarray]  # per camera (H, W) float32 metres along the pixel ray, inf for the sky
    world_T_lidar: np.ndarray  # (4, 4) ego pose in the world


class World:
    """One seed's street and drive. Making it draws the layout and the pixel rays (a few hundred ms)."""

    def __init__(self, seed: int, config: WorldConfig | None = None) -> None:
        self.seed = int(seed)
        self.config = config or WorldConfig()
        if self.config.rate_hz <= 0 or self.config.duration_s <= 0:
            raise ValueError(f"rate_hz and duration_s must be positive, got {self.config.rate_hz}, "
                             f"{self.config.duration_s}")
        self.layout: Layout = make_layout(np.random.default_rng([LAYOUT_STREAM, self.seed]), self.config.duration_s,
                                          self.config.lidar.height_m)
        self.cameras: list[CameraModel] = rig.rig(self.config.cameras, *self.config.image_size)
        self.calibration: Calibration = rig.calibration(self.cameras, self.config.frame_id)
        self._rays = [rig.image_rays(cam) for cam in self.cameras]

    @property
    def classes(self) -> ClassInfo:
        """What the labels index: the 16 classes with their thing and novel flags."""
        return WORLD_CLASSES

    @property
    def vocabulary(self) -> Vocabulary:
        return vocabulary()

    @property
    def num_frames(self) -> int:
        return int(self.config.duration_s * self.config.rate_hz + 1e-9)

    def time_of(self, index: int) -> float:
        return index / self.config.rate_hz

    def primitives(self, index: int) -> Posed:
        """The primitives frame `index` is cast against (world frame)."""
        t = self.time_of(index)
        return self.layout.scene.at(t, self.layout.ego.pose(t)[:3, 3], self.config.view_radius_m)

    def _check(self, index: int) -> float:
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} is outside the drive's {self.num_frames} frames")
        return self.time_of(index)

    def sweep(self, index: int) -> Sweep:
        """Frame `index`'s LiDAR sweep alone (what `frame` returns, without rendering the images)."""
        pose = self.layout.ego.pose(self._check(index))
        rng = np.random.default_rng([FRAME_STREAM, self.seed, index, 0])
        return sweep(self.primitives(index), self.layout.scene.materials, pose, self.config.lidar, rng)

    def views(self, index: int) -> list[Rendering]:
        """Frame `index`'s camera images and their label maps alone (no LiDAR), one per camera."""
        pose = self.layout.ego.pose(self._check(index))
        posed, materials = self.primitives(index), self.layout.scene.materials
        return [render(posed, materials, self.layout.lighting, cam, rays, pose,
                       np.random.default_rng([FRAME_STREAM, self.seed, index, 1 + k]))
                for k, (cam, rays) in enumerate(zip(self.cameras, self._rays))]

    def frame(self, index: int) -> WorldFrame:
        t = self._check(index)
        scan, views = self.sweep(index), self.views(index)
        frame = Frame(points=scan.points, images=[v.image for v in views], cameras=self.cameras,
                      intensity=scan.intensity, stamp_ns=EPOCH_NS + round(t * 1e9), frame_id=self.config.frame_id)
        return WorldFrame(index, t, frame, scan.labels, scan.instance_ids, scan.rings, [v.labels for v in views],
                          [v.instance_ids for v in views], [v.depth for v in views], self.layout.ego.pose(t))

    def frames(self, n: int | None = None, start: int = 0) -> Iterator[WorldFrame]:
        """Frames start .. start + n - 1 (to the end of the drive without n)."""
        stop = self.num_frames if n is None else start + n
        if stop > self.num_frames:
            raise IndexError(f"frames {start}..{stop - 1} asked for; the drive has {self.num_frames} "
                             "(raise WorldConfig.duration_s)")
        for i in range(start, stop):
            yield self.frame(i)
