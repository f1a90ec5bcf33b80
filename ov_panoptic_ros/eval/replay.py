"""Offline replay: recorded drives (or a frame source) through the pipeline, scored against their ground truth.

A bag is a FrameSource (data/bag/source.py): frames come out paired and assembled exactly as the node would
have seen them. A fault in one frame skips that frame (counted with its reason); a fault in the bag or a Ctrl-C
ends the run early, and the report is still written from every frame done, marked partial. A bag without
ground truth (recorded on a vehicle) goes through the same run with the scoring left out: predictions, latency
and the figures that need no ground truth.

Several bags, or a source spec, may be sharded (eval/shards.py: torchrun ranks or --workers processes). A
single process is the one-shard case of the same path: run the shard (eval/replay_shard.py), merge its parts
(eval/shard_state.py, exact) and write one report; with more shards, shard 0 also collects the others first.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.frame import PanopticResult
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS
from ov_panoptic_ros.eval.replay_inputs import ReplayJob, my_inputs, open_bag_source, resolve_config
from ov_panoptic_ros.eval.replay_shard import Shard, run_shard, worker
from ov_panoptic_ros.eval.run_stats import percentiles
from ov_panoptic_ros.eval.scoring import user_table
from ov_panoptic_ros.eval.shard_state import merge
from ov_panoptic_ros.eval.shards import (ShardPlan, collect, start_workers, stop_workers, threads_per_shard,
                                         use_threads, write_shard)
from ov_panoptic_ros.eval.summary import scored_run_summary, vocabulary_summary

__all__ = ["ReplayJob", "ShardPlan", "replay", "replay_offline", "resolve_config"]
SHARD_TIMEOUT_S = 24 * 3600.0


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
    job = ReplayJob(bags=[str(bag)], config=config, mapping=user_table(mapping), every=every, max_frames=max_frames,
                    topics=topics, calibration_file=calibration_file, extrinsics=extrinsics, fixed_frame=fixed_frame,
                    rectified=tuple(rectified), min_points=min_points, ground_truth=ground_truth,
                    figure_frames=figure_frames, output_bag=str(output_bag) if output_bag else None)
    return replay(job, out, pipeline=pipeline, progress=progress, on_frame=on_frame)


def replay(job: ReplayJob, out: str | Path, plan: ShardPlan = ShardPlan(), *, pipeline=None, progress: bool = True,
           on_frame=None, shard_timeout_s: float = SHARD_TIMEOUT_S) -> dict:
    """Run this process's shard of `job`; shard 0 then merges every shard into the report in `out` and returns
    metrics.json. Another torchrun rank returns its shard's summary (`"report": false`) and writes no report."""
    t0 = time.perf_counter()
    job = _checked(job, plan, pipeline)
    processes = []
    if plan.launcher == "workers":
        use_threads(threads_per_shard(plan.world))
        processes = start_workers(worker, job, plan, out)
    try:
        shard = run_shard(job, plan, pipeline, progress, on_frame)
    except BaseException:
        stop_workers(processes)
        raise
    if plan.rank != 0:  # shard 0 merges its own parts in memory: no one reads a file of it
        write_shard(out, plan, shard.meta(), shard.parts)
        processed = sum(p.meta["processed"] for p in shard.parts)
        return {"report": False, "rank": plan.rank, "world": plan.world, "processed": processed,
                "partial_reasons": [r for p in shard.parts for r in p.meta["partial_reasons"]]}
    try:
        others, missing, interrupted = collect(out, plan, processes, shard_timeout_s)
    except BaseException:
        stop_workers(processes)
        raise
    return _report(job, plan, shard, others, missing, Path(out), t0, interrupted)


def _checked(job: ReplayJob, plan: ShardPlan, pipeline) -> ReplayJob:
    """Arguments no shard can run with, and (several bags) every bag opened once up front: a missing bag or
    topic is an error before anything runs, and all bags must agree on ground truth and its classes."""
    if job.every < 1:
        raise ReplayError(f"--every must be at least 1, got {job.every}")
    if job.max_frames is not None and job.max_frames < 1:
        raise ReplayError(f"--max-frames must be at least 1, got {job.max_frames}")
    if not job.inputs:
        raise ReplayError("nothing to replay: name one or more bags, or --source")
    if job.output_bag and (job.source or len(job.bags) > 1):
        raise ReplayError("--output-bag mirrors one input bag; replay with several bags or a --source writes none")
    if pipeline is not None and plan.launcher == "workers":
        raise ReplayError("a ready pipeline runs in this process only; workers build their own from the config")
    if len(job.bags) < 2:
        return job
    found = {}
    for k in range(len(job.bags)):
        source = open_bag_source(job, k, say=plan.rank == 0)
        found[job.bags[k]] = (source.need_ground_truth, source.classes if source.need_ground_truth else None)
        source.close()
    first = job.bags[0]
    other = next((b for b, v in found.items() if v != found[first]), None)
    if other is not None:
        why = "one has none" if found[other][0] != found[first][0] else "other classes"
        raise ReplayError(f"{other} and {first} differ in ground truth ({why}): replay them separately, or all "
                          "with --no-ground-truth")
    return replace(job, ground_truth=found[first][0])


def _report(job: ReplayJob, plan: ShardPlan, shard: Shard, others: dict, missing: dict[int, str], out: Path,
            t0: float, interrupted: bool) -> dict:
    """metrics.json of every shard merged, in a single run's shape (one bag: exactly the one it always had), plus
    `inputs` and `shards`. Times: `wall_s` is the slowest shard's loop, so `frames_per_s` is the throughput of
    all shards together; `bag_read_share` sets all reading against all loops."""
    from ov_panoptic_ros.eval.report import write_report

    shards = {0: (shard.meta(), shard.parts), **others}
    parts = [p for _, ps in shards.values() for p in ps]
    stats = merge(parts, shard.scorer)
    if interrupted:
        stats.partial_reasons.append("interrupted (Ctrl-C) while waiting for the other shards")
    for rank, why in missing.items():
        lost = ", ".join(sorted({job.inputs[k] for k in my_inputs(job, replace(plan, rank=rank))}))
        stats.partial_reasons.append(f"shard {rank} of {plan.world} wrote no state ({why}): not in this report: {lost}")
    wall = max(m["wall_s"] for m, _ in shards.values())
    loops = sum(p.meta["loop_s"] for p in parts)
    frames = stats.frames_dict(_total(p.meta["available"] for p in parts), sum(p.meta["read"] for p in parts),
                               job.every, job.max_frames)
    if job.source:
        frames["in_source"] = frames.pop("in_bag")
    read = {k: _total(p.meta.get(k) for p in parts) for k in ("read_s", "decode_s", "bytes_read")}
    bag_read = read["read_s"] + read["decode_s"] if read["read_s"] is not None else None
    doc = {
        "mode": "offline",
        **scored_run_summary(parts[0].meta["bag"] if len(job.bags) == 1 else None, stats, shard.scorer,
                             job.output_bag),
        **({"source": job.source, "source_options": job.source_options} if job.source else {}),
        "config": shard.config_name,
        "pipeline_mode": getattr(shard.pipeline, "mode", type(shard.pipeline).__name__),
        "vocabulary": vocabulary_summary(shard.pipeline.vocabulary),
        "frames": frames,
        "latency_ms": percentiles(stats.latency_ms),
        "stage_latency_ms": {k: percentiles(v) for k, v in stats.stage_ms.items()},
        "timing": {
            "wall_s": wall, "pipeline_init_s": max(m["pipeline_init_s"] for m, _ in shards.values()),
            "bag_read_s": bag_read, "bag_storage_read_s": read["read_s"], "bag_deserialize_s": read["decode_s"],
            "bag_read_share": bag_read / loops if bag_read is not None and loops > 0 else None,
            "bag_bytes_read": read["bytes_read"],
            "frames_per_s": stats.processed / wall if wall > 0 else None,
            "elapsed_s": time.perf_counter() - t0,
        },
        "inputs": [_input_summary(p) for p in sorted(parts, key=lambda p: (p.meta["input"], p.meta["rank"]))],
        "shards": {"count": plan.world, "launcher": plan.launcher, "split": "frames" if job.source else "bags",
                   "merged": sorted(shards), "missing": sorted(missing),
                   "wall_s": {str(r): m["wall_s"] for r, (m, _) in sorted(shards.items())}},
    }
    return write_report(out, doc, shard.scorer, shard.samples)


def _total(values):
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def _input_summary(part) -> dict:
    m = part.meta
    return {"input": m["name"], "shard": m["rank"], "bag": m["bag"], "processed": m["processed"],
            "skipped": sum(m["problems"]["frames"].values()), "available": m["available"], "read": m["read"],
            "partial_reasons": m["partial_reasons"]}
