"""Where a camera's T_cam_lidar comes from for one frame: the calibration file, TF, or TF where it is published.

`source`:
- file: the calibration YAML, which names its LiDAR frame; a cloud in another frame is an error
  (cloud_frame_mismatch), never a silent misprojection.
- tf: the TF buffer, from the cloud's frame to the frame of the camera's CameraInfo. With a `fixed_frame`
  (odom, map) the cloud is carried through it from its own stamp to the image's, so a camera that exposes 30 ms
  after the LiDAR at 20 m/s does not misplace features by 0.6 m; without one, one lookup at the cloud's stamp
  (exact for a rig whose sensors TF links statically, off by the ego-motion between the two stamps otherwise).
- auto: TF for a camera whose frame TF knows, the file for the others.
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.bridge.problems import InputError
from ov_panoptic_ros.bridge.transforms import TransformBuffer, TransformError
from ov_panoptic_ros.core.calibration import Calibration

SOURCES = ("auto", "tf", "file")


class Extrinsics:
    def __init__(self, source: str, calibration: Calibration | None = None, tf: TransformBuffer | None = None,
                 fixed_frame: str = ""):
        if source not in SOURCES:
            raise ValueError(f"extrinsics_source must be one of {', '.join(SOURCES)}, got {source!r}")
        if source != "tf" and calibration is None:
            raise ValueError(f"extrinsics_source {source} needs a calibration file")
        self.source, self.calibration, self.fixed_frame = source, calibration, fixed_frame.lstrip("/")
        self.tf = tf if tf is not None else TransformBuffer()

    @classmethod
    def from_file(cls, calibration: Calibration) -> Extrinsics:
        return cls("file", calibration)

    def time_offset_s(self, camera: str) -> float:
        """camera stamp + offset = LiDAR-clock time; the file says it, TF has no notion of it (0)."""
        ext = self.calibration.cameras.get(camera) if self.calibration is not None else None
        return ext.time_offset_s if ext is not None else 0.0

    def camera_from_lidar(self, camera: str, camera_frame: str, cloud_frame: str, cloud_ns: int,
                          image_ns: int) -> np.ndarray:
        """4x4 mapping the cloud's points into the camera's optical frame; InputError when there is none."""
        use_tf = self.source == "tf" or (self.source == "auto" and bool(camera_frame) and self.tf.has_frame(camera_frame))
        if not use_tf:
            return self._from_file(camera, camera_frame, cloud_frame)
        if not camera_frame:
            raise TransformError(f"camera {camera!r}: its CameraInfo has no header.frame_id to look up in TF")
        if self.fixed_frame:
            return self.tf.lookup_through(camera_frame, image_ns, cloud_frame, cloud_ns, self.fixed_frame)
        return self.tf.lookup(camera_frame, cloud_frame, cloud_ns)

    def _from_file(self, camera: str, camera_frame: str, cloud_frame: str) -> np.ndarray:
        ext = self.calibration.cameras.get(camera)
        if ext is None:
            raise TransformError(f"camera {camera!r} is not in the calibration file and TF does not know its frame"
                                 f" {camera_frame!r} (nor its path from {cloud_frame!r})")
        if cloud_frame.lstrip("/") != self.calibration.lidar_frame:
            raise InputError(f"the cloud is in frame {cloud_frame!r} but the calibration file's extrinsics are from"
                             f" its lidar_frame {self.calibration.lidar_frame!r}", kind="cloud_frame_mismatch")
        return ext.T_cam_lidar
