"""Offline replay: a recorded drive through the pipeline, scored against its ground truth.

The bag is read lazily in time order; images are paired with each cloud by the node's own
synchronizer (ros/sync.py, driven by bag time instead of wall time) so offline numbers describe what
the node would have seen. Predicted vocabulary labels are mapped to ground-truth classes by
LabelMapping and scored by the streaming PanopticEval. A fault in one frame skips that frame (counted
with its reason); a fault in the bag or a Ctrl-C ends the run early, and the report is still written
from every frame done, marked partial.
"""
from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import yaml

from ov_panoptic_ros.core.config import ConfigError, PipelineConfig, load_config
from ov_panoptic_ros.core.frame import UNLABELED, Frame, PanopticResult, Vocabulary
from ov_panoptic_ros.eval.bag import (
    BagError,
    BagLayout,
    BagMessage,
    BagReader,
    BagReadError,
    BagTopics,
    open_bag,
    read_cloud_fields,
)
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS, ClassInfo, LabelMapping, PanopticEval

NS = 1_000_000_000
GT_WAIT_S = 1.0  # a frame whose ground truth has not appeared this long (bag time) after it is skipped
MAX_SKIP_EXAMPLES = 50
SYNC_MAX_OFFSET_S = 0.05  # the node's sync.max_offset_s default (ros/params.py)
SYNC_CAMERA_TIMEOUT_S = 0.1  # the node's sync.camera_timeout_s default

# Common open-vocabulary names for the ground-truth classes of nuScenes, SemanticKITTI and the synthetic
# world. Entries whose target is not a class of the bag are dropped; a --mapping file adds or overrides.
DEFAULT_MAPPING = {
    "road": "driveable_surface", "driveable surface": "driveable_surface", "drivable surface": "driveable_surface",
    "street": "driveable_surface", "building": "manmade", "manmade structure": "manmade",
    "man-made structure": "manmade", "wall": "manmade", "tree": "vegetation", "bush": "vegetation",
    "person": "pedestrian", "construction vehicle": "construction_vehicle", "traffic cone": "traffic_cone",
    "grass": "terrain", "pavement": "sidewalk", "other flat": "other_flat",
}


class ReplayError(Exception):
    """A replay that cannot start (bad config, mapping or bag); the message is for the user."""


# --------------------------------------------------------------------------------------------------
# Label mapping and scoring (model-free, so the scoring path is testable on its own)
# --------------------------------------------------------------------------------------------------
def load_mapping_file(path: str | Path) -> dict[str, str | None]:
    """A YAML mapping `predicted name: ground-truth class` (or null), flat or under a `mapping:` key."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ReplayError(f"mapping file {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ReplayError(f"mapping file {path} is not valid YAML: {e}") from e
    if isinstance(data, dict) and set(data) == {"mapping"}:
        data = data["mapping"]
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ReplayError(f"mapping file {path}: expected a mapping of predicted name -> ground-truth class")
    bad = {k: v for k, v in data.items() if v is not None and not isinstance(v, str)}
    if bad:
        raise ReplayError(f"mapping file {path}: values must be class names or null, got {bad}")
    return dict(data)


def mapping_table(classes: ClassInfo, user: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Defaults that fit these classes, each GT name with spaces for underscores, then the user's table."""
    names = {n.lower(): n for n in classes.names}
    table = {k: names[v.lower()] for k, v in DEFAULT_MAPPING.items() if v.lower() in names}
    table.update({n.replace("_", " "): n for n in classes.names if "_" in n})
    table.update(user or {})
    return table


class Scorer:
    """PanopticEval over ground-truth classes, fed with predictions in vocabulary label space.

    Also keeps a GT x vocabulary confusion matrix (last column: unlabeled) for the report: in open
    vocabulary, *which prompt* the points of a class went to is what one wants to see.
    """

    def __init__(self, classes: ClassInfo, vocabulary: Vocabulary, table: dict[str, str | None] | None = None,
                 min_points: int = NUSCENES_MIN_POINTS, default_mapping: bool = True):
        """`table` maps predicted names to GT classes; with `default_mapping` it extends DEFAULT_MAPPING."""
        self.classes = classes
        self.vocabulary = vocabulary
        try:
            table = mapping_table(classes, table) if default_mapping else table
            self.mapping = LabelMapping(vocabulary.classes, classes, table)
        except ValueError as e:
            raise ReplayError(str(e)) from e
        self.eval = PanopticEval(classes, min_points=min_points)
        self.confusion = np.zeros((classes.n_classes, len(vocabulary.classes) + 1), dtype=np.int64)

    def add(self, pred_labels: np.ndarray, pred_instances: np.ndarray, gt_labels: np.ndarray,
            gt_instances: np.ndarray) -> None:
        mapped = self.mapping(pred_labels)
        self.eval.add(mapped, pred_instances, gt_labels, gt_instances)
        col = np.where(pred_labels == UNLABELED, len(self.vocabulary.classes), pred_labels).astype(np.int64)
        n_cols = self.confusion.shape[1]
        self.confusion += np.bincount(gt_labels.astype(np.int64) * n_cols + col,
                                      minlength=self.confusion.size).reshape(self.confusion.shape)

    def mapping_report(self) -> dict:
        lut = self.mapping.lut
        names = self.classes.names
        mapped = {entry: (names[t] if t != UNLABELED else None) for entry, t in zip(self.vocabulary.classes, lut)}
        reachable = {int(t) for t in lut if t != UNLABELED}
        return {
            "table": mapped,
            "unmapped_vocabulary": list(self.mapping.unmapped),
            "gt_classes_never_predicted": [names[i] for i in self.classes.evaluated if i not in reachable],
        }

    def metrics(self) -> dict | None:
        """Every metric number (None when no frame was scored: zeros would be a lie)."""
        if self.eval.n_frames == 0:
            return None
        d = self.eval.compute().to_dict()
        overall = d.pop("all")
        classes = d.pop("classes")
        n_frames, n_points = d.pop("n_frames"), d.pop("n_points")
        return {**overall, "groups": d, "classes": classes, "n_frames": n_frames, "n_points": n_points,
                "absent_classes": self.absent_classes()}

    def absent_classes(self) -> list[str]:
        """Evaluated classes with no ground-truth point and no prediction: they score 0 in every mean."""
        conf = self.eval.confusion  # rows: predicted class (+ none), columns: ground truth
        n = self.classes.n_classes
        return [self.classes.names[i] for i in self.classes.evaluated
                if conf[:, i].sum() == 0 and conf[i].sum() == 0 and i < n]


def ground_truth_problem(labels: np.ndarray, n_points: int, n_classes: int) -> tuple[str, str] | None:
    """(kind, detail) when a frame's ground truth cannot be scored against its cloud, else None."""
    if labels.shape[0] != n_points:
        return ("ground_truth_point_count", f"ground truth has {labels.shape[0]} points but the cloud has {n_points}")
    bad = np.unique(labels[labels >= n_classes])
    if bad.size:
        return ("ground_truth_unknown_class",
                f"ground truth label(s) {bad[:10].tolist()} outside the {n_classes}-class list")
    return None


# --------------------------------------------------------------------------------------------------
# Frames out of the bag
# --------------------------------------------------------------------------------------------------
@dataclass
class ReplayItem:
    """One LiDAR frame ready to run, or why it cannot be."""

    index: int  # position of the cloud in the bag (0-based)
    stamp_ns: int
    frame: Frame | None = None
    gt_labels: np.ndarray | None = None
    gt_instances: np.ndarray | None = None
    skip: tuple[str, str] | None = None  # (kind, detail)
    camera_issues: list[tuple[str, str]] = field(default_factory=list)  # (camera, kind) left out of the frame
    gt_raw: bytes | None = None  # the serialized ground-truth cloud, copied into the output bag


@dataclass
class _Waiting:
    index: int
    stamp_ns: int
    cloud: BagMessage
    images: dict
    ready_ns: int  # bag time at which the synchronizer released it


class FrameSource:
    """Bag messages -> ReplayItems, pairing images exactly as the node does (ros/sync.py).

    Bag time stands in for the node's clock: a cloud waits (in bag time) for its cameras as the node
    would, then for its ground truth (matched by header stamp).
    """

    def __init__(self, reader: BagReader, layout: BagLayout, every: int = 1, max_frames: int | None = None,
                 max_offset_s: float = SYNC_MAX_OFFSET_S, camera_timeout_s: float = SYNC_CAMERA_TIMEOUT_S,
                 need_ground_truth: bool = True):
        from ov_panoptic_ros.ros.sync import CameraSynchronizer, FrameAssembler

        self.reader, self.layout = reader, layout
        self.every, self.max_frames = max(1, int(every)), max_frames
        self.need_ground_truth = need_ground_truth
        offsets = {c.name: layout.calibration.cameras[c.name].time_offset_s for c in layout.cameras}
        self.assembler = FrameAssembler(CameraSynchronizer(offsets, max_offset_s), camera_timeout_s,
                                        max_pending=16)
        self.image_topics = {c.image_topic: c for c in layout.cameras}
        self.info_topics = {c.info_topic: c.name for c in layout.cameras}
        self.infos: dict[str, object] = {}
        self.models: dict[tuple, object] = {}
        self.ground_truth: dict[int, BagMessage] = {}
        self.waiting: deque[_Waiting] = deque()
        self.clouds_read = 0
        self.selected = 0
        self.skipped_early: list[ReplayItem] = []

    def topics(self) -> list[str]:
        topics = [self.layout.lidar_topic, *self.image_topics, *self.info_topics]
        return topics + ([self.layout.ground_truth_topic] if self.need_ground_truth else [])

    def __iter__(self) -> Iterator[ReplayItem]:
        """Items in cloud order; on a damaged bag the frames read before the damage come out first."""
        damaged = None
        try:
            for msg in self.reader.messages(self.topics()):
                self._dispatch(msg)
                yield from self._drain(msg.log_time_ns, final=False)
                if self._done():
                    return
        except BagReadError as e:
            damaged = e
        yield from self._drain(2**63 - 1, final=True)
        if damaged is not None:
            raise damaged

    def _done(self) -> bool:
        return (self.max_frames is not None and self.selected >= self.max_frames
                and not self.waiting and self.assembler.num_pending == 0)

    def _dispatch(self, msg: BagMessage) -> None:
        if msg.topic == self.layout.lidar_topic:
            self._add_cloud(msg)
        elif msg.topic in self.image_topics:
            self._add_image(msg)
        elif msg.topic in self.info_topics:
            try:
                self.infos[self.info_topics[msg.topic]] = msg.decode()
            except BagError:
                pass  # a bad CameraInfo leaves the previous one in use; frames without one miss that camera
        elif msg.topic == self.layout.ground_truth_topic:
            self._add_ground_truth(msg)

    def _add_cloud(self, msg: BagMessage) -> None:
        index = self.clouds_read
        self.clouds_read += 1
        if index % self.every or (self.max_frames is not None and self.selected >= self.max_frames):
            return
        self.selected += 1
        try:
            stamp = _stamp_ns(msg.decode())
        except BagError as e:
            self.skipped_early.append(ReplayItem(index, msg.log_time_ns, skip=("cloud_undecodable", str(e))))
            return
        dropped = self.assembler.dropped_pending
        self.assembler.add_cloud(stamp, (index, msg), msg.log_time_ns / NS)
        if self.assembler.dropped_pending > dropped:
            self.skipped_early.append(ReplayItem(index, stamp, skip=(
                "dropped_waiting_for_cameras", "more clouds waiting for cameras than the synchronizer holds")))

    def _add_image(self, msg: BagMessage) -> None:
        cam = self.image_topics[msg.topic]
        try:
            stamp = _stamp_ns(msg.decode())
        except BagError:
            return
        self.assembler.add_image(cam.name, stamp, msg)

    def _add_ground_truth(self, msg: BagMessage) -> None:
        try:
            self.ground_truth[_stamp_ns(msg.decode())] = msg
        except BagError:
            pass  # the frame it belonged to ends up skipped as "no ground truth"

    def _drain(self, now_ns: int, final: bool) -> Iterator[ReplayItem]:
        while self.skipped_early:
            yield self.skipped_early.pop(0)
        poll_s = math.inf if final else now_ns / NS
        for synced in self.assembler.poll(poll_s):
            index, cloud = synced.cloud
            self.waiting.append(_Waiting(index, synced.stamp_ns, cloud, synced.images, now_ns))
        while self.waiting:
            w = self.waiting[0]
            has_gt = w.stamp_ns in self.ground_truth or not self.need_ground_truth
            if not (has_gt or final or now_ns - w.ready_ns > GT_WAIT_S * NS):
                return
            self.waiting.popleft()
            yield self._build(w)
            self._forget_ground_truth(w.stamp_ns)

    def _forget_ground_truth(self, stamp_ns: int) -> None:
        for s in [s for s in self.ground_truth if s <= stamp_ns]:
            del self.ground_truth[s]

    def _build(self, w: _Waiting) -> ReplayItem:
        from ov_panoptic_ros.ros.messages import InputError, read_cloud

        item = ReplayItem(w.index, w.stamp_ns)
        try:
            decoded = w.cloud.decode()
            cloud = read_cloud(decoded)
        except (InputError, BagError) as e:
            item.skip = (getattr(e, "kind", "cloud_undecodable"), f"cloud: {e}")
            return item
        if self.need_ground_truth and not self._attach_ground_truth(item, cloud):
            return item
        xyz, intensity = cloud.finite_points()
        images, cameras = self._images(w.images, item)
        item.frame = Frame(points=xyz, images=images, cameras=cameras, intensity=intensity,
                           stamp_ns=w.stamp_ns, frame_id=str(decoded.header.frame_id))
        return item

    def _attach_ground_truth(self, item: ReplayItem, cloud) -> bool:
        from ov_panoptic_ros.ros.messages import InputError

        gt_msg = self.ground_truth.get(item.stamp_ns)
        if gt_msg is None:
            item.skip = ("ground_truth_missing", f"no ground truth stamped {item.stamp_ns}")
            return False
        try:
            gt = read_cloud_fields(gt_msg.decode(), ["label", "instance_id"])
        except (InputError, BagError) as e:
            item.skip = ("ground_truth_bad_layout", f"ground truth: {e}")
            return False
        labels, instances = gt["label"], gt["instance_id"]
        item.gt_raw = gt_msg.raw
        item.skip = ground_truth_problem(labels, cloud.num_points, self.layout.classes.n_classes)
        if item.skip is not None:
            return False
        if not cloud.all_finite:
            labels, instances = labels[cloud.finite], instances[cloud.finite]
        item.gt_labels, item.gt_instances = labels, instances
        return True

    def _images(self, matched: dict, item: ReplayItem) -> tuple[list, list]:
        """Convert the matched images; a camera that cannot be used is left out (as the node does) and noted."""
        images, cameras = [], []
        for cam in self.layout.cameras:
            used = self._camera_input(cam, matched.get(cam.name))
            if isinstance(used, str):
                item.camera_issues.append((cam.name, used))
            else:
                images.append(used[0])
                cameras.append(used[1])
        return images, cameras

    def _camera_input(self, cam, msg: BagMessage | None):
        """(rgb, CameraModel), or the kind of problem that keeps this camera out of the frame."""
        from ov_panoptic_ros.ros.messages import InputError, compressed_to_rgb, image_to_rgb

        if msg is None:
            return "no_image_in_sync_window"
        info = self.infos.get(cam.name)
        if info is None:
            return "camera_info_missing"
        try:
            model = self._camera_model(cam.name, info)
            decoded = msg.decode()
            rgb = compressed_to_rgb(decoded) if cam.compressed else image_to_rgb(decoded)
        except InputError as e:
            return e.kind
        except BagError:
            return "image_undecodable"
        if rgb.shape[:2] != (model.height, model.width):
            return "image_size_mismatch"
        return rgb, model

    def _camera_model(self, name: str, info):
        from ov_panoptic_ros.ros.messages import camera_info_key, camera_model_from_info

        key = (name, camera_info_key(info))
        if key not in self.models:
            self.models[key] = camera_model_from_info(name, info, self.layout.calibration.cameras[name])
        return self.models[key]


def _stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)


# --------------------------------------------------------------------------------------------------
# Run bookkeeping
# --------------------------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict:
    """p50/p90/p99/mean/max of a list (None each when empty), for latency tables."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "max": None, "n": 0}
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()),
            "max": float(a.max()), "n": int(a.size)}


class RunStats:
    """Counts, skips with reasons, latencies: everything metrics.json says about the run itself."""

    def __init__(self):
        self.processed = 0
        self.skipped: Counter = Counter()
        self.skip_examples: list[dict] = []
        self.camera_issues: Counter = Counter()
        self.frames_without_cameras = 0
        self.latency_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = {}
        self.points = 0
        self.partial_reasons: list[str] = []

    def skip(self, index: int, stamp_ns: int, kind: str, detail: str) -> None:
        self.skipped[kind] += 1
        if len(self.skip_examples) < MAX_SKIP_EXAMPLES:
            self.skip_examples.append({"frame": index, "stamp_ns": stamp_ns, "kind": kind, "detail": detail})

    def done(self, item: ReplayItem, latency_ms: float, timings: dict[str, float]) -> None:
        self.processed += 1
        self.points += item.frame.num_points
        self.latency_ms.append(latency_ms)
        for stage, ms in timings.items():
            self.stage_ms.setdefault(stage, []).append(float(ms))
        for camera, kind in item.camera_issues:
            self.camera_issues[f"{camera}: {kind}"] += 1
        if not item.frame.cameras:
            self.frames_without_cameras += 1

    def points_dict(self) -> dict:
        return {"total": self.points, "per_frame_mean": self.points / self.processed if self.processed else None}

    def frames_dict(self, in_bag: int, read: int, every: int, max_frames: int | None) -> dict:
        return {
            "in_bag": in_bag, "read": read, "every": every, "max_frames": max_frames,
            "processed": self.processed, "skipped": int(sum(self.skipped.values())),
            "skipped_by_reason": dict(self.skipped), "skipped_examples": self.skip_examples,
            "without_cameras": self.frames_without_cameras, "camera_issues": dict(self.camera_issues),
        }


@dataclass
class FrameSample:
    """One frame kept for the figures."""

    index: int
    stamp_ns: int
    frame: Frame
    pred_labels: np.ndarray  # vocabulary indices
    pred_instances: np.ndarray
    gt_labels: np.ndarray
    gt_instances: np.ndarray


class SampleKeeper:
    """Keeps `k` frames spread over the expected run (plus the last one if the run ends early)."""

    def __init__(self, expected: int, k: int):
        self.targets = set(np.linspace(0, max(expected - 1, 0), k).round().astype(int).tolist()) if k else set()
        self.samples: list[FrameSample] = []
        self.last: FrameSample | None = None
        self.position = 0

    def offer(self, sample: FrameSample) -> None:
        if self.position in self.targets:
            self.samples.append(sample)
        self.last = sample
        self.position += 1

    def result(self) -> list[FrameSample]:
        if self.targets and self.last is not None and self.last not in self.samples \
                and len(self.samples) < len(self.targets):
            return self.samples + [self.last]
        return self.samples


class PredictionBag:
    """The run as a bag for RViz / Foxglove: predicted clouds, instance markers, the vocabulary, GT."""

    def __init__(self, path: str | Path, topics: BagTopics, node_name: str = "ov_panoptic"):
        from ov_panoptic_ros.eval.bag import BagWriter

        self.writer = BagWriter(path)
        self.cloud_topic = f"/{node_name}/panoptic_points"
        self.marker_topic = f"/{node_name}/instances"
        self.vocab_topic = f"/{node_name}/vocabulary"
        self.gt_topic = topics.ground_truth
        self._vocab_written = False

    def write(self, item: ReplayItem, result: PanopticResult, gt_raw: bytes | None) -> None:
        from ov_panoptic_ros.eval.bag import cloud_msg, string_msg
        from ov_panoptic_ros.ros.messages import pack_panoptic_cloud

        stamp, frame = item.stamp_ns, item.frame
        if not self._vocab_written:
            self.writer.add_topic(self.vocab_topic, "std_msgs/msg/String", latched=True)
            self.writer.write(self.vocab_topic, stamp, string_msg(result.vocabulary.to_json()))
            self._vocab_written = True
        packed = pack_panoptic_cloud(frame.points, frame.intensity, result.labels, result.instance_ids,
                                     result.scores, result.vocabulary.colors())
        self.writer.write(self.cloud_topic, stamp, cloud_msg(packed, stamp, frame.frame_id))
        self._write_markers(result, stamp, frame.frame_id)
        if gt_raw is not None:
            self.writer.add_topic(self.gt_topic, "sensor_msgs/msg/PointCloud2")
            self.writer.write_raw(self.gt_topic, stamp, gt_raw)

    def _write_markers(self, result: PanopticResult, stamp: int, frame_id: str) -> None:
        """Markers come from ros/markers.py (rclpy messages), serialized by rclpy into the bag."""
        from builtin_interfaces.msg import Time
        from rclpy.serialization import serialize_message
        from std_msgs.msg import Header

        from ov_panoptic_ros.ros.markers import instance_markers

        sec, nsec = divmod(stamp, NS)
        hdr = Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=frame_id)
        self.writer.add_topic(self.marker_topic, "visualization_msgs/msg/MarkerArray")
        self.writer.write_raw(self.marker_topic, stamp,
                              serialize_message(instance_markers(result.instances, result.vocabulary, hdr)))

    def close(self) -> Path:
        return self.writer.close()


# --------------------------------------------------------------------------------------------------
# The offline run
# --------------------------------------------------------------------------------------------------
def _resolve_config(config: str | Path | PipelineConfig) -> PipelineConfig:
    if isinstance(config, PipelineConfig):
        return config
    try:
        return load_config(config)
    except ConfigError as e:
        raise ReplayError(str(e)) from e


def _user_table(mapping) -> dict | None:
    if mapping is None or isinstance(mapping, dict):
        return mapping
    return load_mapping_file(mapping)


def _expected_frames(reader: BagReader, lidar_topic: str, every: int, max_frames: int | None) -> int:
    n = math.ceil(reader.message_counts.get(lidar_topic, 0) / max(1, every))
    return min(n, max_frames) if max_frames is not None else n


@dataclass
class OfflineRun:
    """Everything one replay produces before it becomes a report."""

    reader: BagReader
    layout: BagLayout
    config: PipelineConfig
    pipeline: object
    scorer: Scorer
    stats: RunStats = field(default_factory=RunStats)
    samples: SampleKeeper | None = None
    source: FrameSource | None = None
    out_bag: PredictionBag | None = None
    pipeline_init_s: float = 0.0
    loop_s: float = 0.0
    expected: int = 0


def replay_offline(bag: str | Path, config: str | Path | PipelineConfig = "tiny", out: str | Path = "runs/replay",
                   *, pipeline=None, mapping: str | Path | dict | None = None, max_frames: int | None = None,
                   every: int = 1, output_bag: str | Path | None = None, topics: BagTopics | None = None,
                   calibration_file: str | Path | None = None, min_points: int = NUSCENES_MIN_POINTS,
                   figure_frames: int = 3, progress: bool = True,
                   on_frame: Callable[[int, PanopticResult], None] | None = None) -> dict:
    """Replay `bag` through the pipeline, score it and write the report into `out`; returns metrics.json.

    `pipeline` (optional) is a ready PanopticPipeline, or anything with `.vocabulary` that maps a Frame
    to a PanopticResult. `on_frame(index, result)` runs after each scored frame (a hook for progress
    UIs and tests). Bag and config problems raise BagError / ReplayError before anything runs.
    """
    if every < 1:
        raise ReplayError(f"--every must be at least 1, got {every}")
    if max_frames is not None and max_frames < 1:
        raise ReplayError(f"--max-frames must be at least 1, got {max_frames}")
    cfg = _resolve_config(config)
    table = _user_table(mapping)
    reader = open_bag(bag, topics)
    try:
        run = _prepare(reader, cfg, pipeline, table, calibration_file, min_points)
        run.source = FrameSource(reader, run.layout, every, max_frames)
        run.expected = _expected_frames(reader, run.layout.lidar_topic, every, max_frames)
        run.samples = SampleKeeper(run.expected, figure_frames)
        if reader.partial_reason:
            run.stats.partial_reasons.append(reader.partial_reason)
        run.out_bag = PredictionBag(output_bag, reader.topics) if output_bag else None
        _loop(run, progress, on_frame)
        return _finish(run, Path(out), every, max_frames, output_bag)
    finally:
        reader.close()


def _prepare(reader: BagReader, cfg: PipelineConfig, pipeline, table, calibration_file, min_points) -> OfflineRun:
    layout = reader.layout(need_ground_truth=True, calibration_file=calibration_file)
    t0 = time.perf_counter()
    if pipeline is None:
        from ov_panoptic_ros.core.pipeline import PanopticPipeline

        pipeline = PanopticPipeline(cfg)
    init_s = time.perf_counter() - t0
    scorer = Scorer(layout.classes, pipeline.vocabulary, table, min_points)
    return OfflineRun(reader, layout, cfg, pipeline, scorer, pipeline_init_s=init_s)


def _loop(run: OfflineRun, progress: bool, on_frame) -> None:
    """Run every frame; Ctrl-C or a damaged bag end the loop early and mark the run partial."""
    from tqdm import tqdm

    stats = run.stats
    t0 = time.perf_counter()
    bar = tqdm(total=run.expected or None, unit="frame", desc="replay", disable=not progress, dynamic_ncols=True)
    try:
        for item in run.source:
            if item.skip is not None:
                stats.skip(item.index, item.stamp_ns, *item.skip)
            else:
                _process(run, item, on_frame)
            bar.update(1)
            bar.set_postfix(skipped=sum(stats.skipped.values()), refresh=False)
    except KeyboardInterrupt:
        stats.partial_reasons.append(f"interrupted (Ctrl-C) after {stats.processed} scored frames")
    except BagReadError as e:
        stats.partial_reasons.append(str(e))
    finally:
        bar.close()
        run.loop_s = time.perf_counter() - t0
        if run.out_bag is not None:
            run.out_bag.close()


def _process(run: OfflineRun, item: ReplayItem, on_frame) -> None:
    start = time.perf_counter()
    try:
        result = run.pipeline(item.frame)
    except (ValueError, RuntimeError) as e:  # one bad frame must not end a long evaluation
        run.stats.skip(item.index, item.stamp_ns, "pipeline_error", f"{type(e).__name__}: {e}")
        return
    latency_ms = (time.perf_counter() - start) * 1e3
    run.scorer.add(result.labels, result.instance_ids, item.gt_labels, item.gt_instances)
    run.stats.done(item, latency_ms, result.timings_ms)
    run.samples.offer(FrameSample(item.index, item.stamp_ns, item.frame, result.labels, result.instance_ids,
                                  item.gt_labels, item.gt_instances))
    if run.out_bag is not None:
        run.out_bag.write(item, result, item.gt_raw)
    if on_frame is not None:
        on_frame(item.index, result)


def _finish(run: OfflineRun, out: Path, every: int, max_frames: int | None, output_bag) -> dict:
    from ov_panoptic_ros.eval.report import write_report

    reader, stats = run.reader, run.stats
    bag_read_s = reader.read_s + reader.decode_s
    doc = {
        "mode": "offline",
        **scored_run_summary(reader, stats, run.scorer, output_bag),
        "config": run.config.name,
        "pipeline_mode": getattr(run.pipeline, "mode", type(run.pipeline).__name__),
        "vocabulary": vocabulary_summary(run.pipeline.vocabulary),
        "frames": stats.frames_dict(reader.message_counts.get(run.layout.lidar_topic, 0), run.source.clouds_read,
                                    every, max_frames),
        "latency_ms": percentiles(stats.latency_ms),
        "stage_latency_ms": {k: percentiles(v) for k, v in stats.stage_ms.items()},
        "timing": {
            "wall_s": run.loop_s, "pipeline_init_s": run.pipeline_init_s, "bag_read_s": bag_read_s,
            "bag_storage_read_s": reader.read_s, "bag_deserialize_s": reader.decode_s,
            "bag_read_share": bag_read_s / run.loop_s if run.loop_s > 0 else None,
            "bag_bytes_read": reader.bytes_read,
            "frames_per_s": stats.processed / run.loop_s if run.loop_s > 0 else None,
        },
    }
    return write_report(out, doc, run.scorer, run.samples.result())


def scored_run_summary(reader: BagReader, stats, scorer, output_bag) -> dict:
    """The report keys offline and live replay share, built in one place so both reports keep one shape."""
    return {
        "partial": bool(stats.partial_reasons),
        "partial_reasons": stats.partial_reasons,
        "bag": bag_summary(reader),
        "gt_classes": class_summary(scorer.classes),
        "mapping": scorer.mapping_report(),
        "metrics": scorer.metrics(),
        "points": stats.points_dict(),
        "output_bag": str(output_bag) if output_bag else None,
    }


def bag_summary(reader: BagReader) -> dict:
    return {
        "path": str(reader.path), "storage": reader.storage, "size_bytes": reader.size_bytes,
        "duration_s": max(0, reader.end_ns - reader.start_ns) / NS if reader.message_counts else 0.0,
        "message_counts": reader.message_counts,
    }


def vocabulary_summary(vocabulary: Vocabulary) -> dict:
    return {"classes": list(vocabulary.classes), "names": vocabulary.names,
            "stuff": [n for n, s in zip(vocabulary.names, vocabulary.is_stuff) if s], "version": vocabulary.version}


def class_summary(classes: ClassInfo) -> list[dict]:
    ignored = set(classes.ignore)
    return [{"name": n, "thing": t, "novel": nv, "ignore": i in ignored}
            for i, (n, t, nv) in enumerate(zip(classes.names, classes.is_thing, classes.is_novel))]
