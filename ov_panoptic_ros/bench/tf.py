"""TF lookups per frame: what extrinsics from TF add to every frame the node processes.

A vehicle's tree as robot_state_publisher and a localizer publish it: base_link -> lidar_top, base_link -> cam_i
-> cam_i_optical for 6 cameras on /tf_static, odom -> base_link at 100 Hz on /tf (10 s kept). Per frame, the
node asks `Extrinsics.camera_from_lidar` once per camera: `static` without a fixed frame (one lookup at the
cloud's stamp), `fixed_frame` through odom with each image 0-30 ms after the cloud (two lookups, one
interpolated /tf sample each). Target: under 0.5 ms p50 per frame with 6 cameras.
"""
from __future__ import annotations

import math
import time

import numpy as np

NUM_CAMERAS = 6
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
POSE_HZ, POSES = 100, 1000


def _pose(xyz, yaw: float = 0.0, q=None) -> np.ndarray:
    """4x4 parent <- child from a translation and a yaw (or a quaternion xyzw)."""
    from ov_panoptic_ros.bridge.transforms import pose_matrix

    return pose_matrix(tuple(float(v) for v in xyz) + tuple(q or (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))))


def vehicle_tf():
    """(static TFMessage, [dynamic TFMessage per pose]) of the benchmark's vehicle."""
    from ov_panoptic_ros.testing.scene_msgs import tf_message

    static = [("base_link", "lidar_top", _pose((0.0, 0.0, 1.8)), 0)]
    for i in range(NUM_CAMERAS):
        yaw = 2 * math.pi * i / NUM_CAMERAS
        static.append(("base_link", f"cam_{i}", _pose((1.2 * math.cos(yaw), 1.2 * math.sin(yaw), 1.5), yaw), 0))
        static.append((f"cam_{i}", f"cam_{i}_optical", _pose((0, 0, 0), q=(-0.5, 0.5, -0.5, 0.5)), 0))
    dynamic = [tf_message([("odom", "base_link", _pose((20.0 * k / POSE_HZ, 0.0, 0.0), 0.001 * k),
                            T0 + k * NS // POSE_HZ)]) for k in range(POSES)]
    return tf_message(static), dynamic


def _per_frame_ms(extrinsics, frames: int, rng) -> dict:
    times = []
    span_ns = (POSES - 10) * NS // POSE_HZ
    for _ in range(frames):
        cloud_ns = T0 + int(rng.integers(0, span_ns))
        offsets = rng.integers(0, 30_000_000, NUM_CAMERAS)
        start = time.perf_counter()
        for i in range(NUM_CAMERAS):
            extrinsics.camera_from_lidar(f"cam_{i}", f"cam_{i}_optical", "lidar_top", cloud_ns, cloud_ns + int(offsets[i]))
        times.append((time.perf_counter() - start) * 1e3)
    a = np.asarray(times)
    return {"per_frame_ms": {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))},
            "frames": frames}


def bench_tf(quick: bool = False) -> dict:
    from ov_panoptic_ros.bridge.extrinsics import Extrinsics
    from ov_panoptic_ros.bridge.transforms import TransformBuffer

    static, dynamic = vehicle_tf()
    buffer = TransformBuffer(cache_s=10.0)
    buffer.add_message(static, static=True)
    for msg in dynamic:
        buffer.add_message(msg, static=False)
    frames = 200 if quick else 2000
    rng = np.random.default_rng(0)
    return {"cameras": NUM_CAMERAS, "poses_kept": POSES, "target_p50_ms": 0.5,
            "static": _per_frame_ms(Extrinsics("tf", tf=buffer), frames, rng),
            "fixed_frame": _per_frame_ms(Extrinsics("tf", tf=buffer, fixed_frame="odom"), frames, rng)}
