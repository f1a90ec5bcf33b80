"""`ov-panoptic play` over real DDS: a subprocess publishes, a subscriber node in this process receives."""
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.synthetic_drive import write_synthetic_bag

CLI = [str(Path(sys.executable).parent / "ov-panoptic")]


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("play") / "drive.db3"
    info = write_synthetic_bag(path, n_frames=4, num_points=800, image_size=(32, 24), seed=9)
    return path, info


class Listener:
    """Records LiDAR stamps, the latched calibration and /clock, in arrival order."""

    def __init__(self, ros):
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import String

        self.node = Node("play_listener")
        self.stamps, self.calibration, self.clock = [], [], []
        self.lock = threading.Lock()
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        best_effort = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)  # as rclpy's TimeSource
        self.node.create_subscription(PointCloud2, "/lidar/points", self._cloud, reliable)
        self.node.create_subscription(String, "/ov_panoptic/calibration", lambda m: self.calibration.append(m.data),
                                      latched)
        self.node.create_subscription(Clock, "/clock", self._clock, best_effort)

    def _cloud(self, msg):
        with self.lock:
            self.stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)

    def _clock(self, msg):
        with self.lock:
            self.clock.append(msg.clock.sec * 10**9 + msg.clock.nanosec)

    def wait_for(self, predicate, timeout=30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        return False


def _play(bag_path, *extra, timeout=90):
    return subprocess.run(CLI + ["play", str(bag_path), "--topic", "/lidar/points", "--topic",
                                 "/ov_panoptic/calibration", "--wait-for-subscribers", "30", *extra],
                          capture_output=True, text=True, timeout=timeout)


def test_play_delivers_every_cloud_in_order_with_the_latched_calibration(ros, spin, bag):
    path, info = bag
    listener = Listener(ros)
    spin.add(listener.node)
    proc = _play(path, "--rate", "2")
    assert proc.returncode == 0, proc.stderr
    assert listener.wait_for(lambda s: len(s.stamps) >= 4)
    assert listener.stamps == info.stamps_ns
    with open_bag(path) as reader:
        expected = reader.find_calibration_text()[0]
    assert listener.calibration == [expected]
    assert listener.clock == [], "no /clock unless asked for"
    assert "published" in proc.stdout


def test_play_keeps_the_recorded_rate(ros, spin, bag):
    path, info = bag
    listener = Listener(ros)
    arrivals = []
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    listener.node.create_subscription(PointCloud2, "/lidar/points", lambda m: arrivals.append(time.monotonic()),
                                      QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    spin.add(listener.node)
    proc = _play(path, "--rate", "0.5")  # 10 Hz recording at half speed: 0.2 s between clouds
    assert proc.returncode == 0, proc.stderr
    assert listener.wait_for(lambda s: len(arrivals) >= 4)
    gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:]))  # 0.1 s recorded, at half speed: 0.2 s
    assert 0.14 < gaps[1] < 0.35, gaps  # the median: robust to one delivery delayed by DDS discovery


def test_play_loop_restarts_and_clock_is_published(ros, spin, bag):
    path, info = bag
    listener = Listener(ros)
    spin.add(listener.node)
    proc = subprocess.Popen(CLI + ["play", str(path), "--topic", "/lidar/points", "--wait-for-subscribers", "30",
                                   "--loop", "--clock", "--rate", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.wait_for(lambda s: len(s.stamps) >= 10, timeout=60), proc.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    stamps = listener.stamps
    jumps = [i for i in range(1, len(stamps)) if stamps[i] < stamps[i - 1]]
    assert jumps, "a loop must start over (stamps jump back)"
    assert stamps[: jumps[0]] == info.stamps_ns, "the first pass is the whole bag, in order"
    assert stamps[jumps[0]] == info.stamps_ns[0]
    assert len(listener.clock) > 10
    first, last = info.stamps_ns[0], info.stamps_ns[-1] + 50_000_000
    assert all(first - 10**9 <= c <= last for c in listener.clock), "clock carries bag time"
