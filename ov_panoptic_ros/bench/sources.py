"""`ov-panoptic bench --only sources`: how fast each FrameSource yields frames, on inputs of a real dataset's size.

Every source `open_source` knows is opened by its spec and iterated to the end, as replay, evaluation and
training iterate it:

- `world`: `world:SEED`, the synthetic world's drive (its defaults: 2 cameras at 480x320, ~28k points);
- `synthetic`: the small synthetic street (its defaults: 4,000 points, 2 cameras at 160x120);
- `bag`: a bag in the evaluation layout (MCAP, raw images, ground truth), recorded with `record_drive` from the
  very frames the `world` row yielded;
- `nuscenes`: `nuscenes:DATAROOT`, a dataroot in nuScenes' real on-disk format at its real size: 34,000 points per
  LIDAR_TOP sweep, Panoptic nuScenes labels, six cameras at 1600x900 JPEG (~200 KB a file, as nuScenes' are);
- `semantickitti`: `semantickitti:ROOT`, a sequence in SemanticKITTI's format at its real size: 120,000 points
  per scan with labels, image_2 at 1241x376 PNG (~800 KB a file).

The datasets are written by the test suite's writers (ov_panoptic_ros/testing/nuscenes_tiny.py,
semantickitti_tiny.py) with realistic sizes, in a temporary directory removed afterwards; images get pixel noise
so that their files, and so their reads, are of a real file's size. 10 frames each (`quick`: 3).

Per source: `open_s` (the constructor: a world's layout, a dataroot's tables, a bag's index), then each frame
timed from asking for it to getting it: `frames_per_s` (frames / the iteration's wall time), `ms_per_frame_p50`
(median wall), `cpu_ms_per_frame_p50` (the process's CPU time: on a shared host wall time grows with the load,
CPU time hardly), and what a frame held. Writing the datasets and the bag is timed apart (`write_s`) and counted
in no rate. There is no target: the numbers are reported, not judged (bench/targets.py has no row for them).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ov_panoptic_ros.data.bag.recording import record_drive
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.testing import nuscenes_tiny, semantickitti_tiny

WORLD_SEED = 1
NUSCENES = {"points": 34_000, "image_size": (1600, 900), "noise": 3}  # JPEG at quality 95: ~200 KB
SEMANTICKITTI = {"points": 120_000, "noise": 8}  # image_2 is 1241x376 (semantickitti_tiny.WIDTH, HEIGHT): ~800 KB


def _timed_iteration(source, keep: bool = False) -> tuple[dict, list]:
    """Iterate `source` to its end, timing each frame (wall and CPU); the items too when `keep`."""
    walls, cpus, points, items = [], [], [], []
    iterator = iter(source)
    frame, truth = None, None
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            item = next(iterator)
        except StopIteration:
            break
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        frame, truth = item
        points.append(frame.num_points)
        if keep:
            items.append(item)
    problems = source.problems
    out = {
        "frames": len(walls),
        "frames_per_s": round(len(walls) / sum(walls), 2) if walls else 0.0,
        "ms_per_frame_p50": round(1e3 * float(np.median(walls)), 1) if walls else None,
        "cpu_ms_per_frame_p50": round(1e3 * float(np.median(cpus)), 1) if cpus else None,
        "iterate_s": round(sum(walls), 3),
        "points_per_frame": int(np.median(points)) if points else 0,
        "cameras": len(frame.images) if frame is not None else 0,
        "image_size": list(frame.images[0].shape[1::-1]) if frame is not None and frame.images else None,
        "ground_truth": truth is not None,
        "problems": int(sum(problems.frames.values()) + sum(problems.cameras.values())),
    }
    return out, items


def _run(spec: str, keep: bool = False, **options) -> tuple[dict, list, object]:
    """Open `spec` through the factory (timed as `open_s`), iterate it, close it; (result, items, its classes)."""
    start = time.perf_counter()
    source = open_source(spec, **options)
    open_s = time.perf_counter() - start
    try:
        result, items = _timed_iteration(source, keep)
    finally:
        if hasattr(source, "close"):
            source.close()
    return {"open_s": round(open_s, 3), **result}, items, source.classes


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 3)


def _mean_kb(files: list[Path]) -> float:
    return round(float(np.mean([f.stat().st_size for f in files])) / 1024, 1) if files else 0.0


def _write_nuscenes(root: Path, samples: int) -> dict:
    nuscenes_tiny.build(root, num_points=NUSCENES["points"], scenes=(("scene-0061", samples),),
                        image_size=NUSCENES["image_size"], noise=NUSCENES["noise"], keep_images=False)
    return {"samples": samples, "points_per_sweep": NUSCENES["points"], "cameras": len(nuscenes_tiny.CAMERAS),
            "image_size": list(NUSCENES["image_size"]),
            "jpeg_kb_mean": _mean_kb(sorted((root / "samples").glob("CAM_*/*.jpg")))}


def _write_semantickitti(root: Path, scans: int) -> dict:
    seq = semantickitti_tiny.write_sequence(root, "08", scans=scans, points=SEMANTICKITTI["points"],
                                            noise=SEMANTICKITTI["noise"])
    return {"scans": scans, "points_per_scan": SEMANTICKITTI["points"],
            "image_size": [semantickitti_tiny.WIDTH, semantickitti_tiny.HEIGHT],
            "png_kb_mean": _mean_kb(sorted((seq / "image_2").glob("*.png")))}


def bench_sources(quick: bool = False, frames: int | None = None) -> dict:
    """Frames per second of every FrameSource (see the module docstring); `frames` per source, 10 (quick: 3)."""
    n = frames or (3 if quick else 10)
    if n < 2:
        raise ValueError(f"the sources benchmark needs at least 2 frames per source, got {n}")  # nuscenes_tiny's plant
    sources: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="ov_bench_sources_") as tmp:
        tmp = Path(tmp)
        sources["world"], world_items, world_classes = _run(f"world:{WORLD_SEED}", keep=True, frames=n)
        sources["synthetic"], _, _ = _run("synthetic", frames=n)

        bag = tmp / "world.mcap"  # the world row's own frames, recorded as a vehicle's drive
        _, bag_write_s = _timed(record_drive, bag, world_items, world_classes)
        del world_items
        sources["bag"], _, _ = _run(str(bag))
        sources["bag"].update(write_s=bag_write_s, bag_mb=round(bag.stat().st_size / 2**20, 1))

        dataroot = tmp / "nuscenes"
        written, write_s = _timed(_write_nuscenes, dataroot, n)
        sources["nuscenes"], _, _ = _run(f"nuscenes:{dataroot}", version=nuscenes_tiny.VERSION)
        sources["nuscenes"].update(write_s=write_s, written=written)

        kitti = tmp / "semantickitti"
        written, write_s = _timed(_write_semantickitti, kitti, n)
        sources["semantickitti"], _, _ = _run(f"semantickitti:{kitti}")
        sources["semantickitti"].update(write_s=write_s, written=written)
    return {
        "frames_per_source": n,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "write_s_total": round(sum(s.get("write_s", 0.0) for s in sources.values()), 3),
        "frames_per_s": {name: s["frames_per_s"] for name, s in sources.items()},
        "sources": sources,
    }
