"""A KITTI odometry calib.txt -> the left colour camera (image_2) as a CameraModel, placed from the LiDAR.

calib.txt holds 3x4 matrices row by row: `P0:`..`P3:` the rectified projections of the four cameras and `Tr:`
the Velodyne -> camera-0 (rectified) transform. A KITTI loader projects a LiDAR point with
`P2 @ Tr @ [x y z 1]`. P2 is not K alone: its 4th column carries the image_2 camera's offset from camera 0,
P2 = K [I | t] with t = K^-1 P2[:, 3]. So the camera is K = P2[:, :3] placed at
T_cam_lidar = [[I, t], [0 0 0 1]] @ Tr, which projects every point to exactly the pixel P2 @ Tr does.
The images are rectified: no distortion.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.frame import CameraModel
from ov_panoptic_ros.data.semantickitti.errors import SemanticKittiError

CAMERA = "image_2"  # the left colour camera, the one every SemanticKITTI image-fusion method uses
ROTATION_TOLERANCE = 1e-3  # KITTI's Tr rotations are orthonormal to ~1e-7


@dataclass(frozen=True)
class Calibration:
    K: np.ndarray  # (3, 3)
    T_cam_lidar: np.ndarray  # (4, 4) Velodyne -> image_2's (rectified) optical frame

    def camera(self, width: int, height: int) -> CameraModel:
        """The image_2 camera for an image of this size (KITTI sequences differ by a few pixels)."""
        return CameraModel(CAMERA, width, height, self.K, T_cam_lidar=self.T_cam_lidar)


def _matrices(path: Path) -> dict[str, list[str]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SemanticKittiError(f"{path}: cannot read the calibration ({e})") from e
    out = {}
    for line in text.splitlines():
        key, colon, values = line.partition(":")
        if colon:
            out[key.strip()] = values.split()
    return out


def _matrix(path: Path, entries: dict[str, list[str]], key: str) -> np.ndarray:
    """The 3x4 matrix under `key`, or SemanticKittiError naming the file and the key."""
    if key not in entries:
        raise SemanticKittiError(f"{path}: no '{key}:' line (a KITTI odometry calib.txt has P0..P3 and Tr)")
    try:
        values = np.array([float(v) for v in entries[key]], dtype=np.float64)
    except ValueError:
        raise SemanticKittiError(f"{path}: '{key}:' holds something that is not a number: {entries[key]}") from None
    if values.size != 12 or not np.isfinite(values).all():
        raise SemanticKittiError(f"{path}: '{key}:' needs 12 finite numbers (a 3x4 matrix), got {entries[key]}")
    return values.reshape(3, 4)


def read_calibration(path: Path) -> Calibration:
    """image_2's intrinsics and extrinsics from calib.txt; SemanticKittiError naming the file when P2 or Tr is
    missing or is not a rectified projection / a rigid transform."""
    entries = _matrices(path)
    P2, Tr = _matrix(path, entries, "P2"), _matrix(path, entries, "Tr")
    K = P2[:, :3]
    if not (K[0, 0] > 0 and K[1, 1] > 0 and K[1, 0] == 0 and np.array_equal(K[2], [0.0, 0.0, 1.0])):
        raise SemanticKittiError(f"{path}: P2 is not a rectified projection [[fx, 0, cx, .], [0, fy, cy, .],"
                                 f" [0, 0, 1, .]] with fx, fy > 0: {P2.tolist()}")
    R = Tr[:, :3]
    if np.abs(R @ R.T - np.eye(3)).max() > ROTATION_TOLERANCE or np.linalg.det(R) <= 0:
        raise SemanticKittiError(f"{path}: Tr's left 3x3 block is not a rotation: {Tr.tolist()}")
    offset = np.eye(4)
    offset[:3, 3] = np.linalg.solve(K, P2[:, 3])
    Tr4 = np.vstack([Tr, [0.0, 0.0, 0.0, 1.0]])
    return Calibration(K.copy(), offset @ Tr4)
