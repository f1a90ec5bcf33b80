"""A bag in the evaluation layout as a FrameSource: frames paired exactly as the node pairs them.

Images are matched to each cloud by the node's own synchronizer (bridge/sync.py), driven by bag time
instead of wall time, and the frame is built by the node's own `assemble_frame`, so offline numbers
describe what the node would have seen. A cloud then waits (in bag time) for its ground truth, matched
by header stamp.

Cameras are placed as the node places them (bridge/extrinsics.py: the calibration file, TF, or auto), TF read
from the bag: every /tf_static message before the first frame (latched: a recorder may hold them at the start
only), /tf in bag order, and a frame is built only once the /tf recorded a little after it is in the buffer.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ov_panoptic_ros.bridge.assemble import CameraStream, assemble_frame
from ov_panoptic_ros.bridge.camera_info import CameraModels
from ov_panoptic_ros.bridge.clouds import read_cloud, read_cloud_fields
from ov_panoptic_ros.bridge.extrinsics import Extrinsics
from ov_panoptic_ros.bridge.problems import InputError, Problem, ProblemLog
from ov_panoptic_ros.bridge.stamps import NS, stamp_to_ns
from ov_panoptic_ros.bridge.sync import (
    DEFAULT_CAMERA_TIMEOUT_S,
    DEFAULT_MAX_OFFSET_S,
    CameraSynchronizer,
    FrameAssembler,
)
from ov_panoptic_ros.bridge.transforms import TransformBuffer, TransformError
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.bag.errors import BagError, BagReadError
from ov_panoptic_ros.data.bag.layout import BagLayout, BagTopics
from ov_panoptic_ros.data.bag.reader import BagMessage, BagReader, open_bag
from ov_panoptic_ros.data.source import GroundTruth, ground_truth_problem

GT_WAIT_S = 1.0  # a frame whose ground truth has not appeared this long (bag time) after it is skipped
# a frame is built once the /tf recorded this long (bag time) after its release is in the buffer: a localization
# publishes the pose for a stamp a little after that stamp, and TF lookups never extrapolate (tf_late)
TF_WAIT_S = 0.2
MAX_PENDING_CLOUDS = 16


@dataclass
class _Waiting:
    index: int
    stamp_ns: int
    cloud: BagMessage
    images: dict
    ready_ns: int  # bag time at which the synchronizer released it


class BagFrameSource:
    """Bag messages -> (Frame, GroundTruth | None) in cloud order; see the module docstring.

    `every` / `max_frames` select clouds by their position in the bag. A frame that cannot be built is
    left out and logged in `problems`; a damaged bag ends the iteration with BagReadError after the
    frames read before the damage. `extrinsics` (auto, tf, file) and `fixed_frame` are the node's
    extrinsics_source and tf.fixed_frame.
    """

    def __init__(self, reader: BagReader, layout: BagLayout, every: int = 1, max_frames: int | None = None,
                 max_offset_s: float = DEFAULT_MAX_OFFSET_S, camera_timeout_s: float = DEFAULT_CAMERA_TIMEOUT_S,
                 extrinsics: str = "auto", fixed_frame: str = ""):
        self.reader, self.layout = reader, layout
        self.classes = layout.classes
        self.every, self.max_frames = max(1, int(every)), max_frames
        self.need_ground_truth = layout.ground_truth_topic is not None
        self.extrinsics = self._extrinsics(extrinsics, fixed_frame)
        offsets = {c.name: self.extrinsics.time_offset_s(c.name) for c in layout.cameras}
        self.assembler = FrameAssembler(CameraSynchronizer(offsets, max_offset_s), camera_timeout_s,
                                        max_pending=MAX_PENDING_CLOUDS)
        self.streams = [CameraStream(c.name, c.compressed) for c in layout.cameras]
        self.models = CameraModels(rectified={c.name for c in layout.cameras if c.rectified})
        self.tf_topic, self.tf_static_topic = self._tf_topics()
        self.image_topics = {c.image_topic: c.name for c in layout.cameras}
        self.info_topics = {c.info_topic: c.name for c in layout.cameras}
        self.ground_truth: dict[int, BagMessage] = {}
        self.waiting: deque[_Waiting] = deque()
        self.problems = ProblemLog()
        self.position = -1
        self.clouds_read = 0
        self.selected = 0

    def _extrinsics(self, source: str, fixed_frame: str) -> Extrinsics:
        """The node's policy on a TF buffer of this bag's own; a bag without a calibration (cameras found by topic
        pattern) has only TF, so auto is tf there."""
        calibration = self.layout.calibration
        try:
            return Extrinsics("tf" if calibration is None and source == "auto" else source, calibration,
                              TransformBuffer(), fixed_frame)
        except ValueError as e:
            raise BagError(f"--extrinsics: {e}") from e

    def _tf_topics(self) -> tuple[str | None, str | None]:
        """(/tf, /tf_static) as far as the bag has them and the extrinsics may use TF."""
        if self.extrinsics.source == "file":
            return None, None
        types = self.reader.topic_types
        return tuple(t if t in types else None for t in (self.reader.topics.tf, self.reader.topics.tf_static))

    @classmethod
    def open(cls, path: str | Path, topics: BagTopics | None = None, calibration_file: str | Path | None = None,
             need_ground_truth: bool | None = True, extrinsics: str = "auto", rectified: Iterable[str] = (),
             **options) -> BagFrameSource:
        """Open the bag and resolve its layout (BagError naming what is missing); close() closes the bag.

        `need_ground_truth` None: read ground truth when the bag has its topic (a bag recorded on a vehicle
        has none); `self.need_ground_truth` then says which it was. Unless `extrinsics` is file, a bag
        without a calibration is opened with the cameras its image topic pattern finds, placed by its TF;
        `rectified` names cameras with rectified images beyond those whose topic says so (BagReader.layout)."""
        reader = open_bag(path, topics)
        try:
            if need_ground_truth is None:
                need_ground_truth = reader.topics.ground_truth in reader.topic_types
            layout = reader.layout(need_ground_truth=need_ground_truth, calibration_file=calibration_file,
                                   tf_cameras=extrinsics != "file", rectified=rectified)
            return cls(reader, layout, extrinsics=extrinsics, **options)
        except BaseException:
            reader.close()
            raise

    def close(self) -> None:
        self.reader.close()

    def __len__(self) -> int:
        """Frames this source selects (clouds in the bag, after `every` and `max_frames`)."""
        n = math.ceil(self.reader.message_counts.get(self.layout.lidar_topic, 0) / self.every)
        return min(n, self.max_frames) if self.max_frames is not None else n

    def topics(self) -> list[str]:
        """The topics of the frame loop (/tf_static is read before it)."""
        topics = [self.layout.lidar_topic, *self.image_topics, *self.info_topics]
        topics += [self.layout.ground_truth_topic] if self.need_ground_truth else []
        return topics + ([self.tf_topic] if self.tf_topic else [])

    def __iter__(self) -> Iterator[tuple[Frame, GroundTruth | None]]:
        damaged = None
        self._read_static_tf()
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

    def _read_static_tf(self) -> None:
        """Every /tf_static message of the bag, before the first frame: they are latched (they hold for all time)
        and a recorder may have caught them at the start only, or late, after the first clouds."""
        if self.tf_static_topic is None:
            return
        try:
            for msg in self.reader.messages([self.tf_static_topic]):
                self._add_tf(msg, static=True)
        except BagReadError:
            pass  # the transforms before the damage are in; the frame loop meets the damage and reports it

    def _add_tf(self, msg: BagMessage, static: bool) -> None:
        """A TFMessage into the buffer. A transform it cannot use is counted under its topic, the way a camera's
        problem is counted under the camera: it costs the cameras it would have placed, not whole frames."""
        try:
            errors = self.extrinsics.tf.add_message(msg.decode(), static)
        except BagError as e:
            errors = [TransformError(str(e), kind="tf_bad")]
        for e in errors:
            self.problems.add(Problem(e.kind, str(e), camera=msg.topic))

    def _skip(self, index: int, stamp_ns: int, kind: str, detail: str) -> None:
        self.problems.add(Problem(kind, detail, frame=index, stamp_ns=stamp_ns))

    def _done(self) -> bool:
        return (self.max_frames is not None and self.selected >= self.max_frames
                and not self.waiting and self.assembler.num_pending == 0)

    def _dispatch(self, msg: BagMessage) -> None:
        if msg.topic == self.layout.lidar_topic:
            self._add_cloud(msg)
        elif msg.topic in self.image_topics:
            try:
                self.assembler.add_image(self.image_topics[msg.topic], stamp_to_ns(msg.decode().header.stamp), msg)
            except BagError:
                pass  # an undecodable image: its camera misses the frames it would have served
        elif msg.topic in self.info_topics:
            try:
                self.models.update(self.info_topics[msg.topic], msg.decode())
            except BagError:
                pass  # a bad CameraInfo leaves the previous one in use; frames without one miss that camera
        elif msg.topic == self.layout.ground_truth_topic:
            try:
                self.ground_truth[stamp_to_ns(msg.decode().header.stamp)] = msg
            except BagError:
                pass  # the frame it belonged to ends up skipped as "no ground truth"
        elif msg.topic == self.tf_topic:
            self._add_tf(msg, static=False)

    def _add_cloud(self, msg: BagMessage) -> None:
        index = self.clouds_read
        self.clouds_read += 1
        if index % self.every or (self.max_frames is not None and self.selected >= self.max_frames):
            return
        self.selected += 1
        try:
            stamp = stamp_to_ns(msg.decode().header.stamp)
        except BagError as e:
            self._skip(index, msg.log_time_ns, "cloud_undecodable", str(e))
            return
        dropped = self.assembler.dropped_pending
        self.assembler.add_cloud(stamp, (index, msg), msg.log_time_ns / NS)
        if self.assembler.dropped_pending > dropped:
            self._skip(index, stamp, "dropped_waiting_for_cameras",
                       "more clouds waiting for cameras than the synchronizer holds")

    def _drain(self, now_ns: int, final: bool) -> Iterator[tuple[Frame, GroundTruth | None]]:
        for synced in self.assembler.poll(math.inf if final else now_ns / NS):
            index, cloud = synced.cloud
            self.waiting.append(_Waiting(index, synced.stamp_ns, cloud, synced.images, now_ns))
        while self.waiting:
            w = self.waiting[0]
            if not (final or self._ready(w, now_ns)):
                return
            self.waiting.popleft()
            built = self._build(w)
            for s in [s for s in self.ground_truth if s <= w.stamp_ns]:
                del self.ground_truth[s]
            if built is not None:
                self.position = w.index
                yield built

    def _ready(self, w: _Waiting, now_ns: int) -> bool:
        """Its ground truth is in (or will not come: GT_WAIT_S passed), and so is the /tf recorded up to TF_WAIT_S
        after its release, which brackets its stamps unless TF is really late."""
        waited = now_ns - w.ready_ns
        has_gt = not self.need_ground_truth or w.stamp_ns in self.ground_truth or waited > GT_WAIT_S * NS
        return has_gt and (self.tf_topic is None or waited >= TF_WAIT_S * NS)

    def _build(self, w: _Waiting) -> tuple[Frame, GroundTruth | None] | None:
        try:
            decoded = w.cloud.decode()
            cloud = read_cloud(decoded)
        except (InputError, BagError) as e:
            self._skip(w.index, w.stamp_ns, getattr(e, "kind", "cloud_undecodable"), f"cloud: {e}")
            return None
        truth = None
        if self.need_ground_truth:
            truth = self._ground_truth(w, cloud)
            if truth is None:
                return None
        matched = {}
        for camera, image in w.images.items():
            try:
                matched[camera] = None if image is None else image.decode()
            except BagError as e:
                self.problems.add(Problem("image_undecodable", str(e), camera, w.index, w.stamp_ns))
            if image is None:
                self.problems.add(Problem("sync_miss", "no image within max_offset_s", camera, w.index, w.stamp_ns))
        frame, problems = assemble_frame(cloud, w.stamp_ns, str(decoded.header.frame_id), matched, self.streams,
                                         self.models, self.extrinsics)
        for p in problems:
            p.frame = w.index
            self.problems.add(p)
        return frame, truth

    def _ground_truth(self, w: _Waiting, cloud) -> GroundTruth | None:
        gt_msg = self.ground_truth.get(w.stamp_ns)
        if gt_msg is None:
            self._skip(w.index, w.stamp_ns, "ground_truth_missing", f"no ground truth stamped {w.stamp_ns}")
            return None
        try:
            gt = read_cloud_fields(gt_msg.decode(), ["label", "instance_id"])
        except (InputError, BagError) as e:
            self._skip(w.index, w.stamp_ns, "ground_truth_bad_layout", f"ground truth: {e}")
            return None
        labels, instances = gt["label"], gt["instance_id"]
        problem = ground_truth_problem(labels, cloud.num_points, self.classes.n_classes)
        if problem is not None:
            self._skip(w.index, w.stamp_ns, *problem)
            return None
        if not cloud.all_finite:
            labels, instances = labels[cloud.finite], instances[cloud.finite]
        return GroundTruth(labels, instances)
