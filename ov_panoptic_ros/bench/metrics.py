"""Throughput of our PanopticEval against nuscenes-devkit's, side by side on the same synthetic frames.

The devkit runs in its oracle venv (see ov_panoptic_ros/eval/devkit_oracle.py) and times only its
own ``addBatch`` calls, after the frames are loaded; we time only ``add``. Each side reports the
best of a few passes over the same frames, so process start-up and file transfer never count.
"""
from __future__ import annotations

import platform
import time

import numpy as np

from ov_panoptic_ros.core.classes import ClassInfo, nuscenes_classes
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.eval.devkit_oracle import OracleCase, OracleUnavailable, run_devkit
from ov_panoptic_ros.eval.metrics import PanopticEval


def synthetic_frame(
    rng: np.random.Generator,
    classes: ClassInfo,
    n_points: int = 34_000,
    instances_per_thing: int = 30,
    ignore_fraction: float = 0.05,
    noise_fraction: float = 0.05,
    large_ids: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A frame that looks like a segmentation: segments of varied (log-normal) size, a prediction
    that mostly follows them but splits, merges, relabels, drops and invents some, plus point noise.
    Returns (pred_sem, pred_inst, gt_sem, gt_inst)."""
    n = classes.n_classes
    things = [c for c in classes.evaluated if classes.is_thing[c]]
    stuff = [c for c in classes.evaluated if not classes.is_thing[c]]
    id_scale = 10**5 if large_ids else 1  # large: ids up to ~1e9, beyond any dense key range

    # Ground-truth segments: (class, instance id, relative size); stuff is big, things vary a lot.
    seg_cls, seg_inst, seg_w = [], [], []
    for c in stuff:
        seg_cls.append(c), seg_inst.append(0), seg_w.append(rng.uniform(0.5, 3.0) * 1500)
    for c in things:
        k = int(rng.integers(max(1, instances_per_thing // 2), instances_per_thing * 3 // 2 + 1))
        ids = rng.choice(np.arange(1, 10 * k + 1), size=k, replace=False) * id_scale
        seg_cls += [c] * k
        seg_inst += ids.tolist()
        seg_w += rng.lognormal(mean=3.3, sigma=1.0, size=k).tolist()
    seg_cls, seg_inst = np.array(seg_cls), np.array(seg_inst, dtype=np.int64)
    seg_w = np.array(seg_w)
    n_valid = n_points - int(ignore_fraction * n_points) if classes.ignore else n_points
    seg = rng.choice(seg_cls.size, size=n_valid, p=seg_w / seg_w.sum())
    gt_sem, gt_inst = seg_cls[seg], seg_inst[seg]

    # Prediction per segment: mostly right class, own random id; some merged, relabelled or dropped.
    s = seg_cls.size
    p_cls = seg_cls.copy()
    relabel = rng.random(s) < 0.08
    p_cls[relabel] = rng.choice(classes.evaluated, size=int(relabel.sum()))
    p_cls[rng.random(s) < 0.04] = UNLABELED
    p_inst = rng.choice(np.arange(1, 20 * s + 1), size=s, replace=False) * id_scale
    merge = rng.random(s) < 0.08
    p_inst[merge] = p_inst[rng.integers(0, s, size=int(merge.sum()))]
    pred_sem, pred_inst = p_cls[seg], p_inst[seg]
    # Split some segments: a random share of their points gets a second id.
    split_seg = rng.random(s) < 0.15
    share = rng.uniform(0.1, 0.6, size=s)
    moved = split_seg[seg] & (rng.random(n_valid) < share[seg])
    pred_inst[moved] += 7 * id_scale + 3
    # Point noise: random class and a random existing id.
    noisy = rng.random(n_valid) < noise_fraction
    pred_sem[noisy] = rng.choice(classes.evaluated, size=int(noisy.sum()))
    pred_inst[noisy] = rng.choice(p_inst, size=int(noisy.sum()))

    # Ignored ground truth (its prediction is arbitrary) and a shuffle.
    n_ign = n_points - n_valid
    if n_ign:
        gt_sem = np.concatenate([gt_sem, rng.choice(list(classes.ignore), size=n_ign)])
        gt_inst = np.concatenate([gt_inst, np.zeros(n_ign, dtype=np.int64)])
        pred_sem = np.concatenate([pred_sem, rng.choice(n, size=n_ign)])
        pred_inst = np.concatenate([pred_inst, rng.integers(0, 50, size=n_ign)])
    order = rng.permutation(n_points)
    return (pred_sem[order].astype(np.int64), pred_inst[order].astype(np.int64),
            gt_sem[order].astype(np.int64), gt_inst[order].astype(np.int64))


def _time_ours(classes: ClassInfo, min_points: int, frames: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        ev = PanopticEval(classes, min_points=min_points)
        t0 = time.perf_counter()
        for frame in frames:
            ev.add(*frame)
        best = min(best, time.perf_counter() - t0)
    return best


def bench_metrics(quick: bool = False) -> dict:
    """Points/s of ours and of the devkit on 34k-point nuScenes-like frames (17 classes, ~30
    instances per thing class). JSON-able; ``devkit_points_per_s`` is None without the oracle venv."""
    classes = nuscenes_classes()
    n_frames, repeat = (6, 3) if quick else (20, 3)
    rng = np.random.default_rng(0)
    frames = [synthetic_frame(rng, classes) for _ in range(n_frames)]
    points = sum(f[0].size for f in frames)
    ours_s = _time_ours(classes, 15, frames, repeat)
    result = {
        "frames": n_frames, "points_per_frame": int(frames[0][0].size), "classes": classes.n_classes,
        "instances_per_thing_class": 30, "repeat": repeat, "machine": platform.machine(),
        "ours_points_per_s": points / ours_s, "ours_ms_per_frame": 1e3 * ours_s / n_frames,
        "devkit_points_per_s": None, "devkit_ms_per_frame": None, "speedup": None,
    }
    case = OracleCase("bench", classes.n_classes, classes.ignore,
                      [c for c in classes.evaluated if classes.is_thing[c]], 15, frames, repeat)
    try:
        dk = run_devkit([case])["cases"]["bench"]
    except OracleUnavailable as exc:
        result["devkit_error"] = str(exc)
        return result
    dk_s = dk["seconds_per_pass"]
    ours_s = min(ours_s, _time_ours(classes, 15, frames, repeat))  # before and after: load spikes hit both
    result.update(ours_points_per_s=points / ours_s, ours_ms_per_frame=1e3 * ours_s / n_frames)
    result.update(devkit_points_per_s=dk["points_per_pass"] / dk_s, devkit_ms_per_frame=1e3 * dk_s / n_frames,
                  speedup=dk_s / ours_s)
    ours = PanopticEval(classes, min_points=15)
    for frame in frames:
        ours.add(*frame)
    # The speed only means something if both computed the same thing.
    diff = np.abs(ours.compute().pq - np.array(dk["pq"]))[list(classes.evaluated)]
    result["max_abs_diff_pq"] = float(diff.max())
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench_metrics(quick="--quick" in sys.argv), indent=2))
