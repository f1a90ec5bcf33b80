"""Scoring any FrameSource through a pipeline: the one frame loop behind offline replay and the trainer's
validation, and the report it writes (the replay report's shape: metrics.json with base/novel groups,
per_class.csv, figures). Without a scorer the same loop only runs the pipeline (a drive without ground truth:
predictions and latency).

A frame the pipeline fails on is skipped and counted with its reason; Ctrl-C or a damaged recording end the
loop early, and the report of the frames done is still written, marked partial.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import Frame, PanopticResult
from ov_panoptic_ros.data.bag.errors import BagReadError
from ov_panoptic_ros.data.source import FrameSource, GroundTruth
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS
from ov_panoptic_ros.eval.run_stats import FrameSample, RunStats, SampleKeeper, percentiles
from ov_panoptic_ros.eval.scoring import Scorer, user_table
from ov_panoptic_ros.eval.summary import scoring_summary, vocabulary_summary

# after(index, frame, result, truth): runs after each scored frame (prediction bags, progress hooks, tests)
AfterFrame = Callable[[int, Frame, PanopticResult, GroundTruth], None]


@dataclass
class ScoredFrames:
    """What the frame loop accumulates: the scores, the run's own record and the frames kept for figures.

    `scorer` None: no ground truth, so nothing is scored and a frame is not skipped for lacking it."""

    scorer: Scorer | None
    stats: RunStats
    samples: SampleKeeper
    loop_s: float = 0.0


def score_frames(source: FrameSource, pipeline, run: ScoredFrames, *, progress: bool = True, desc: str = "evaluate",
                 after: AfterFrame | None = None) -> None:
    """Every frame of `source` through `pipeline` (a Frame -> PanopticResult callable) into `run`."""
    from tqdm import tqdm

    stats = run.stats
    total = len(source) if hasattr(source, "__len__") else None
    t0 = time.perf_counter()
    bar = tqdm(total=total or None, unit="frame", desc=desc, disable=not progress, dynamic_ncols=True)
    try:
        for frame, truth in source:
            _score(run, pipeline, source.position, frame, truth, after)
            bar.update(stats.processed + stats.skipped - bar.n)
            bar.set_postfix(skipped=stats.skipped, refresh=False)
    except KeyboardInterrupt:
        stats.partial_reasons.append(f"interrupted (Ctrl-C) after {stats.processed} scored frames")
    except BagReadError as e:  # a damaged recording: the frames before the damage still count
        stats.partial_reasons.append(str(e))
    finally:
        bar.update(stats.processed + stats.skipped - bar.n)
        bar.close()
        run.loop_s = time.perf_counter() - t0


def _score(run: ScoredFrames, pipeline, index: int, frame: Frame, truth: GroundTruth | None, after) -> None:
    if truth is None and run.scorer is not None:
        run.stats.skip(index, frame.stamp_ns, "ground_truth_missing", "the source gave this frame no ground truth")
        return
    start = time.perf_counter()
    try:
        result = pipeline(frame)
    except (ValueError, RuntimeError) as e:  # one bad frame must not end a long evaluation
        run.stats.skip(index, frame.stamp_ns, "pipeline_error", f"{type(e).__name__}: {e}")
        return
    latency_ms = (time.perf_counter() - start) * 1e3
    if run.scorer is not None:
        run.scorer.add(result.labels, result.instance_ids, truth.labels, truth.instance_ids)
    run.stats.done(frame, latency_ms, result.timings_ms)
    gt = (truth.labels, truth.instance_ids) if truth is not None else (None, None)
    run.samples.offer(FrameSample(index, frame.stamp_ns, frame, result.labels, result.instance_ids, *gt,
                                  vocabulary=result.vocabulary))
    if after is not None:
        after(index, frame, result, truth)


def evaluate(source: FrameSource, pipeline, out: str | Path, *, classes: ClassInfo | None = None,
             mapping: str | Path | dict | None = None, min_points: int = NUSCENES_MIN_POINTS, figures: bool = True,
             figure_frames: int = 3, progress: bool = True, desc: str = "evaluate", extra: dict | None = None) -> dict:
    """Score every frame of `source` through `pipeline` and write the report into `out`; returns metrics.json.

    `classes` overrides the source's ground-truth classes (the trainer passes them with its own base/novel
    split, so the groups are those the network was trained with); `extra` is merged into metrics.json (e.g.
    a `source` description better than the source's type name). `figures`: the per-class and confusion
    figures, plus bird's-eye and camera views of `figure_frames` frames.
    """
    from ov_panoptic_ros.eval.report import write_report

    classes = classes or source.classes
    if classes is None:
        raise ReplayError(f"the frame source {type(source).__name__} has no ground truth to score against")
    scorer = Scorer(classes, pipeline.vocabulary, user_table(mapping), min_points)
    expected = len(source) if hasattr(source, "__len__") else figure_frames
    keep = figure_frames if figures else 0
    run = ScoredFrames(scorer, RunStats(source.problems), SampleKeeper(expected, keep))
    score_frames(source, pipeline, run, progress=progress, desc=desc)
    stats = run.stats
    doc = {
        "mode": "evaluate",
        "source": type(source).__name__,
        "partial": bool(stats.partial_reasons),
        "partial_reasons": stats.partial_reasons,
        "config": pipeline.config.name,
        "pipeline_mode": pipeline.mode,
        "vocabulary": vocabulary_summary(pipeline.vocabulary),
        **scoring_summary(scorer),
        "frames": {"processed": stats.processed, "skipped": stats.skipped,
                   "skipped_by_reason": dict(stats.problems.frames)},
        "points": stats.points_dict(),
        "latency_ms": percentiles(stats.latency_ms),
        "stage_latency_ms": {k: percentiles(v) for k, v in stats.stage_ms.items()},
        "timing": {"wall_s": run.loop_s,
                   "frames_per_s": stats.processed / run.loop_s if run.loop_s > 0 else None},
        **(extra or {}),
    }
    interrupted = any(r.startswith("interrupted") for r in stats.partial_reasons)
    return write_report(out, doc, scorer, run.samples.result(), figures=figures and not interrupted)
