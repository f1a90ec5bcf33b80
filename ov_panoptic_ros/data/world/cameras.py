"""The camera rig: distorted pinhole cameras (plumb_bob) mounted around the LiDAR, and the ray of every pixel.

The rays are the exact inverse of the pipeline's own projection (core.geometry.project_points, the C lens
kernel): Newton's method on the lens model as the core evaluates it, so a LiDAR point that the pipeline
projects to pixel (u, v) lies on the ray the renderer cast through (u, v).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics
from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.frame import CameraModel
from ov_panoptic_ros.core.geometry import project_points


@dataclass(frozen=True)
class Mount:
    """Where a camera sits on the LiDAR's frame, and its lens."""

    name: str
    position: tuple[float, float, float]  # metres in the LiDAR frame (x forward, y left, z up)
    yaw_deg: float  # viewing direction, counter-clockwise from the LiDAR's x
    pitch_deg: float  # positive looks down
    hfov_deg: float
    distortion: tuple[float, float, float, float, float]  # plumb_bob k1, k2, p1, p2, k3


# Real lenses: moderate barrel distortion and a little decentring, a different lens on every camera.
MOUNTS = (
    Mount("cam_front", (0.55, 0.0, -0.3), 0.0, 3.0, 70.0, (-0.28, 0.085, 6e-4, -4e-4, 0.0)),
    Mount("cam_back", (-1.0, 0.0, -0.25), 180.0, 2.0, 80.0, (-0.31, 0.105, -5e-4, 7e-4, -0.012)),
    Mount("cam_front_left", (0.4, 0.5, -0.3), 55.0, 3.0, 70.0, (-0.27, 0.08, 3e-4, 5e-4, 0.0)),
    Mount("cam_front_right", (0.4, -0.5, -0.3), -55.0, 3.0, 70.0, (-0.29, 0.09, -4e-4, -3e-4, 0.0)),
    Mount("cam_back_left", (-0.5, 0.5, -0.3), 110.0, 3.0, 70.0, (-0.27, 0.075, 5e-4, 2e-4, 0.0)),
    Mount("cam_back_right", (-0.5, -0.5, -0.3), -110.0, 3.0, 70.0, (-0.3, 0.1, -2e-4, -6e-4, 0.0)),
)


def camera_model(mount: Mount, width: int, height: int) -> CameraModel:
    """The CameraInfo (K, D, plumb_bob) and the LiDAR->camera extrinsics of a mounted camera."""
    f = width / (2 * np.tan(np.radians(mount.hfov_deg) / 2))
    K = np.array([[f, 0, width / 2 - 0.5 + 0.013 * width], [0, f, height / 2 - 0.5 - 0.011 * height], [0, 0, 1]])
    yaw, pitch = np.radians(mount.yaw_deg), np.radians(mount.pitch_deg)
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), -np.sin(pitch)])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.cross(forward, right)
    R_lidar_cam = np.column_stack([right, down, forward])  # optical axes (x right, y down, z forward)
    T = np.eye(4)
    T[:3, :3] = R_lidar_cam.T
    T[:3, 3] = -R_lidar_cam.T @ np.asarray(mount.position)
    return CameraModel(mount.name, width, height, K, np.array(mount.distortion), "plumb_bob", T, 0.0)


def rig(count: int, width: int, height: int) -> list[CameraModel]:
    if not 1 <= count <= len(MOUNTS):
        raise ValueError(f"the world has 1 to {len(MOUNTS)} cameras, asked for {count}")
    return [camera_model(m, width, height) for m in MOUNTS[:count]]


def calibration(cameras: list[CameraModel], lidar_frame: str) -> Calibration:
    return Calibration(lidar_frame, {c.name: CameraExtrinsics(c.T_cam_lidar.copy(), c.time_offset_s) for c in cameras})


def _project(cam: CameraModel, xy: np.ndarray) -> np.ndarray:
    """Pixels of the optical-frame points (x, y, 1) through the core's projection (NaN where it sees none)."""
    R, t = cam.T_cam_lidar[:3, :3], cam.T_cam_lidar[:3, 3]
    optical = np.column_stack([xy, np.ones(len(xy))])
    lidar = torch.from_numpy(((optical - t) @ R).astype(np.float32))
    wide = ProjectionConfig(image_margin_px=-max(cam.width, cam.height), min_depth_m=0.01, occlusion=False)
    proj = project_points(lidar, [cam], wide)
    uv = np.full((len(xy), 2), np.nan)
    uv[proj.point.numpy()] = proj.uv.numpy()
    return uv


def pixel_rays(cam: CameraModel, u: np.ndarray, v: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Unit rays (N, 3) in the optical frame that the core projects onto pixels (u, v): Newton's method on
    the undistorted normalized coordinates, with the Jacobian from finite differences of the projection."""
    target = np.column_stack([u, v]).astype(np.float64)
    xy = np.column_stack([(target[:, 0] - cam.K[0, 2]) / cam.K[0, 0], (target[:, 1] - cam.K[1, 2]) / cam.K[1, 1]])
    h = 1e-4
    for _ in range(iterations):
        at, dx, dy = (_project(cam, xy + step) for step in ((0, 0), (h, 0), (0, h)))
        (a, c), (b, d) = (dx - at).T / h, (dy - at).T / h  # Jacobian [[a, b], [c, d]] = d(u, v) / d(x, y)
        ru, rv = (target - at).T
        det = a * d - b * c
        xy += np.column_stack([d * ru - b * rv, a * rv - c * ru]) / det[:, None]
    rays = np.column_stack([xy, np.ones(len(xy))])
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


_RAYS: dict[tuple, np.ndarray] = {}  # by lens and image size: every world with the same rig shares them


def image_rays(cam: CameraModel) -> np.ndarray:
    """The ray of every pixel centre, (H * W, 3) row-major, in the optical frame (read-only)."""
    key = (cam.width, cam.height, cam.distortion_model, cam.K.tobytes(), cam.D.tobytes(), cam.T_cam_lidar.tobytes())
    if key not in _RAYS:
        v, u = np.mgrid[0:cam.height, 0:cam.width]
        rays = pixel_rays(cam, u.reshape(-1).astype(np.float64), v.reshape(-1).astype(np.float64))
        rays.setflags(write=False)
        _RAYS[key] = rays
    return _RAYS[key]
