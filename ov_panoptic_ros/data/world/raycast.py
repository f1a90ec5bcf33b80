"""Nearest hits of rays from one origin against a posed scene, through the C kernel `_raycast.c`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.data.world import _raycast


@dataclass
class Hits:
    distance: np.ndarray  # (R,) float64 metres, inf where nothing is hit
    primitive: np.ndarray  # (R,) int64 row of the cast table, -1 where nothing is hit
    local: np.ndarray  # (R, 3) float32 hit point in the primitive's frame
    normal: np.ndarray  # (R, 3) float32 unit normal of the surface hit, world frame

    @property
    def hit(self) -> np.ndarray:
        return self.primitive >= 0


def cast(table: np.ndarray, origin: np.ndarray, dirs: np.ndarray, max_range: float = np.inf) -> Hits:
    """The first surface along each unit direction `dirs` (R, 3) from `origin` (3,), up to `max_range`."""
    dirs = np.ascontiguousarray(dirs, np.float64)
    n = len(dirs)
    hits = Hits(np.empty(n), np.empty(n, np.int64), np.empty((n, 3), np.float32), np.empty((n, 3), np.float32))
    _raycast.cast(np.ascontiguousarray(table, np.float64), np.ascontiguousarray(origin, np.float64), dirs,
                  float(max_range), hits.distance, hits.primitive, hits.local, hits.normal)
    return hits
