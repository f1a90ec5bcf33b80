"""Offline replay: a recorded drive through the pipeline, scored against its ground truth.

The bag is a FrameSource (data/bag/source.py): frames come out paired and assembled exactly as the node
would have seen them. A fault in one frame skips that frame (counted with its reason); a fault in the bag
or a Ctrl-C ends the run early, and the report is still written from every frame done, marked partial.
A bag without ground truth (recorded on a vehicle) goes through the same run with the scoring left out:
predictions, latency and the figures that need no ground truth.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ov_panoptic_ros.core.config import ConfigError, PipelineConfig, load_config
from ov_panoptic_ros.core.frame import Frame, PanopticResult
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.data.bag.source import BagFrameSource
from ov_panoptic_ros.data.source import GroundTruth
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.evaluate import ScoredFrames, score_frames
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS
from ov_panoptic_ros.eval.prediction_bag import PredictionBag
from ov_panoptic_ros.eval.run_stats import RunStats, SampleKeeper, percentiles
from ov_panoptic_ros.eval.scoring import Scorer, user_table
from ov_panoptic_ros.eval.summary import scored_run_summary, vocabulary_summary


def resolve_config(config: str | Path | PipelineConfig) -> PipelineConfig:
    if isinstance(config, PipelineConfig):
        return config
    try:
        return load_config(config)
    except ConfigError as e:
        raise ReplayError(str(e)) from e


@dataclass
class OfflineRun:
    """Everything one replay produces before it becomes a report."""

    source: BagFrameSource
    config: PipelineConfig
    pipeline: object
    frames: ScoredFrames  # frames.scorer is None without ground truth
    out_bag: PredictionBag | None = None
    pipeline_init_s: float = 0.0
    every: int = 1
    max_frames: int | None = None
    output_bag: Path | None = field(default=None)


def replay_offline(bag: str | Path, config: str | Path | PipelineConfig = "tiny", out: str | Path = "runs/replay",
                   *, pipeline=None, mapping: str | Path | dict | None = None, max_frames: int | None = None,
                   every: int = 1, output_bag: str | Path | None = None, topics: BagTopics | None = None,
                   calibration_file: str | Path | None = None, min_points: int = NUSCENES_MIN_POINTS,
                   figure_frames: int = 3, progress: bool = True,
                   on_frame: Callable[[int, PanopticResult], None] | None = None,
                   ground_truth: bool | None = None, extrinsics: str = "auto", fixed_frame: str = "",
                   rectified: Iterable[str] = ()) -> dict:
    """Replay `bag` through the pipeline, score it (given ground truth) and write the report into `out`;
    returns metrics.json.

    `pipeline` (optional) is a ready PanopticPipeline, or anything with `.vocabulary` that maps a Frame
    to a PanopticResult. `on_frame(index, result)` runs after each scored frame (a hook for progress
    UIs and tests). Bag and config problems raise BagError / ReplayError before anything runs.
    `ground_truth`: False runs without it (no scorer, no metrics; `mapping` and `min_points` unused), True
    requires it, None uses it when the bag has its topic and says in one line on stderr when it does not.
    `extrinsics` (auto, tf, file) and `fixed_frame` place the cameras as the node's extrinsics_source and
    tf.fixed_frame do, from the bag's /tf_static and /tf; `rectified` names cameras whose images are rectified
    besides those on image_rect* topics (data/bag/source.py).
    """
    if every < 1:
        raise ReplayError(f"--every must be at least 1, got {every}")
    if max_frames is not None and max_frames < 1:
        raise ReplayError(f"--max-frames must be at least 1, got {max_frames}")
    cfg = resolve_config(config)
    table = user_table(mapping)
    source = _open_source(bag, ground_truth, topics=topics, calibration_file=calibration_file, every=every,
                          max_frames=max_frames, extrinsics=extrinsics, fixed_frame=fixed_frame, rectified=rectified)
    try:
        run = _prepare(source, cfg, pipeline, table, min_points, figure_frames)
        run.every, run.max_frames = every, max_frames
        run.output_bag = Path(output_bag) if output_bag else None
        if run.output_bag is not None:
            run.out_bag = PredictionBag(run.output_bag, source.reader.topics, source.classes)
        _loop(run, progress, on_frame)
        return _finish(run, Path(out))
    finally:
        source.close()


def _open_source(bag, ground_truth: bool | None, **options) -> BagFrameSource:
    """The bag as frames (`options`: BagFrameSource.open's); a bag that turns out to have no ground truth is said
    once, before the run, so a long replay is not mistaken for a scored one."""
    source = BagFrameSource.open(bag, need_ground_truth=ground_truth, **options)
    if ground_truth is None and not source.need_ground_truth:
        print(f"[replay] {bag} has no ground-truth topic {source.reader.topics.ground_truth}: replaying without "
              "ground truth (predictions and latency, no metrics)", file=sys.stderr, flush=True)
    return source


def _prepare(source: BagFrameSource, cfg: PipelineConfig, pipeline, table, min_points, figure_frames) -> OfflineRun:
    t0 = time.perf_counter()
    if pipeline is None:
        from ov_panoptic_ros.core.pipeline import PanopticPipeline

        pipeline = PanopticPipeline(cfg)
    init_s = time.perf_counter() - t0
    scorer = Scorer(source.classes, pipeline.vocabulary, table, min_points) if source.need_ground_truth else None
    stats = RunStats(source.problems)
    if source.reader.partial_reason:
        stats.partial_reasons.append(source.reader.partial_reason)
    frames = ScoredFrames(scorer, stats, SampleKeeper(len(source), figure_frames))
    return OfflineRun(source, cfg, pipeline, frames, pipeline_init_s=init_s)


def _loop(run: OfflineRun, progress: bool, on_frame) -> None:
    """The shared frame loop (eval/evaluate.py), plus the predictions bag and the caller's hook per frame."""
    def after(index: int, frame: Frame, result: PanopticResult, truth: GroundTruth) -> None:
        if run.out_bag is not None:
            run.out_bag.write(frame, result, truth)
        if on_frame is not None:
            on_frame(index, result)

    try:
        score_frames(run.source, run.pipeline, run.frames, progress=progress, desc="replay", after=after)
    finally:
        if run.out_bag is not None:
            run.out_bag.close()


def _finish(run: OfflineRun, out: Path) -> dict:
    from ov_panoptic_ros.eval.report import write_report

    source, stats, loop_s = run.source, run.frames.stats, run.frames.loop_s
    reader = source.reader
    bag_read_s = reader.read_s + reader.decode_s
    doc = {
        "mode": "offline",
        **scored_run_summary(reader, stats, run.frames.scorer, run.output_bag),
        "config": run.config.name,
        "pipeline_mode": getattr(run.pipeline, "mode", type(run.pipeline).__name__),
        "vocabulary": vocabulary_summary(run.pipeline.vocabulary),
        "frames": stats.frames_dict(reader.message_counts.get(source.layout.lidar_topic, 0), source.clouds_read,
                                    run.every, run.max_frames),
        "latency_ms": percentiles(stats.latency_ms),
        "stage_latency_ms": {k: percentiles(v) for k, v in stats.stage_ms.items()},
        "timing": {
            "wall_s": loop_s, "pipeline_init_s": run.pipeline_init_s, "bag_read_s": bag_read_s,
            "bag_storage_read_s": reader.read_s, "bag_deserialize_s": reader.decode_s,
            "bag_read_share": bag_read_s / loop_s if loop_s > 0 else None,
            "bag_bytes_read": reader.bytes_read,
            "frames_per_s": stats.processed / loop_s if loop_s > 0 else None,
        },
    }
    return write_report(out, doc, run.frames.scorer, run.frames.samples.result())
