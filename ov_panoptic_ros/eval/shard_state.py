"""What one part of a replay accumulated (a part: one input a shard ran, a bag or its stride of a source), as
plain arrays and JSON, and the merge of every part into the one scorer and RunStats a single run would hold.

Why parts: the report lists each input, and the merge must not depend on how inputs were spread over shards.
The integer accumulators (both confusions, TP/FP/FN, frame and point counts) are summed, exact in any order.
The one float accumulator, PanopticEval's sum of matched IoUs, is not associative: each part keeps its
per-frame IoU rows keyed by (input, ordinal of the frame in the input), and the merge adds every row in key
order from zero, as a single process adds them, so the merged metrics equal a single run's to the bit.
Latencies are concatenated (percentiles of all frames); skips and camera problems are summed by reason.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ov_panoptic_ros.bridge.problems import Problem
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.run_stats import RunStats
from ov_panoptic_ros.eval.summary import class_summary

SCORES = ("confusion", "pan_tp", "pan_fp", "pan_fn")  # PanopticEval's integer accumulators


@dataclass
class PartState:
    meta: dict  # JSON-able: the input, its counts and timings, the scoring set-up
    arrays: dict[str, np.ndarray]


def capture(input_index: int, name: str, frames, keys: list[int], source_meta: dict) -> PartState:
    """The state of a finished part. `frames`: its ScoredFrames; `keys`: the ordinal of each scored frame,
    in scoring order; `source_meta`: what the input says of itself (bag summary, frame counts, read times)."""
    stats, scorer = frames.stats, frames.scorer
    problems = stats.problems
    meta = {
        "input": input_index, "name": name, **source_meta, "loop_s": frames.loop_s,
        "processed": stats.processed, "points": stats.points, "without_cameras": stats.frames_without_cameras,
        "partial_reasons": list(stats.partial_reasons), "stages": sorted(stats.stage_ms),
        "problems": {"frames": dict(problems.frames), "cameras": dict(problems.cameras),
                     "examples": [asdict(p) for p in problems.examples]},
        "ground_truth": scorer is not None,
    }
    arrays = {"latency_ms": np.asarray(stats.latency_ms, np.float64)}
    arrays.update({f"stage.{k}": np.asarray(v, np.float64) for k, v in stats.stage_ms.items()})
    if scorer is not None:
        ev = scorer.eval
        if len(ev.frame_iou) != len(keys):
            raise RuntimeError(f"{len(ev.frame_iou)} IoU rows for {len(keys)} scored frames")
        meta.update(classes=class_summary(scorer.classes), vocabulary=list(scorer.vocabulary.classes),
                    n_frames=ev.n_frames, n_points=ev.n_points)
        arrays.update({k: getattr(ev, k).copy() for k in SCORES}, vocab_confusion=scorer.confusion.copy(),
                      keys=np.asarray(keys, np.int64),
                      frame_iou=np.asarray(ev.frame_iou, np.float64).reshape(len(keys), ev.pan_iou.size))
    return PartState(meta, arrays)


def merge(parts: list[PartState], scorer) -> RunStats:
    """Every part into `scorer` (emptied first; None without ground truth) and a new RunStats, in input order."""
    parts = sorted(parts, key=lambda p: (p.meta["input"], p.meta.get("rank", 0)))
    _check_alike(parts, scorer)
    stats = RunStats()
    for p in parts:
        m, a = p.meta, p.arrays
        stats.processed += m["processed"]
        stats.points += m["points"]
        stats.frames_without_cameras += m["without_cameras"]
        stats.partial_reasons += m["partial_reasons"]
        stats.latency_ms += a["latency_ms"].tolist()
        for stage in m["stages"]:
            stats.stage_ms.setdefault(stage, []).extend(a[f"stage.{stage}"].tolist())
        problems = m["problems"]
        stats.problems.extend(problems["frames"], problems["cameras"], [Problem(**e) for e in problems["examples"]])
    if scorer is not None:
        _merge_scores(parts, scorer)
    return stats


def _merge_scores(parts: list[PartState], scorer) -> None:
    ev = scorer.eval
    ev.reset()
    scorer.confusion[:] = 0
    for p in parts:
        for k in SCORES:
            getattr(ev, k)[...] += p.arrays[k]
        scorer.confusion += p.arrays["vocab_confusion"]
        ev.n_frames += p.meta["n_frames"]
        ev.n_points += p.meta["n_points"]
    inputs = np.concatenate([np.full(p.arrays["keys"].size, p.meta["input"], np.int64) for p in parts])
    keys = np.concatenate([p.arrays["keys"] for p in parts])
    rows = np.concatenate([p.arrays["frame_iou"] for p in parts])
    for row in rows[np.lexsort((keys, inputs))]:  # one row at a time, as PanopticEval.add adds them
        ev.pan_iou += row


def _check_alike(parts: list[PartState], scorer) -> None:
    """Parts scored against other classes or vocabularies cannot be summed: a clear error, not a wrong number."""
    gt = {p.meta["ground_truth"] for p in parts}
    if gt and gt != {scorer is not None}:
        raise ReplayError("the inputs differ in ground truth (some have it, some do not); replay them separately "
                          "or with --no-ground-truth")
    if scorer is None:
        return
    want = (class_summary(scorer.classes), list(scorer.vocabulary.classes))
    for p in parts:
        if (p.meta["classes"], p.meta["vocabulary"]) != want:
            raise ReplayError(f"{p.meta['name']} is scored against other ground-truth classes or another vocabulary "
                              "than the first input; replay them separately")
