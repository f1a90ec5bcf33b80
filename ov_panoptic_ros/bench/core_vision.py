"""Speed of the vision side: per-stage times of the tiny zero-shot pipeline, and the projection + sampling
target case (100k points x 6 cameras x 768-d CLIP features, nuScenes-like rig, under 40 ms on 2 CPU cores).

Times are medians over repeated runs after a warm-up, in milliseconds. The CPU is often shared, so the
report carries the load average seen at the start and end of the run.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from ov_panoptic_ros.core.config import ProjectionConfig, load_config
from ov_panoptic_ros.core.frame import CameraModel
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.core.vision.open_clip_dense import DenseFeatures, sample_seen_point_features

TARGET_MS = 40.0
# nuScenes CAM_FRONT-like intrinsics; six cameras around the car (yaw of each optical axis, degrees).
NUSCENES_SIZE = (1600, 900)
NUSCENES_K = [[1266.0, 0.0, 816.0], [0.0, 1266.0, 491.0], [0.0, 0.0, 1.0]]
RING_YAWS_DEG = (0.0, -55.0, 55.0, 180.0, -110.0, 110.0)


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def ring_cameras(width: int = NUSCENES_SIZE[0], height: int = NUSCENES_SIZE[1]) -> list[CameraModel]:
    """Six outward-looking cameras 1.5 m above the LiDAR, plumb_bob with mild distortion."""
    cams = []
    for i, yaw_deg in enumerate(RING_YAWS_DEG):
        yaw = math.radians(yaw_deg)
        forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        left = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        R = np.stack([-left, [0.0, 0.0, -1.0], forward])  # rows: optical x (right), y (down), z (forward)
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = -R @ np.array([0.0, 0.0, 0.3])
        cams.append(CameraModel(f"cam{i}", width, height, NUSCENES_K, [-0.05, 0.01, 0.0, 0.0, 0.0], "plumb_bob", T))
    return cams


def lidar_like_points(n: int, seed: int = 0) -> torch.Tensor:
    """A 32-beam spinning sweep in firing order (as drivers and nuScenes store it): each firing covers all
    beams (-30..+10 deg) at one azimuth; ranges are cut short by a ground plane 1.8 m below."""
    rng = np.random.default_rng(seed)
    beams = np.radians(np.linspace(-30, 10, 32))
    azimuth = np.repeat(np.linspace(-math.pi, math.pi, -(-n // 32), endpoint=False), 32)[:n]
    elevation = np.tile(beams, -(-n // 32))[:n]
    max_range = np.where(elevation < 0, 1.8 / np.maximum(np.sin(-elevation), 1e-3), 80.0)
    rng_m = np.minimum(rng.uniform(2.0, 60.0, n), max_range)
    xyz = np.column_stack([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation),
                           np.sin(elevation)]) * rng_m[:, None]
    return torch.from_numpy(xyz.astype(np.float32))


def target_features(cameras: list[CameraModel], dim: int = 768, stride: int = 16, short_side: int = 448,
                    seed: int = 0) -> DenseFeatures:
    """Random unit 768-d maps at the size a ViT-B/16 gives for 1600x900 at short side 448: 28 x 50."""
    w, h = cameras[0].width, cameras[0].height
    s = short_side / min(w, h)
    rw, rh = round(w * s), round(h * s)
    gh, gw = -(-rh // stride), -(-rw // stride)
    gen = torch.Generator().manual_seed(seed)
    maps = torch.nn.functional.normalize(torch.randn(len(cameras), gh, gw, dim, generator=gen), dim=-1)
    scale = torch.tensor([[rw / w / stride, rh / h / stride]] * len(cameras))
    return DenseFeatures(maps.permute(0, 3, 1, 2), scale)


def bench_target_case(num_points: int = 100_000, repeats: int = 7, threads: int | None = None) -> dict:
    """Projection (occlusion test on) plus sampling for the full-size case, at `threads` torch threads.

    `sample_ms` / `project_plus_sample_ms` time the pipeline's path, `sample_seen_point_features`: features
    for the seen points only (PointFeatures).
    """
    cameras = ring_cameras()
    points = lidar_like_points(num_points)
    features = target_features(cameras)
    cfg = ProjectionConfig()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or previous_threads)
    try:
        with torch.inference_mode():
            projection = project_points(points, cameras, cfg)
            project_ms = median_ms(lambda: project_points(points, cameras, cfg), repeats)
            sample_ms = median_ms(lambda: sample_seen_point_features(features, projection), repeats)
            total_ms = median_ms(
                lambda: sample_seen_point_features(features, project_points(points, cameras, cfg)), repeats)
    finally:
        torch.set_num_threads(previous_threads)
    seen = projection.seen
    return {
        "threads": threads or previous_threads,
        "points": num_points, "cameras": len(cameras), "feature_dim": int(features.maps.shape[1]),
        "feature_map_hw": list(features.maps.shape[2:]),
        "seen_fraction": round(float(seen.float().mean()), 3),
        "visible_pairs": int(projection.point.numel()),
        "project_ms": round(project_ms, 2), "sample_ms": round(sample_ms, 2),
        "project_plus_sample_ms": round(total_ms, 2),
        "target_ms": TARGET_MS, "meets_target": bool(total_ms < TARGET_MS),
    }


def bench_tiny_pipeline(num_points: int = 30_000, repeats: int = 5, num_cameras: int = 2) -> dict:
    """Per-stage medians of the tiny zero-shot pipeline on a synthetic frame, at the default thread count
    and single-threaded."""
    from ov_panoptic_ros.core.pipeline import PanopticPipeline
    from ov_panoptic_ros.data.synthetic import make_scene

    scene = make_scene(seed=0, num_points=num_points, num_cameras=num_cameras)
    pipeline = PanopticPipeline(load_config("tiny", overrides={"device": "cpu"}))
    result = {"points": num_points, "cameras": num_cameras, "image_size": list(scene.frame.images[0].shape[1::-1])}
    default_threads = torch.get_num_threads()
    for key, threads in (("stage_ms", default_threads), ("stage_ms_1_thread", 1)):
        torch.set_num_threads(threads)
        try:
            pipeline(scene.frame)  # warm-up
            runs = [pipeline(scene.frame).timings_ms for _ in range(repeats)]
        finally:
            torch.set_num_threads(default_threads)
        result[key] = {k: round(float(np.median([r[k] for r in runs])), 2) for k in runs[0]}
    result["instances"] = len(pipeline(scene.frame).instances)  # boxes are fitted per instance
    return result


def bench_core_vision(quick: bool = False) -> dict:
    """Both cases. The target case runs at the default thread count and single-threaded: on a shared
    2-core machine OpenMP's spinning second thread can cost more than it gives."""
    load_start = os.getloadavg()[0]
    repeats = 3 if quick else 7
    result = {
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "(default)"),
        "target_case": bench_target_case(repeats=repeats),
        "target_case_1_thread": bench_target_case(repeats=repeats, threads=1),
        "tiny_pipeline": bench_tiny_pipeline(num_points=30_000, repeats=2 if quick else 5),
        "tiny_pipeline_100k_6_cameras": bench_tiny_pipeline(num_points=100_000, repeats=2 if quick else 3,
                                                            num_cameras=6),
    }
    result["load_average_1min"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return result
