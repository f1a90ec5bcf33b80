"""The run as a bag for RViz / Foxglove: predicted clouds, instance markers, the vocabulary, ground truth."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ov_panoptic_ros.bridge import builders
from ov_panoptic_ros.bridge.packing import pack_panoptic_cloud
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import Frame, PanopticResult, class_color
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.data.bag.typestore import rosbags_kit
from ov_panoptic_ros.data.bag.writer import BagWriter
from ov_panoptic_ros.data.source import GroundTruth


class PredictionBag:
    """Writes, per frame, what the node would publish (cloud, markers) plus the frame's ground truth."""

    def __init__(self, path: str | Path, topics: BagTopics, classes: ClassInfo | None, node_name: str = "ov_panoptic"):
        self.writer = BagWriter(path)
        self.cloud_topic = f"/{node_name}/panoptic_points"
        self.marker_topic = f"/{node_name}/instances"
        self.vocab_topic = f"/{node_name}/vocabulary"
        self.gt_topic = topics.ground_truth
        self.gt_palette = None if classes is None else np.array([class_color(n) for n in classes.names], np.uint8)
        self._vocab_written = False

    def write(self, frame: Frame, result: PanopticResult, truth: GroundTruth | None) -> None:
        from ov_panoptic_ros.ros.markers import serialized_instance_markers

        kit, stamp = rosbags_kit(), frame.stamp_ns
        if not self._vocab_written:
            self.writer.add_topic(self.vocab_topic, "std_msgs/msg/String", latched=True)
            self.writer.write(self.vocab_topic, stamp, builders.string(kit, result.vocabulary.to_json()))
            self._vocab_written = True
        packed = pack_panoptic_cloud(frame.points, frame.intensity, result.labels, result.instance_ids,
                                     result.scores, result.vocabulary.colors())
        self.writer.write(self.cloud_topic, stamp, builders.cloud(kit, packed, stamp, frame.frame_id))
        self.writer.add_topic(self.marker_topic, "visualization_msgs/msg/MarkerArray")
        self.writer.write_raw(self.marker_topic, stamp, serialized_instance_markers(
            result.instances, result.vocabulary, stamp, frame.frame_id))
        if truth is not None and self.gt_palette is not None:
            gt = pack_panoptic_cloud(frame.points, None, truth.labels, truth.instance_ids,
                                     np.ones(frame.num_points, np.float32), self.gt_palette)
            self.writer.write(self.gt_topic, stamp, builders.cloud(kit, gt, stamp, frame.frame_id))

    def close(self) -> Path:
        return self.writer.close()
