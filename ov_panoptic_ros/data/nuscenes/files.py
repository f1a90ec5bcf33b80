"""A nuScenes sample's data files as arrays: the LIDAR_TOP sweep (.pcd.bin) and a camera image (.jpg).

A file that is missing or cannot be read raises FrameProblem with the problem kind the source counts:
the frame (a cloud) or the camera (an image) is left out, the rest of the dataset still reads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ov_panoptic_ros.data.source import FrameProblem

LIDAR_FIELDS = 5  # x, y, z, intensity, ring index: float32 each (the devkit's LidarPointCloud.from_file)


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 x, y, z in the LIDAR_TOP frame and (N,) float32 intensity (0-255) of one sweep."""
    if not path.is_file():
        raise FrameProblem("cloud_missing", f"LiDAR file {path} is missing")
    try:
        raw = np.fromfile(path, dtype=np.float32)
    except OSError as e:
        raise FrameProblem("cloud_missing", f"LiDAR file {path} cannot be read: {e}") from None
    if raw.size % LIDAR_FIELDS:
        raise FrameProblem("cloud_bad_layout", f"LiDAR file {path}: {raw.size * 4} bytes are not whole points of "
                                               f"{LIDAR_FIELDS} float32 (x, y, z, intensity, ring)")
    points = raw.reshape(-1, LIDAR_FIELDS)
    return np.ascontiguousarray(points[:, :3]), np.ascontiguousarray(points[:, 3])


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of one camera image."""
    if not path.is_file():
        raise FrameProblem("image_missing", f"image {path} is missing")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise FrameProblem("image_corrupt", f"image {path} cannot be decoded: {e}") from None
