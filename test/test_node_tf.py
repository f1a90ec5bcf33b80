"""Extrinsics from TF over real DDS: /tf_static and /tf as a vehicle publishes them, no calibration file."""
import math

import numpy as np
from node_frames import Frames
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from test_node import output_arrays
from test_node_sync import labeled_fraction
from test_transforms import tf
from tf2_msgs.msg import TFMessage

from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.testing.probe import wait_until
from ov_panoptic_ros.testing.scene_msgs import scene_messages, tf_message

TF_ONLY = {"extrinsics_source": "tf", "calibration_file": "", "cameras": ["cam_front", "cam_back"]}


class Broadcaster(Node):
    """What robot_state_publisher and a localization node put on /tf_static and /tf."""

    def __init__(self):
        super().__init__("tf_broadcaster_test")
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.static_pub = self.create_publisher(TFMessage, "/tf_static", latched)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100,
                                                                         reliability=ReliabilityPolicy.RELIABLE))

    def rig(self, scene, cameras=("cam_front", "cam_back"), parent="lidar_top"):
        """Each camera's optical frame under `parent`, from the scene's own calibration."""
        # the camera's pose in the LiDAR frame: the inverse of its T_cam_lidar
        self.static_pub.publish(tf_message([(parent, f"{name}_optical",
                                             np.linalg.inv(scene.calibration.cameras[name].T_cam_lidar), 0)
                                            for name in cameras]))


def _wait_for_tf(node, frame):
    assert wait_until(lambda: node.extrinsics.tf.has_frame(frame), 10.0), f"/tf_static never brought {frame}"


def test_extrinsics_from_tf_static_label_as_the_calibration_file_does(start_node, spin, scenes, tiny_pipeline):
    scene = scenes[0]
    broadcaster = spin.add(Broadcaster())
    node, probe = start_node(TF_ONLY)
    broadcaster.rig(scene)
    _wait_for_tf(node, "cam_back_optical")
    arr = Frames(probe, scene).send()  # at the scene's own stamp
    assert labeled_fraction(arr, behind=False) > 0.05 and labeled_fraction(arr, behind=True) > 0.05
    expected = tiny_pipeline(scene.frame).labels  # the calibration's extrinsics, straight into the pipeline
    assert (arr["label"] == expected).mean() > 0.99
    assert node.stats.get("tf_missing") == 0


def test_a_camera_without_a_transform_is_skipped_counted_and_named(start_node, spin, scenes, capfd):
    scene = scenes[1]
    broadcaster = spin.add(Broadcaster())
    node, probe = start_node(TF_ONLY)
    broadcaster.rig(scene, cameras=("cam_front",))
    _wait_for_tf(node, "cam_front_optical")
    arr = Frames(probe, scene).send()
    assert arr.shape[0] == scene.frame.num_points  # the cloud is still processed ...
    assert labeled_fraction(arr, behind=False) > 0.05 and labeled_fraction(arr, behind=True) == 0.0  # ... without it
    assert probe.wait_for_counter("tf_missing", 1)
    lines = [line for line in capfd.readouterr().err.splitlines() if "[tf_missing]" in line]
    assert lines and "'cam_back_optical'" in lines[0] and "'lidar_top'" in lines[0] and "cam_back" in lines[0]


def test_ego_motion_through_the_fixed_frame_and_late_tf(start_node, spin, scenes):
    """odom -> lidar_top on /tf: a frame newer than the newest pose is late (cameras skipped, cloud processed);
    once poses bracket it, the cameras are used."""
    scene = scenes[2]
    broadcaster = spin.add(Broadcaster())
    node, probe = start_node({**TF_ONLY, "tf.fixed_frame": "odom"})
    broadcaster.rig(scene)
    _wait_for_tf(node, "cam_back_optical")
    stamp = scene.frame.stamp_ns

    def poses(*offsets_ms):
        broadcaster.tf_pub.publish(TFMessage(transforms=[tf("odom", "lidar_top", (0.01 * k, 0, 0),
                                                            stamp_ns=stamp + k * 1_000_000) for k in offsets_ms]))
        assert wait_until(lambda: node.extrinsics.tf.has_frame("odom"), 10.0)

    frames = Frames(probe, scene)
    poses(-50, -40)
    arr = frames.send(stamp_ns=stamp)
    assert (arr["label"] == UNLABELED).all() and probe.wait_for_counter("tf_late", 2)  # both cameras
    poses(-10, 100)
    arr = frames.send(stamp_ns=stamp + 20_000_000)
    assert labeled_fraction(arr, behind=False) > 0.05 and labeled_fraction(arr, behind=True) > 0.05


def test_bad_transforms_are_counted_and_the_rest_used(start_node, spin, scenes):
    scene = scenes[3]
    broadcaster = spin.add(Broadcaster())
    node, probe = start_node(TF_ONLY)
    broadcaster.tf_pub.publish(TFMessage(transforms=[tf("lidar_top", "broken", (math.inf, 0, 0))]))
    assert probe.wait_for_counter("tf_bad", 1)
    broadcaster.rig(scene)
    _wait_for_tf(node, "cam_front_optical")
    assert labeled_fraction(Frames(probe, scene).send(), behind=False) > 0.05


def test_a_cloud_in_another_frame_than_the_files_lidar_frame_is_an_error_not_a_misprojection(start_node, scenes):
    scene = scenes[0]
    node, probe = start_node({"extrinsics_source": "file"})
    msgs = scene_messages(scene)
    msgs.cloud.header.frame_id = "velodyne"
    n = len(probe.clouds())
    probe.publish_scene(msgs)
    assert wait_until(lambda: len(probe.clouds()) > n, 30.0)
    assert (output_arrays(probe.clouds()[-1])["label"] == UNLABELED).all()  # no camera used
    assert probe.wait_for_counter("cloud_frame_mismatch", 2)
