"""Inference speed of the shipped models (the `synthetic` preset: teacher + trained 3D network) on drives of
the synthetic world, its 2 cameras at 480x320, about 30k points a frame: the issue's "10 Hz without a GPU"
case. Medians over frames after a warm-up, per pipeline stage, with one and with two torch threads.

The node adds its own overhead on top (message conversion, sync, output cloud: the `ros` benchmark, ~8 ms).
World seeds 7000+ are used by nothing else (training 100-129, validation 1000+, results 5000+, demo 9000+).
"""
from __future__ import annotations

import numpy as np
import torch

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.data.factory import open_source

SOURCE, FRAMES, WARMUP = "world:7000", 12, 2
TARGET_MS = 100.0


def _run(pipeline: PanopticPipeline, frames: list) -> dict:
    for frame in frames[:WARMUP]:
        pipeline(frame)
    stages: dict[str, list[float]] = {}
    for frame in frames[WARMUP:]:
        for stage, ms in pipeline(frame).timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {stage: round(float(np.median(v)), 2) for stage, v in stages.items()}


def bench_shipped_model(quick: bool = False) -> dict:
    cfg = load_config("synthetic", {"device": "cpu"})
    n = WARMUP + 2 if quick else FRAMES
    frames = [frame for frame, _ in open_source(SOURCE, frames=n, every=10)]
    pipeline = PanopticPipeline(cfg)
    before = torch.get_num_threads()
    doc = {"config": "synthetic", "checkpoint": cfg.checkpoint, "source": f"{SOURCE} ({n} frames, 1 s apart)",
           "points_median": int(np.median([f.num_points for f in frames])),
           "cameras": len(frames[0].cameras), "image_size": list(frames[0].images[0].shape[1::-1]),
           "target_total_ms_p50": TARGET_MS}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            doc[f"threads_{threads}"] = _run(pipeline, frames)
    finally:
        torch.set_num_threads(before)
    doc["total_ms_p50"] = doc["threads_2"].get("total")
    return doc
