"""Camera extrinsics and time offsets from a calibration YAML.

TF is not assumed: the file states, per camera, the transform from the LiDAR frame into the camera's
optical frame and the camera's clock offset. Format:

    lidar_frame: lidar_top
    cameras:
      cam_front:
        T_cam_lidar: [16 numbers, row-major 4x4]          # or:
        # translation: [x, y, z]                           # camera optical frame <- LiDAR frame
        # rotation_xyzw: [qx, qy, qz, qw]
        time_offset_s: 0.0                                 # camera stamp + offset = LiDAR-clock time
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file and the problem."""


@dataclass
class CameraExtrinsics:
    T_cam_lidar: np.ndarray  # (4, 4)
    time_offset_s: float = 0.0


@dataclass
class Calibration:
    lidar_frame: str = "lidar"
    cameras: dict[str, CameraExtrinsics] = field(default_factory=dict)

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            {
                "lidar_frame": self.lidar_frame,
                "cameras": {
                    name: {"T_cam_lidar": [float(v) for v in ext.T_cam_lidar.reshape(-1)],
                           "time_offset_s": float(ext.time_offset_s)}
                    for name, ext in self.cameras.items()
                },
            },
            sort_keys=False,
        )


def unit_quaternion_rows(x, y, z, w) -> tuple[tuple, tuple, tuple]:
    """The rows of a unit quaternion's rotation matrix: the package's one formula, in plain arithmetic so that
    TF's per-lookup `pose_matrix` pays for no normalisation or extra array."""
    return ((1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
            (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
            (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)))


def quaternion_to_matrix(q_xyzw) -> np.ndarray:
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64) / np.linalg.norm(q_xyzw)
    return np.array(unit_quaternion_rows(x, y, z, w))


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """The inverse of a rigid 4x4 transform (R^T, -R^T t): exact where np.linalg.inv would round."""
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def _parse_camera(name: str, entry, source: str) -> CameraExtrinsics:
    where = f"{source}: camera {name!r}"
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping, got {entry!r}")
    unknown = set(entry) - {"T_cam_lidar", "translation", "rotation_xyzw", "time_offset_s"}
    if unknown:
        raise CalibrationError(f"{where}: unknown key(s) {sorted(unknown)}")
    try:
        if "T_cam_lidar" in entry:
            T = np.asarray(entry["T_cam_lidar"], dtype=np.float64)
            if T.size != 16:
                raise CalibrationError(f"{where}: T_cam_lidar needs 16 numbers, got {T.size}")
            T = T.reshape(4, 4)
            if not np.allclose(T[3], [0, 0, 0, 1]):
                raise CalibrationError(f"{where}: T_cam_lidar's last row must be [0, 0, 0, 1]")
        elif "translation" in entry and "rotation_xyzw" in entry:
            t = np.asarray(entry["translation"], dtype=np.float64).reshape(3)
            q = np.asarray(entry["rotation_xyzw"], dtype=np.float64).reshape(4)
            if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-9:
                raise CalibrationError(f"{where}: rotation_xyzw is not a valid quaternion")
            T = np.eye(4)
            T[:3, :3] = quaternion_to_matrix(q)
            T[:3, 3] = t
        else:
            raise CalibrationError(f"{where}: give T_cam_lidar, or translation and rotation_xyzw")
        offset = float(entry.get("time_offset_s", 0.0))
    except (TypeError, ValueError) as e:
        if isinstance(e, CalibrationError):
            raise
        raise CalibrationError(f"{where}: {e}") from e
    if not np.isfinite(T).all():
        raise CalibrationError(f"{where}: transform has non-finite values")
    if not np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-3):
        raise CalibrationError(f"{where}: rotation part of the transform is not orthonormal")
    return CameraExtrinsics(T_cam_lidar=T, time_offset_s=offset)


def parse_calibration(text: str, source: str = "<calibration>") -> Calibration:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CalibrationError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict) or not data["cameras"]:
        raise CalibrationError(f"{source}: expected a mapping with a non-empty 'cameras' mapping")
    cams = {str(name): _parse_camera(str(name), entry, source) for name, entry in data["cameras"].items()}
    return Calibration(lidar_frame=str(data.get("lidar_frame", "lidar")), cameras=cams)


def load_calibration(path: str | Path) -> Calibration:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise CalibrationError(f"calibration file {path}: {e.strerror or e}") from e
    return parse_calibration(text, str(path))
