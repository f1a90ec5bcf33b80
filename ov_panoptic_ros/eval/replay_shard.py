"""One shard of an offline replay: its share of the inputs (eval/replay_inputs.py) through one pipeline, each
input's state kept apart as a part (eval/shard_state.py) for shard 0 to merge into the report.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from ov_panoptic_ros.eval.evaluate import ScoredFrames, score_frames
from ov_panoptic_ros.eval.prediction_bag import PredictionBag
from ov_panoptic_ros.eval.replay_inputs import ReplayJob, my_inputs, open_input, resolve_config, source_meta
from ov_panoptic_ros.eval.run_stats import RunStats, SampleKeeper
from ov_panoptic_ros.eval.scoring import Scorer
from ov_panoptic_ros.eval.shard_state import PartState, capture
from ov_panoptic_ros.eval.shards import ShardPlan, pick_gpu, use_threads, write_shard
from ov_panoptic_ros.eval.strided import StridedSource

__all__ = ["ReplayJob", "Shard", "run_shard", "worker"]


@dataclass
class Shard:
    rank: int
    parts: list[PartState]
    pipeline: object | None = None
    config_name: str = ""
    init_s: float = 0.0
    scorer: Scorer | None = None  # its first part's: the merged scores go into it
    samples: list = field(default_factory=list)  # frames for the figures, from its first part

    def meta(self) -> dict:
        return {"pipeline_init_s": self.init_s, "wall_s": sum(p.meta["loop_s"] for p in self.parts)}


def run_shard(job: ReplayJob, plan: ShardPlan, pipeline=None, progress: bool = True, on_frame=None) -> Shard:
    """This shard's inputs, one part each; a Ctrl-C ends the part it lands in (marked partial) and the shard."""
    inputs = my_inputs(job, plan)
    shard = Shard(plan.rank, [])
    if not inputs:
        return shard
    cfg = resolve_config(job.config)
    shard.config_name = cfg.name
    t0 = time.perf_counter()
    if pipeline is None:
        from ov_panoptic_ros.core.pipeline import PanopticPipeline

        pick_gpu(plan)
        pipeline = PanopticPipeline(cfg)
    shard.pipeline, shard.init_s = pipeline, time.perf_counter() - t0
    for n, k in enumerate(inputs):
        part, scorer, samples = _run_part(job, k, plan, pipeline, job.figure_frames if n == 0 else 0, progress,
                                          on_frame)
        shard.parts.append(part)
        if n == 0:
            shard.scorer, shard.samples = scorer, samples
        if any(r.startswith("interrupted") for r in part.meta["partial_reasons"]):
            break
    return shard


def _run_part(job: ReplayJob, k: int, plan: ShardPlan, pipeline, figure_frames: int, progress: bool, on_frame):
    source, scored = open_input(job, k, plan)
    try:
        scorer = Scorer(source.classes, pipeline.vocabulary, job.mapping, job.min_points,
                        keep_frame_iou=True) if scored else None
        stats = RunStats(source.problems)
        reader = getattr(source, "reader", None)
        if reader is not None and reader.partial_reason:
            stats.partial_reasons.append(reader.partial_reason)
        frames = ScoredFrames(scorer, stats, SampleKeeper(len(source) or figure_frames, figure_frames))
        out_bag = PredictionBag(job.output_bag, reader.topics, source.classes) if job.output_bag else None
        keys: list[int] = []

        def after(index, frame, result, truth) -> None:
            keys.append(source.ordinal if isinstance(source, StridedSource) else len(keys))
            if out_bag is not None:
                out_bag.write(frame, result, truth)
            if on_frame is not None:
                on_frame(index, result)

        try:
            score_frames(source, pipeline, frames, progress=progress, desc="replay", after=after)
        finally:
            if out_bag is not None:
                out_bag.close()
        part = capture(k, job.inputs[k], frames, keys, source_meta(source, plan))
        return part, scorer, frames.samples.result()
    finally:
        source.close()


def worker(job: ReplayJob, plan: ShardPlan, out: str, threads: int) -> None:
    """A spawned shard (--workers): its own pipeline, its state into OUT/shards/ for shard 0 to merge."""
    use_threads(threads)
    try:
        shard = run_shard(job, plan, progress=False)
    except KeyboardInterrupt:  # before its first frame: nothing to merge; shard 0 reports it missing
        sys.exit(130)
    write_shard(out, plan, shard.meta(), shard.parts)
