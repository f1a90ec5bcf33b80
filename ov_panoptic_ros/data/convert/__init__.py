"""Datasets -> bags in the evaluation layout (docs/bag_layout.md, "Converted datasets"), written as a vehicle
records a drive: the sensors at their own stamps, the rig on /tf_static, the ego poses on /tf, and the
dataset's ground truth. `replay` then evaluates the real drive, and `play` feeds it to the node."""
from ov_panoptic_ros.data.convert.nuscenes import convert_nuscenes
from ov_panoptic_ros.data.convert.semantickitti import convert_semantickitti
from ov_panoptic_ros.data.convert.staging import Conversion

__all__ = ["Conversion", "convert_nuscenes", "convert_semantickitti"]
