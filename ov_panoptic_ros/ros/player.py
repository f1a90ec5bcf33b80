"""Bag playback over DDS: a `ros2 bag play` for machines without a ROS install.

`Player` publishes a bag's recorded (already serialized) bytes at the recorded rate, latched topics
(/tf_static among them) first with transient-local QoS, optionally with /clock.
"""
from __future__ import annotations

import importlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ov_panoptic_ros.bridge.stamps import NS, ns_to_sec_nanosec
from ov_panoptic_ros.data.bag.errors import BagReadError
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.data.bag.reader import BagMessage, BagReader, open_bag
from ov_panoptic_ros.ros.session import TF2_DEPTH, RosSession, latched_qos

CLOCK_PERIOD_S = 0.02  # /clock at 50 Hz between messages (and right before each one)


class PlayError(Exception):
    """Playback could not run; the message is for the user."""


def ros_message_class(msgtype: str):
    """'sensor_msgs/msg/PointCloud2' -> the rclpy message class, or None when its package is not installed."""
    pkg, _, name = msgtype.rpartition("/")
    try:
        return getattr(importlib.import_module(pkg.replace("/", ".")), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _qos(latched: bool, depth: int = 1):
    """Latched: transient local with a history of `depth` (a latched topic's messages in the bag, so a late
    subscriber gets each: a recording holds one /tf_static message per static broadcaster)."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    if latched:
        return latched_qos(max(1, min(depth, TF2_DEPTH)))  # tf2's listener keeps no more
    # Reliable matches both reliable and best-effort subscribers.
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class PlayStats:
    published: int = 0
    per_topic: Counter = field(default_factory=Counter)
    clock_published: int = 0
    loops: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    skipped_topics: dict[str, str] = field(default_factory=dict)
    partial_reason: str | None = None


class Player:
    """Publishes the bag's serialized messages with the recorded timing (scaled by `rate`).

    Latched topics (transient-local offered QoS, or the layout's calibration / class list / /tf_static) go
    out first, every message of them once, with transient-local QoS deep enough to hold them all, so a
    subscriber that joins later still gets each. The timeline starts at the first other message.
    `on_publish(msg, wall_ns)` runs right after each publish.
    """

    def __init__(self, node, reader: BagReader, topics: list[str] | None = None, rate: float = 1.0,
                 loop: bool = False, clock: bool = False):
        if rate <= 0:
            raise PlayError(f"rate must be positive, got {rate}")
        self.node, self.reader, self.rate, self.loop = node, reader, rate, loop
        self.stats = PlayStats()
        self.stop_event = threading.Event()
        self.latched = reader.latched_topics
        wanted = reader.topic_types if topics is None else {t: reader.topic_types.get(t) for t in topics}
        missing = [t for t, kind in wanted.items() if kind is None]
        if missing:
            reader.require(missing)
        self.publishers = {}
        counts = reader.message_counts
        for topic, msgtype in wanted.items():
            cls = ros_message_class(msgtype)
            if cls is None:
                self.stats.skipped_topics[topic] = f"message type {msgtype} is not installed"
                continue
            qos = _qos(topic in self.latched, counts.get(topic, 1))
            self.publishers[topic] = node.create_publisher(cls, topic, qos)
        self.clock_pub = self._clock_publisher() if clock else None

    def _clock_publisher(self):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        return self.node.create_publisher(Clock, "/clock", qos)

    def wait_for_subscribers(self, topics: list[str], timeout_s: float) -> list[str]:
        """Wait until each topic's publisher has a subscriber; returns those still without one."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [t for t in topics if t in self.publishers and self.publishers[t].get_subscription_count() == 0]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.05)

    # ---------------------------------------------------------------- playing
    def play(self, on_publish: Callable[[BagMessage, int], None] | None = None,
             should_stop: Callable[[BagMessage | None], bool] | None = None) -> PlayStats:
        """Play until the end (or forever with loop); `should_stop(next message or None)` ends it early."""
        t_start = time.monotonic()
        try:
            self._publish_latched(on_publish)
            while not self._stopping(should_stop):
                self.stats.loops += 1
                self._play_pass(on_publish, should_stop)
                if not self.loop:
                    break
        except KeyboardInterrupt:
            self.stats.interrupted = True
        except BagReadError as e:
            self.stats.partial_reason = str(e)
        finally:
            self.stats.wall_s = time.monotonic() - t_start
        if self.reader.partial_reason and not self.stats.partial_reason:
            self.stats.partial_reason = self.reader.partial_reason
        return self.stats

    def _stopping(self, should_stop, msg: BagMessage | None = None) -> bool:
        return self.stop_event.is_set() or (should_stop is not None and should_stop(msg))

    def _publish_latched(self, on_publish) -> None:
        """Every message of the latched topics, in bag order: /tf_static comes as one message per broadcaster, and
        a subscriber needs them all (the first alone would lose the other broadcasters' frames)."""
        for msg in self.reader.messages(sorted(self.latched & set(self.publishers))):
            self._publish(msg, on_publish)

    def _play_pass(self, on_publish, should_stop) -> None:
        timed = [t for t in self.publishers if t not in self.latched]
        t_wall0, t_bag0 = None, None
        for msg in self.reader.messages(timed):
            if t_wall0 is None:
                t_wall0, t_bag0 = time.monotonic(), msg.log_time_ns
            self._wait_until(t_wall0 + (msg.log_time_ns - t_bag0) / NS / self.rate, t_wall0, t_bag0, should_stop)
            if self._stopping(should_stop, msg):
                return
            self._publish_clock(msg.log_time_ns)
            self._publish(msg, on_publish)

    def _wait_until(self, target: float, t_wall0: float, t_bag0: int, should_stop) -> None:
        while not self._stopping(should_stop):
            now = time.monotonic()
            if now >= target:
                return
            if self.clock_pub is not None:
                self._publish_clock(t_bag0 + int((now - t_wall0) * self.rate * NS))
            time.sleep(min(target - now, CLOCK_PERIOD_S))

    def _publish_clock(self, bag_ns: int) -> None:
        if self.clock_pub is None:
            return
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        sec, nsec = ns_to_sec_nanosec(bag_ns)
        self.clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=nsec)))
        self.stats.clock_published += 1

    def _publish(self, msg: BagMessage, on_publish) -> None:
        raw = msg.raw if isinstance(msg.raw, bytes) else bytes(msg.raw)
        wall_ns = time.time_ns()
        self.publishers[msg.topic].publish(raw)  # rclpy publishes serialized bytes as they are
        self.stats.published += 1
        self.stats.per_topic[msg.topic] += 1
        if on_publish is not None:
            on_publish(msg, wall_ns)


def play_bag(bag: str | Path, rate: float = 1.0, loop: bool = False, clock: bool = False,
             topics: list[str] | None = None, wait_for_subscribers_s: float = 0.0, progress: bool = False,
             bag_topics: BagTopics | None = None) -> PlayStats:
    """`ov-panoptic play`: publish the bag (or some of its topics) until it ends, Ctrl-C, or forever with loop."""
    reader = open_bag(bag, bag_topics)
    session = RosSession("ov_panoptic_player")
    try:
        player = Player(session.node, reader, topics, rate, loop, clock)
        if wait_for_subscribers_s > 0:
            player.wait_for_subscribers(list(player.publishers), wait_for_subscribers_s)
        bar = _progress_bar(reader, player, progress)
        stats = player.play(on_publish=(lambda m, t: bar.update(1)) if bar is not None else None)
        if bar is not None:
            bar.close()
        time.sleep(0.2)  # let reliable transport flush the last messages before the participant goes
        return stats
    finally:
        session.close()
        reader.close()


def _progress_bar(reader: BagReader, player: Player, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    total = sum(n for t, n in reader.message_counts.items() if t in player.publishers)
    return tqdm(total=None if player.loop else total, unit="msg", desc="play", dynamic_ncols=True)
