"""How fast the world generates, per sensor, for `ov-panoptic bench` (JSON-able).

Both clocks are reported: wall time is what a user waits for, CPU time what the generator costs when the
machine is shared (on a busy host the wall time grows with the load, the CPU time hardly).
"""
from __future__ import annotations

import os
import time

import numpy as np

from ov_panoptic_ros.data.world.generator import World, WorldConfig


def _timed(fn) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench_world(quick: bool = False, seed: int = 1, config: WorldConfig | None = None) -> dict:
    """A world's build time, then its LiDAR sweeps and camera views timed apart (medians over 3 frames when
    quick, else 20, spread along the drive); `frames_100_s` is what 100 full frames take at those rates."""
    config = config or WorldConfig()
    world, build_wall, build_cpu = _timed(lambda: World(seed, config))
    indices = np.linspace(0, world.num_frames - 1, 3 if quick else 20).astype(int).tolist()
    lidar = [_timed(lambda i=i: world.sweep(i)) for i in indices]
    cameras = [_timed(lambda i=i: world.views(i)) for i in indices]
    lidar_wall, lidar_cpu = (float(np.median([t[k] for t in lidar])) for k in (1, 2))
    camera_wall, camera_cpu = (float(np.median([t[k] for t in cameras])) for k in (1, 2))
    return {
        "frames": len(indices),
        "cameras": config.cameras,
        "image_size": list(config.image_size),
        "points_per_frame": int(np.median([len(t[0].points) for t in lidar])),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "world_build_s": {"wall": round(build_wall, 3), "cpu": round(build_cpu, 3)},
        "lidar_ms_per_frame": {"wall": round(1e3 * lidar_wall, 1), "cpu": round(1e3 * lidar_cpu, 1)},
        "cameras_ms_per_frame": {"wall": round(1e3 * camera_wall, 1), "cpu": round(1e3 * camera_cpu, 1)},
        "lidar_frames_per_s": {"wall": round(1 / lidar_wall, 2), "cpu": round(1 / lidar_cpu, 2)},
        "cameras_frames_per_s": {"wall": round(1 / camera_wall, 2), "cpu": round(1 / camera_cpu, 2)},
        "frames_100_s": {"wall": round(build_wall + 100 * (lidar_wall + camera_wall), 1),
                         "cpu": round(build_cpu + 100 * (lidar_cpu + camera_cpu), 1)},
    }
