"""A nuScenes dataroot (one version, some scenes) as a FrameSource (data/source.py).

Frames are the keyframes (samples) of the chosen scenes, one scene after another: the LIDAR_TOP sweep in its
own frame, the six cameras' images with K and an ego-motion-compensated T_cam_lidar (geometry.py), stamped
with the LiDAR's timestamp, and Panoptic nuScenes ground truth in the 16 challenge classes (labels.py). The
tables are checked when the source is opened (tables.py: NuScenesError, nothing yielded); after that a bad
file costs only its frame (the sweep or its labels) or its camera (an image), counted in `problems`.

Random access (data/source.py): `source[i]` is the i-th selected sample (position i * every), the frame
iteration yields for it; a sample whose sweep or labels cannot be used raises FrameUnavailable there.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.core.classes import NUSCENES_NOVEL, nuscenes_classes
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.nuscenes.errors import NuScenesError
from ov_panoptic_ros.data.nuscenes.files import read_image, read_points
from ov_panoptic_ros.data.nuscenes.geometry import camera_from_lidar, camera_model
from ov_panoptic_ros.data.nuscenes.labels import label_table, panoptic_truth, read_panoptic
from ov_panoptic_ros.data.nuscenes.poses import SensorSample, same_mount, sensor_sample
from ov_panoptic_ros.data.nuscenes.splits import select_scenes
from ov_panoptic_ros.data.nuscenes.tables import NuScenesTables
from ov_panoptic_ros.data.source import (FrameProblem, FrameUnavailable, GroundTruth, IndexedFrames,
                                         ground_truth_problem)

LIDAR = "LIDAR_TOP"
CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")


class NuScenesSource(IndexedFrames):
    """Samples of DATAROOT/VERSION -> (Frame, GroundTruth | None); see the module docstring.

    `split` (train, val, mini_train, mini_val, test, ...: the devkit's scene splits of that version) and
    `scenes` (names: ['scene-0061'] or 'scene-0061,scene-0103') pick the scenes, in scene.json order; all of
    them by default. `every` / `max_frames` select samples by their position in those scenes' samples one after
    another (`position`, also each problem's `frame`). `cameras` names the channels to read ([] for LiDAR only).
    `ground_truth` None reads Panoptic nuScenes labels except for v1.0-test, which has none (GroundTruth None,
    `classes` None). `novel` names the classes the ground truth marks novel (the paper's split by default).
    """

    NAME = "nuScenes"

    def __init__(self, dataroot: str | Path, version: str = "v1.0-mini", scenes: Sequence[str] | None = None,
                 split: str | None = None, every: int = 1, max_frames: int | None = None,
                 cameras: Sequence[str] | None = None, ground_truth: bool | None = None,
                 novel: Sequence[str] = NUSCENES_NOVEL):
        if int(every) < 1 or (max_frames is not None and int(max_frames) < 0):
            raise NuScenesError(f"a nuScenes source needs every >= 1 and max_frames >= 0, got {every}, {max_frames}")
        if isinstance(cameras, str):  # 'CAM_FRONT,CAM_BACK', as a command line gives them
            cameras = [c.strip() for c in cameras.split(",") if c.strip()]
        self.cameras = list(CAMERAS if cameras is None else cameras)
        unknown = [c for c in self.cameras if c not in CAMERAS]
        if unknown:
            raise NuScenesError(f"unknown nuScenes camera(s) {unknown} (cameras: {', '.join(CAMERAS)})")
        labelled = not version.endswith("test") if ground_truth is None else bool(ground_truth)
        self.tables = NuScenesTables(dataroot, version, labels=labelled)
        self.classes = nuscenes_classes(tuple(novel)) if labelled else None
        self._lut = label_table(self.tables.categories, self.classes, self.tables.folder / "category.json") \
            if self.classes else None
        names = [name for name, _ in self.tables.scenes]
        chosen = set(select_scenes(names, version, split, scenes))
        self.samples = [t for name, tokens in self.tables.scenes if name in chosen for t in tokens]
        self.every, self.max_frames = int(every), max_frames
        self.problems = ProblemLog()
        self.position = -1

    def _positions(self) -> int:
        return len(self.samples)

    def sensors(self, index: int, channels: Sequence[str]) -> dict[str, SensorSample]:
        """The keyframes of `channels` (LIDAR_TOP, cameras) of the sample at `index` (a position, as `position`
        says): stamps, mountings, ego poses and files, as a vehicle's TF and recorder hold them (poses.py).
        A channel the sample lacks is left out; NuScenesError for one whose records are unusable."""
        keyframes = self.tables.keyframes.get(self.samples[index], {})
        return {c: sensor_sample(self.tables, c, keyframes[c]) for c in channels if c in keyframes}

    def rig(self) -> dict[str, np.ndarray]:
        """LIDAR_TOP's and the cameras' mountings (4x4 ego <- sensor) over the selected samples: what a vehicle's
        /tf_static holds. NuScenesError when a sensor's mounting changes between them (scenes of two logs):
        one rig cannot describe them."""
        rig: dict[str, np.ndarray] = {}
        for index in range(0, len(self) * self.every, self.every):
            for channel, sensor in self.sensors(index, [LIDAR, *self.cameras]).items():
                if not same_mount(rig.setdefault(channel, sensor.mount), sensor.mount):
                    raise NuScenesError(f"{channel}'s calibrated_sensor changes within the selected samples (at "
                                        f"sample {self.samples[index]}): choose samples of one log")
        return rig

    def _frame(self, i: int) -> tuple[Frame, GroundTruth | None]:
        """Frame i (the sample at position i * every): the one builder behind iteration and [i]. Sets `position`;
        FrameUnavailable, its problem counted, when the sample's sweep or its labels cannot be used."""
        index = i * self.every
        sample = self.samples[index]
        channels = self.tables.keyframes.get(sample, {})
        lidar = channels.get(LIDAR)
        stamp_ns = int(lidar["timestamp"]) * 1000 if lidar else None  # nuScenes stamps are microseconds
        try:
            if lidar is None:
                raise FrameProblem("cloud_missing", f"sample {sample} has no {LIDAR} keyframe in sample_data.json")
            points, intensity = read_points(self.tables.file(lidar["filename"]))
            truth = self._truth(lidar, points.shape[0]) if self.classes else None
        except FrameProblem as p:
            raise FrameUnavailable(i, self._count(p, index, stamp_ns)) from None
        images, cameras = [], []
        for name in self.cameras:
            try:
                image, camera = self._camera(name, channels.get(name), lidar)
            except FrameProblem as p:
                self._count(p, index, stamp_ns, camera=name)
                continue
            images.append(image)
            cameras.append(camera)
        finite = np.isfinite(points).all(axis=1)  # as assemble_frame: only finite points enter a frame
        if not finite.all():
            points, intensity = points[finite], intensity[finite]
            if truth is not None:
                truth = GroundTruth(truth.labels[finite], truth.instance_ids[finite])
        frame = Frame(points, images, cameras, intensity=intensity, stamp_ns=stamp_ns, frame_id=LIDAR)
        self.position = index
        return frame, truth

    def _truth(self, lidar: dict, n_points: int) -> GroundTruth:
        filename = self.tables.label_files.get(lidar["token"])
        if filename is None:
            raise FrameProblem("ground_truth_missing", f"{self.tables.folder / 'panoptic.json'} has no labels for "
                                                       f"{LIDAR} sample_data {lidar['token']}")
        path = self.tables.file(filename)
        truth = panoptic_truth(read_panoptic(path), self._lut, self.classes, path)
        problem = ground_truth_problem(truth.labels, n_points, self.classes.n_classes)
        if problem is not None:
            raise FrameProblem(problem[0], f"{path}: {problem[1]}")
        return truth

    def _camera(self, name: str, record: dict | None, lidar: dict):
        """One camera's image and its model placed for this sweep."""
        if record is None:
            raise FrameProblem("image_missing", f"the sample has no {name} keyframe in sample_data.json")
        image = read_image(self.tables.file(record["filename"]))
        height, width = image.shape[:2]
        if (record.get("width"), record.get("height")) not in ((width, height), (0, 0), (None, None)):
            raise FrameProblem("image_size_mismatch", f"{record['filename']} is {width}x{height} but sample_data "
                                                      f"says {record['width']}x{record['height']}")
        cs_cam = self.tables.calibrated[record["calibrated_sensor_token"]]
        try:
            T = camera_from_lidar(cs_cam, self.tables.ego_pose[record["ego_pose_token"]],
                                  self.tables.ego_pose[lidar["ego_pose_token"]],
                                  self.tables.calibrated[lidar["calibrated_sensor_token"]])
            return image, camera_model(name, width, height, cs_cam, T)
        except (ValueError, KeyError, TypeError) as e:  # a broken calibration or pose costs this camera only
            raise FrameProblem("camera_calibration_bad", f"{name}: calibrated_sensor or ego_pose record: {e}") \
                from None
