"""Recording frames (with their ground truth) as a drive in the evaluation bag layout.

Any FrameSource can be recorded: the synthetic street, the synthetic world, a converted dataset. The bag
then replays offline, plays into the node, and opens in Foxglove, like a drive recorded on a vehicle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

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


def calibration_of(frame: Frame) -> Calibration:
    """The calibration a frame's cameras carry (LiDAR -> optical extrinsics, clock offsets)."""
    return Calibration(frame.frame_id, {c.name: CameraExtrinsics(c.T_cam_lidar.copy(), c.time_offset_s)
                                        for c in frame.cameras})


def record_drive(path: str | Path, frames: Iterable[tuple[Frame, GroundTruth | None]], classes: ClassInfo | None,
                 storage: str | None = None, topics: BagTopics | None = None, compressed: bool = False,
                 camera_delay_s: float = 0.004, attach_calibration: bool = True) -> RecordedDrive:
    """Write `frames` to a new bag. Images are stamped `camera_delay_s` x (camera index + 1) after their cloud
    (a realistic trigger skew the synchronizer must absorb). Ground truth is written where it is given."""
    topics = topics or BagTopics()
    drive = RecordedDrive(Path(path), storage_for(Path(path), storage), classes, topics)
    calibration_yaml = None
    with BagWriter(path, drive.storage) as writer:
        for frame, truth in frames:
            if calibration_yaml is None:
                calibration_yaml = calibration_of(frame).to_yaml()
                _write_latched(writer, frame.stamp_ns, calibration_yaml, classes, topics)
                drive.cameras = [c.name for c in frame.cameras]
            _write_frame(writer, frame, truth, classes, topics, compressed, camera_delay_s)
            drive.stamps_ns.append(frame.stamp_ns)
            drive.num_points.append(frame.num_points)
        mcap = writer.mcap_file()
    if calibration_yaml is None:
        raise BagError(f"no frame to record into {path}")
    if attach_calibration and mcap is not None:
        add_mcap_attachment(mcap, CALIBRATION_ATTACHMENT, calibration_yaml.encode(), "application/yaml")
    return drive


def _write_latched(writer: BagWriter, first_stamp_ns: int, calibration_yaml: str, classes: ClassInfo | None,
                   topics: BagTopics) -> None:
    kit, stamp = rosbags_kit(), first_stamp_ns - 1_000_000  # before the first frame, as a latched publisher is
    writer.add_topic(topics.calibration, "std_msgs/msg/String", latched=True)
    writer.write(topics.calibration, stamp, builders.string(kit, calibration_yaml))
    if classes is not None:
        writer.add_topic(topics.gt_classes, "std_msgs/msg/String", latched=True)
        writer.write(topics.gt_classes, stamp, builders.string(kit, gt_classes_to_json(classes)))


def _write_frame(writer: BagWriter, frame: Frame, truth: GroundTruth | None, classes: ClassInfo | None,
                 topics: BagTopics, compressed: bool, camera_delay_s: float) -> None:
    kit, stamp = rosbags_kit(), frame.stamp_ns
    out = [(stamp, topics.lidar, builders.cloud(kit, pack_lidar_cloud(frame.points, frame.intensity), stamp,
                                                 frame.frame_id))]
    if truth is not None and classes is not None:
        palette = np.array([class_color(n) for n in classes.names], dtype=np.uint8)
        gt = pack_panoptic_cloud(frame.points, None, truth.labels, truth.instance_ids,
                                 np.ones(frame.num_points, np.float32), palette)
        out.append((stamp, topics.ground_truth, builders.cloud(kit, gt, stamp, frame.frame_id)))
    for k, (cam, rgb) in enumerate(zip(frame.cameras, frame.images)):
        cam_stamp = stamp + int(camera_delay_s * 1e9) * (k + 1)
        image = (builders.compressed_image(kit, rgb, cam_stamp, cam.name) if compressed
                 else builders.image(kit, rgb, cam_stamp, cam.name))
        out.append((cam_stamp, topics.info_topic(cam.name), builders.camera_info(kit, cam, cam_stamp, cam.name)))
        out.append((cam_stamp, topics.image_topic(cam.name, compressed), image))
    for log_time, topic, msg in sorted(out, key=lambda x: x[0]):  # a recorder writes in arrival order
        writer.write(topic, log_time + LOG_LAG_NS, msg)
