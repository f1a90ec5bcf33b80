"""The inputs of a replay (bags, or one source spec) and how a shard opens its share of each as a FrameSource.

Bags go whole to a shard (bag i to shard i % world): a bag is read in time order with its own synchronizer and
TF, so splitting one would read it in full in every shard. A source spec is one input that every shard opens,
taking its stride of the frames (eval/strided.py): that spreads one long input evenly.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ov_panoptic_ros.core.config import ConfigError, PipelineConfig, load_config
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.data.bag.source import BagFrameSource
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS
from ov_panoptic_ros.eval.shards import ShardPlan
from ov_panoptic_ros.eval.strided import StridedSource
from ov_panoptic_ros.eval.summary import bag_summary


@dataclass
class ReplayJob:
    """One replay: what every shard needs to run its share (picklable: spawned workers get a copy)."""

    bags: list[str] = field(default_factory=list)
    source: str | None = None  # a data/factory.py spec instead of bags
    source_options: dict = field(default_factory=dict)
    config: str | Path | PipelineConfig = "tiny"
    mapping: dict | None = None
    every: int = 1  # bags only: a source takes its own options
    max_frames: int | None = None
    topics: BagTopics | None = None
    calibration_file: str | None = None
    extrinsics: str = "auto"
    fixed_frame: str = ""
    rectified: tuple = ()
    min_points: int = NUSCENES_MIN_POINTS
    ground_truth: bool | None = None  # None: where the input has it
    figure_frames: int = 3
    output_bag: str | None = None

    @property
    def inputs(self) -> list[str]:
        return [self.source] if self.source else list(self.bags)

    def fingerprint(self) -> str:
        what = [self.inputs, self.source_options, str(getattr(self.config, "name", self.config)), self.every,
                self.max_frames, self.min_points, self.mapping]
        return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def resolve_config(config: str | Path | PipelineConfig) -> PipelineConfig:
    if isinstance(config, PipelineConfig):
        return config
    try:
        return load_config(config)
    except ConfigError as e:
        raise ReplayError(str(e)) from e


def my_inputs(job: ReplayJob, plan: ShardPlan) -> list[int]:
    """The inputs (indices into job.inputs) a shard runs: every world-th bag, or its stride of the one source."""
    return [0] if job.source else list(range(plan.rank, len(job.bags), plan.world))


def open_bag_source(job: ReplayJob, k: int, say: bool = True) -> BagFrameSource:
    """Bag k as frames; a bag found to have no ground truth is said once, before the run, so a long replay
    is not mistaken for a scored one."""
    bag = job.bags[k]
    source = BagFrameSource.open(bag, need_ground_truth=job.ground_truth, topics=job.topics, every=job.every,
                                 calibration_file=job.calibration_file, max_frames=job.max_frames,
                                 extrinsics=job.extrinsics, fixed_frame=job.fixed_frame, rectified=job.rectified)
    if say and job.ground_truth is None and not source.need_ground_truth:
        print(f"[replay] {bag} has no ground-truth topic {source.reader.topics.ground_truth}: replaying without "
              "ground truth (predictions and latency, no metrics)", file=sys.stderr, flush=True)
    return source


def open_input(job: ReplayJob, k: int, plan: ShardPlan):
    """(source, scored?) of input k for this shard."""
    if not job.source:
        source = open_bag_source(job, k)
        return source, source.need_ground_truth
    from ov_panoptic_ros.data.factory import open_source

    source = StridedSource(open_source(job.source, **job.source_options), plan.rank, plan.world)
    if job.ground_truth and source.classes is None:
        source.close()
        raise ReplayError(f"{job.source} has no ground truth to score against")
    return source, job.ground_truth is not False and source.classes is not None


def source_meta(source, plan: ShardPlan) -> dict:
    """What a part says of its input in the report: the bag, frames available and read, and (a bag) the time
    spent reading and deserializing it, which the report sets against the pipeline's."""
    if isinstance(source, StridedSource):
        return {"rank": plan.rank, "bag": None, "available": len(source) if hasattr(source.source, "__len__")
                else None, "read": source.yielded}
    reader = source.reader
    return {"rank": plan.rank, "bag": bag_summary(reader), "read": source.clouds_read,
            "available": reader.message_counts.get(source.layout.lidar_topic, 0), "read_s": reader.read_s,
            "decode_s": reader.decode_s, "bytes_read": reader.bytes_read}
