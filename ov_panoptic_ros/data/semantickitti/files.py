"""One frame's files: the Velodyne scan and the image_2 picture. A file that cannot be used is a FrameProblem
with the kind a replay report counts it under (bridge/problems.py's words where one fits), not an exception
that would end the run: one bad file costs its frame or its camera, never the sequence."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ov_panoptic_ros.data.source import FrameProblem

SCAN_FIELDS = 4  # x, y, z, remission, float32 each


def read_scan(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 points and (N,) float32 remission (0-1, what the preset's intensity_scale 1.0 expects)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FrameProblem("cloud_unreadable", f"{path}: {e}") from e
    if len(data) % (4 * SCAN_FIELDS):
        raise FrameProblem("cloud_bad_layout", f"{path}: {len(data)} bytes is not a whole number of"
                                               f" {SCAN_FIELDS}-float32 points")
    scan = np.frombuffer(data, dtype="<f4").reshape(-1, SCAN_FIELDS)
    if not np.isfinite(scan).all():
        raise FrameProblem("cloud_not_finite", f"{path}: a point with a NaN or infinite value")
    return np.ascontiguousarray(scan[:, :3]), np.ascontiguousarray(scan[:, 3])


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; image_missing for an absent file, image_corrupt for one PIL cannot decode as PNG."""
    from PIL import Image  # a LiDAR-only run (images=False) never imports PIL

    if not path.is_file():
        raise FrameProblem("image_missing", f"{path}: no image for this scan")
    try:
        with Image.open(path, formats=("PNG",)) as img:
            return np.array(img.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FrameProblem("image_corrupt", f"{path}: {e}") from e
