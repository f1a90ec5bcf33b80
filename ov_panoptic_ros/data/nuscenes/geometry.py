"""Where a nuScenes camera sees the LIDAR_TOP points: each camera's T_cam_lidar, ego motion included.

nuScenes stores a sensor's mounting (calibrated_sensor: sensor -> ego) and the vehicle's pose at each sensor's
own timestamp (ego_pose: ego -> global), rotations as quaternions w, x, y, z. A camera fires up to ~40 ms
apart from the LiDAR sweep, while the car moves up to ~1 m in that time, so the chain goes through the
global frame at both timestamps, as the devkit's map_pointcloud_to_image does:

    T_cam_lidar = inv(cs_cam) @ inv(ego_at_camera_time) @ ego_at_lidar_time @ cs_lidar

Camera frames are optical frames (z forward, x right, y down) and the images are undistorted, so a camera is
K alone (distortion "none").
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.core.calibration import invert_rigid, unit_quaternion_rows
from ov_panoptic_ros.core.frame import CameraModel


def quaternion_matrix(wxyz) -> np.ndarray:
    """The rotation of a quaternion (w, x, y, z), normalized first as the devkit's pyquaternion does."""
    q = np.asarray(wxyz, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"rotation {q.tolist()} is not a usable quaternion (w, x, y, z)")
    w, x, y, z = q / norm
    return np.array(unit_quaternion_rows(x, y, z, w))


def pose_matrix(record: dict) -> np.ndarray:
    """4x4 child -> parent of a calibrated_sensor or ego_pose record (its translation and rotation)."""
    T = np.eye(4)
    T[:3, :3] = quaternion_matrix(record["rotation"])
    T[:3, 3] = np.asarray(record["translation"], dtype=np.float64).reshape(3)
    return T


def camera_from_lidar(cs_cam: dict, ego_cam: dict, ego_lidar: dict, cs_lidar: dict) -> np.ndarray:
    """T_cam_lidar from the four records (see the module docstring)."""
    return (invert_rigid(pose_matrix(cs_cam)) @ invert_rigid(pose_matrix(ego_cam)) @ pose_matrix(ego_lidar)
            @ pose_matrix(cs_lidar))


def camera_model(name: str, width: int, height: int, cs_cam: dict, T_cam_lidar: np.ndarray) -> CameraModel:
    """The CameraModel of one camera for one sweep: K from camera_intrinsic, no distortion, no time offset (the
    ego motion between the two stamps is in T_cam_lidar already)."""
    K = np.asarray(cs_cam["camera_intrinsic"], dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"camera_intrinsic is not a 3x3 matrix: {K.tolist()}")
    return CameraModel(name=name, width=width, height=height, K=K, distortion_model="none", T_cam_lidar=T_cam_lidar)
