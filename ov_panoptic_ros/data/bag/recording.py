"""Recording frames (with their ground truth) as a drive in the evaluation bag layout.

Any FrameSource can be recorded: the synthetic street, the synthetic world, a converted dataset. The bag
then replays offline, plays into the node, and opens in Foxglove, like a drive recorded on a vehicle.
A source that knows more than a Frame says (a dataset's real camera stamps, its ego poses and rig, its image
files) hands it over as FrameExtras and static transforms, and the bag holds it as a vehicle's would:
images at their own stamps, /tf and /tf_static.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ov_panoptic_ros.bridge import builders
from ov_panoptic_ros.bridge.packing import pack_lidar_cloud, pack_panoptic_cloud
from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import Frame, class_color
from ov_panoptic_ros.data.bag.errors import BagError
from ov_panoptic_ros.data.bag.layout import CALIBRATION_ATTACHMENT, BagTopics, gt_classes_to_json
from ov_panoptic_ros.data.bag.mcap_file import add_mcap_attachment
from ov_panoptic_ros.data.bag.typestore import rosbags_kit
from ov_panoptic_ros.data.bag.writer import BagWriter, storage_for
from ov_panoptic_ros.data.source import GroundTruth

LOG_LAG_NS = 5_000_000  # every message is logged 5 ms after its stamp, as a recorder would receive it


@dataclass
class RecordedDrive:
    path: Path
    storage: str
    classes: ClassInfo | None
    topics: BagTopics
    stamps_ns: list[int] = field(default_factory=list)  # LiDAR (and ground-truth) header stamps, one per frame
    cameras: list[str] = field(default_factory=list)
    num_points: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class StampedTransform:
    """`child`'s pose in `parent` at `stamp_ns`: the 4x4 mapping child points into the parent (a TransformStamped)."""

    parent: str
    child: str
    matrix: np.ndarray
    stamp_ns: int = 0


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes, as the dataset stores it: `format` jpeg or png."""

    format: str
    data: bytes


@dataclass
class FrameExtras:
    """What a vehicle records beside a frame that a Frame does not carry, for sources that know it.

    `camera_stamps_ns`: each image's own stamp (default: the cloud's plus record_drive's trigger skew).
    `transforms`: /tf samples for this frame (the ego pose at each sensor's stamp), recorded at their stamps.
    `encoded_images`: a camera's image as its file's bytes, written as a CompressedImage instead of the decoded
    pixels: small, and decoded to the very pixels the source read. Give it for every frame of a camera or for
    none (a camera has one image topic)."""

    camera_stamps_ns: dict[str, int] = field(default_factory=dict)
    transforms: list[StampedTransform] = field(default_factory=list)
    encoded_images: dict[str, EncodedImage] = field(default_factory=dict)


def calibration_of(frame: Frame) -> Calibration:
    """The calibration a frame's cameras carry (LiDAR -> optical extrinsics, clock offsets)."""
    return Calibration(frame.frame_id, {c.name: CameraExtrinsics(c.T_cam_lidar.copy(), c.time_offset_s)
                                        for c in frame.cameras})


def record_drive(path: str | Path, frames: Iterable[tuple], classes: ClassInfo | None,
                 storage: str | None = None, topics: BagTopics | None = None, compressed: bool = False,
                 camera_delay_s: float = 0.004, attach_calibration: bool = True,
                 calibration: Calibration | None = None,
                 static_transforms: Sequence[StampedTransform] = ()) -> RecordedDrive:
    """Write `frames`, each `(Frame, GroundTruth | None)` or `(Frame, GroundTruth | None, FrameExtras)`, to a new bag.

    Images are stamped `camera_delay_s` x (camera index + 1) after their cloud (a realistic trigger skew the
    synchronizer must absorb) unless the extras give their stamps. Ground truth is written where it is given.
    The calibration (topic, and MCAP attachment with `attach_calibration`) is `calibration`, else the first frame's
    cameras' extrinsics. `static_transforms` go on /tf_static, latched, stamped with the latched topics."""
    topics = topics or BagTopics()
    drive = RecordedDrive(Path(path), storage_for(Path(path), storage), classes, topics)
    calibration_yaml = None
    with BagWriter(path, drive.storage) as writer:
        for frame, truth, *rest in frames:
            extras = rest[0] if rest else FrameExtras()
            if calibration_yaml is None:
                written = calibration or calibration_of(frame)
                calibration_yaml = written.to_yaml()
                _write_latched(writer, _earliest_stamp(frame, extras), calibration_yaml, classes, topics,
                               static_transforms)
                drive.cameras = list(written.cameras)  # the bag's cameras are those its calibration names
            _write_frame(writer, frame, truth, classes, topics, compressed, camera_delay_s, extras)
            drive.stamps_ns.append(frame.stamp_ns)
            drive.num_points.append(frame.num_points)
        mcap = writer.mcap_file()
    if calibration_yaml is None:
        raise BagError(f"no frame to record into {path}")
    if attach_calibration and mcap is not None:
        add_mcap_attachment(mcap, CALIBRATION_ATTACHMENT, calibration_yaml.encode(), "application/yaml")
    return drive


def _earliest_stamp(frame: Frame, extras: FrameExtras) -> int:
    """The first frame's earliest stamp (a camera may fire before its cloud): latched topics go before it."""
    return min([frame.stamp_ns, *extras.camera_stamps_ns.values(), *(t.stamp_ns for t in extras.transforms)])


def _write_latched(writer: BagWriter, first_stamp_ns: int, calibration_yaml: str, classes: ClassInfo | None,
                   topics: BagTopics, static_transforms: Sequence[StampedTransform]) -> None:
    kit = rosbags_kit()
    stamp = max(first_stamp_ns - 1_000_000, 0)  # before the first frame, as a latched publisher is
    writer.add_topic(topics.calibration, "std_msgs/msg/String", latched=True)
    writer.write(topics.calibration, stamp, builders.string(kit, calibration_yaml))
    if classes is not None:
        writer.add_topic(topics.gt_classes, "std_msgs/msg/String", latched=True)
        writer.write(topics.gt_classes, stamp, builders.string(kit, gt_classes_to_json(classes)))
    if static_transforms:  # one message, as one static broadcaster (robot_state_publisher) sends the rig
        writer.add_topic(topics.tf_static, "tf2_msgs/msg/TFMessage", latched=True)
        writer.write(topics.tf_static, stamp, builders.tf_message(
            kit, [(t.parent, t.child, t.matrix, stamp) for t in static_transforms]))


def _write_frame(writer: BagWriter, frame: Frame, truth: GroundTruth | None, classes: ClassInfo | None,
                 topics: BagTopics, compressed: bool, camera_delay_s: float, extras: FrameExtras) -> None:
    kit, stamp = rosbags_kit(), frame.stamp_ns
    out = [(stamp, topics.lidar, builders.cloud(kit, pack_lidar_cloud(frame.points, frame.intensity), stamp,
                                                 frame.frame_id))]
    if truth is not None and classes is not None:
        palette = np.array([class_color(n) for n in classes.names], dtype=np.uint8)
        gt = pack_panoptic_cloud(frame.points, None, truth.labels, truth.instance_ids,
                                 np.ones(frame.num_points, np.float32), palette)
        out.append((stamp, topics.ground_truth, builders.cloud(kit, gt, stamp, frame.frame_id)))
    for k, (cam, rgb) in enumerate(zip(frame.cameras, frame.images)):
        cam_stamp = extras.camera_stamps_ns.get(cam.name, stamp + int(camera_delay_s * 1e9) * (k + 1))
        encoded = extras.encoded_images.get(cam.name)
        if encoded is not None:
            image = builders.encoded_image(kit, encoded.data, encoded.format, cam_stamp, cam.name)
        elif compressed:
            image = builders.compressed_image(kit, rgb, cam_stamp, cam.name)
        else:
            image = builders.image(kit, rgb, cam_stamp, cam.name)
        out.append((cam_stamp, topics.info_topic(cam.name), builders.camera_info(kit, cam, cam_stamp, cam.name)))
        out.append((cam_stamp, topics.image_topic(cam.name, compressed or encoded is not None), image))
    by_stamp: dict[int, list[StampedTransform]] = {}
    for t in extras.transforms:  # a localization publishes one message per pose
        by_stamp.setdefault(t.stamp_ns, []).append(t)
    for tf_stamp, group in by_stamp.items():
        out.append((tf_stamp, topics.tf, builders.tf_message(kit, [(t.parent, t.child, t.matrix, tf_stamp)
                                                                    for t in group])))
    for log_time, topic, msg in sorted(out, key=lambda x: x[0]):  # a recorder writes in arrival order
        writer.write(topic, log_time + LOG_LAG_NS, msg)
