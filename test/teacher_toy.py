"""Toy teacher data from the synthetic street (data/synthetic.py) until the synthetic world lands.

`render_image` shades each pixel by what its ray hits but does not return the labels; `pixel_labels` casts
the same rays (same lens model, same `cast_rays`) and keeps the class instead. Test helper, not shipped.
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.core.frame import CameraModel
from ov_panoptic_ros.data.synthetic import CLASSES, Box, SyntheticScene, _undistort_normalized, cast_rays, make_scene


def pixel_labels(cam: CameraModel, boxes: list[Box]) -> np.ndarray:
    """(H, W) int64 class index into CLASSES per pixel, -1 where the ray hits nothing (sky)."""
    u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    x, y = _undistort_normalized((u.reshape(-1) - cam.K[0, 2]) / cam.K[0, 0],
                                 (v.reshape(-1) - cam.K[1, 2]) / cam.K[1, 1], cam.D)
    T_lidar_cam = np.linalg.inv(cam.T_cam_lidar)
    dirs = np.stack([x, y, np.ones_like(x)], -1) @ T_lidar_cam[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    _, labels, _ = cast_rays(np.broadcast_to(T_lidar_cam[:3, 3], dirs.shape), dirs, boxes)
    return labels.astype(np.int64).reshape(cam.height, cam.width)


def toy_scene(seed: int, image_size=(96, 72), num_points: int = 4000) -> SyntheticScene:
    return make_scene(seed=seed, num_points=num_points, num_cameras=2, image_size=image_size)


def toy_samples(seeds, image_size=(96, 72)) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(rgb, labels, CLASSES) for both cameras of each seed's street."""
    out = []
    for seed in seeds:
        scene = toy_scene(seed, image_size, num_points=500)
        for image, cam in zip(scene.frame.images, scene.frame.cameras):
            out.append((image, pixel_labels(cam, scene.boxes), list(CLASSES)))
    return out
