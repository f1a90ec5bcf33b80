"""A client node that feeds `ov_panoptic` and records what it publishes, in arrival order.

For the node tests, the ROS benchmark and smoke checks against a running node: it plays the LiDAR
and camera drivers, subscribes to every output and calls the parameter services like `ros2 param`.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters, SetParametersAtomically
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from ov_panoptic_ros.testing.scene_msgs import SceneMessages


@dataclass
class Received:
    seq: int  # global arrival order across all topics
    topic: str  # "points" | "instances" | "vocabulary" | "diagnostics"
    msg: Any
    t: float  # time.monotonic() at arrival


def vocabulary_qos() -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Probe(Node):
    def __init__(self, cameras=("cam_front", "cam_back"), lidar_topic="/lidar/points", target="/ov_panoptic",
                 reliable_inputs=True, compressed=False, name="ov_panoptic_probe", subscribe=True, **node_kwargs):
        super().__init__(name, **node_kwargs)
        self.target = target
        self._lock = threading.Lock()
        self._seq = 0
        self.received: list[Received] = []
        in_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable_inputs
                            else ReliabilityPolicy.BEST_EFFORT)
        self.cloud_pub = self.create_publisher(PointCloud2, lidar_topic, in_qos)
        img_type = CompressedImage if compressed else Image
        suffix = "/compressed" if compressed else ""
        self.image_pubs = {c: self.create_publisher(img_type, f"/{c}/image_raw{suffix}", in_qos) for c in cameras}
        self.info_pubs = {c: self.create_publisher(CameraInfo, f"/{c}/camera_info", in_qos) for c in cameras}
        if subscribe:  # vocabulary first: if it and a cloud are ready together, it is taken first
            self.create_subscription(String, f"{target}/vocabulary", self._rec("vocabulary"), vocabulary_qos())
            out_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
            self.create_subscription(PointCloud2, f"{target}/panoptic_points", self._rec("points"), out_qos)
            self.create_subscription(MarkerArray, f"{target}/instances", self._rec("instances"), out_qos)
            self.create_subscription(Detection3DArray, f"{target}/detections", self._rec("detections"), out_qos)
            self.create_subscription(DiagnosticArray, "/diagnostics", self._rec("diagnostics"), 10)
        self.set_client = self.create_client(SetParameters, f"{target}/set_parameters")
        self.atomic_client = self.create_client(SetParametersAtomically, f"{target}/set_parameters_atomically")
        self.change_state_client = self.create_client(ChangeState, f"{target}/change_state")
        self.get_state_client = self.create_client(GetState, f"{target}/get_state")

    def _rec(self, topic: str) -> Callable:
        def callback(msg):
            with self._lock:
                self._seq += 1
                self.received.append(Received(self._seq, topic, msg, time.monotonic()))
        return callback

    # ------------------------------------------------------------------------------------------ inputs
    def publish_scene(self, msgs: SceneMessages, cameras=None, infos=True, cloud=True) -> None:
        """Infos, then images, then the cloud (a driver-like order; tests reorder by calling parts)."""
        names = list(msgs.images) if cameras is None else list(cameras)
        if infos:
            for c in names:
                self.info_pubs[c].publish(msgs.infos[c])
        for c in names:
            self.image_pubs[c].publish(msgs.images[c])
        if cloud:
            self.cloud_pub.publish(msgs.cloud)

    def wait_for_subscribers(self, timeout: float = 10.0) -> bool:
        """Until the node under test has matched our cloud publisher (discovery done)."""
        return wait_until(lambda: self.cloud_pub.get_subscription_count() > 0, timeout)

    # ------------------------------------------------------------------------------------------ outputs
    def of(self, topic: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.topic == topic]

    def clouds(self) -> list[PointCloud2]:
        return [r.msg for r in self.of("points")]

    def vocabularies(self) -> list[dict]:
        return [json.loads(r.msg.data) for r in self.of("vocabulary")]

    def diagnostics(self) -> dict[str, str]:
        """The latest /diagnostics values of the node under test."""
        name = self.target.strip("/")
        for r in reversed(self.of("diagnostics")):
            for status in r.msg.status:
                if status.name.startswith(name):
                    return {kv.key: kv.value for kv in status.values} | {"_level": str(status.level[0]),
                                                                         "_message": status.message}
        return {}

    def counter(self, key: str) -> int:
        return int(self.diagnostics().get(key, "0"))

    def wait_for_counter(self, key: str, at_least: int = 1, timeout: float = 10.0) -> bool:
        return wait_until(lambda: self.counter(key) >= at_least, timeout)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    # ------------------------------------------------------------------------------------------ parameters
    def set_parameters(self, params: list[Parameter], timeout: float = 10.0):
        """The plain SetParameters service (what `ros2 param set` / `ros2 param load` call)."""
        req = SetParameters.Request(parameters=[p.to_parameter_msg() for p in params])
        return self._call(self.set_client, req, timeout).results

    def set_parameters_atomically(self, params: list[Parameter], timeout: float = 10.0):
        req = SetParametersAtomically.Request(parameters=[p.to_parameter_msg() for p in params])
        return self._call(self.atomic_client, req, timeout).result

    def change_state(self, label: str, timeout: float = 60.0) -> bool:
        """A lifecycle transition by label (configure, activate, deactivate, cleanup, shutdown), as
        `ros2 lifecycle set` requests it; whether the node accepted and completed it."""
        request = ChangeState.Request(transition=Transition(label=label))
        return self._call(self.change_state_client, request, timeout).success

    def lifecycle_state(self, timeout: float = 10.0) -> str:
        return self._call(self.get_state_client, GetState.Request(), timeout).current_state.label

    def _call(self, client, request, timeout: float):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {client.srv_name} not available")
        future = client.call_async(request)
        if not wait_until(future.done, timeout):
            raise TimeoutError(f"service {client.srv_name} did not answer in {timeout} s")
        return future.result()


def wait_until(predicate: Callable[[], bool], timeout: float, period: float = 0.02) -> bool:
    """Poll `predicate` (an executor spins elsewhere) until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())
