"""Live replay and bag playback over real DDS.

`Player` publishes a bag's recorded (already serialized) bytes at the recorded rate, latched topics
first with transient-local QoS, optionally with /clock: a `ros2 bag play` for machines without ROS.
`replay_live` starts the real node (`ov_panoptic_node`, a subprocess as on a vehicle), plays the bag
into it, records `~/panoptic_points` and scores each output against the bag's ground truth by header
stamp, exactly as the offline replay scores. It also measures what only a live run can: clouds the
node dropped and end-to-end latency (publish to receive, same host clock).
"""
from __future__ import annotations

import importlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from ov_panoptic_ros.eval.bag import BagError, BagMessage, BagReader, BagTopics, open_bag, read_cloud_fields, typestore

NS = 1_000_000_000
CLOCK_PERIOD_S = 0.02  # /clock at 50 Hz between messages (and right before each one)
NODE_NAME = "ov_panoptic"


class LiveError(Exception):
    """Live replay or playback could not run (node did not start, no subscriber...); message is for the user."""


def ros_message_class(msgtype: str):
    """'sensor_msgs/msg/PointCloud2' -> the rclpy message class, or None when its package is not installed."""
    pkg, _, name = msgtype.rpartition("/")
    try:
        return getattr(importlib.import_module(pkg.replace("/", ".")), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _qos(latched: bool):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if latched:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    # Reliable matches both reliable and best-effort subscribers (the node's inputs are best-effort).
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


# --------------------------------------------------------------------------------------------------
# Playback
# --------------------------------------------------------------------------------------------------
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

    Latched topics (transient-local offered QoS, or the layout's calibration / class list) go out
    once, first, with transient-local QoS so a subscriber that joins later still gets them. The
    timeline starts at the first other message. `on_publish(msg, wall_ns)` runs right after each publish.
    """

    def __init__(self, node, reader: BagReader, topics: list[str] | None = None, rate: float = 1.0,
                 loop: bool = False, clock: bool = False):
        if rate <= 0:
            raise LiveError(f"rate must be positive, got {rate}")
        self.node, self.reader, self.rate, self.loop = node, reader, rate, loop
        self.stats = PlayStats()
        self.stop_event = threading.Event()
        self.latched = reader.latched_topics
        wanted = reader.topic_types if topics is None else {t: reader.topic_types.get(t) for t in topics}
        missing = [t for t, kind in wanted.items() if kind is None]
        if missing:
            reader.require(missing)
        self.publishers = {}
        for topic, msgtype in wanted.items():
            cls = ros_message_class(msgtype)
            if cls is None:
                self.stats.skipped_topics[topic] = f"message type {msgtype} is not installed"
                continue
            self.publishers[topic] = node.create_publisher(cls, topic, _qos(topic in self.latched))
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
        from ov_panoptic_ros.eval.bag import BagReadError

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
        for topic in sorted(self.latched & set(self.publishers)):
            msg = self.reader.first_message(topic)
            if msg is not None:
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

        sec, nsec = divmod(int(bag_ns), NS)
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


class RosSession:
    """rclpy in its own context with one node spun in a background thread (so it coexists with others)."""

    def __init__(self, node_name: str):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(node_name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # context shut down while spinning
            pass

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=2.0)


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


# --------------------------------------------------------------------------------------------------
# Live replay: the real node in a subprocess
# --------------------------------------------------------------------------------------------------
def node_command() -> list[str]:
    """The installed `ov_panoptic_node` console script next to this Python, else the module."""
    script = Path(sys.executable).parent / "ov_panoptic_node"
    if script.exists():
        return [str(script)]
    found = shutil.which("ov_panoptic_node")
    return [found] if found else [sys.executable, "-m", "ov_panoptic_ros.ros.node"]


def _nested(flat: dict) -> dict:
    """{'a.b': 1} -> {'a': {'b': 1}}: the form ROS 2 parameter files use for dotted names."""
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def node_parameters(layout, config: str, calibration_file: Path, extra: dict | None = None) -> dict:
    """The node's parameters for this bag's topics and cameras (names from ros/params.py)."""
    params = {"pipeline.config": config, "calibration_file": str(calibration_file),
              "lidar_topic": layout.lidar_topic, "cameras": layout.camera_names}
    for cam in layout.cameras:
        params[f"{cam.name}.image_topic"] = cam.image_topic
        params[f"{cam.name}.info_topic"] = cam.info_topic
        params[f"{cam.name}.compressed"] = cam.compressed
    params.update(extra or {})
    return params


class NodeProcess:
    """`ov_panoptic_node` as a child process, its output in a log file, stopped with SIGINT like Ctrl-C."""

    def __init__(self, params: dict, workdir: Path, command: list[str] | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.params_file = workdir / "node_params.yaml"
        self.params_file.write_text(yaml.safe_dump({NODE_NAME: {"ros__parameters": _nested(params)}}))
        self.log_path = workdir / "node.log"
        self._log = open(self.log_path, "w")
        cmd = (command or node_command()) + ["--ros-args", "--params-file", str(self.params_file)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def vocabulary_from_json(text: str):
    """The node's `~/vocabulary` JSON -> Vocabulary (synonyms rejoined, so the mapping sees all of them)."""
    import json

    from ov_panoptic_ros.core.frame import Vocabulary

    data = json.loads(text)
    entries = [",".join(s) for s in data["synonyms"]] if data.get("synonyms") else data["classes"]
    return Vocabulary(tuple(entries), tuple(data.get("stuff", ())), (), int(data.get("version", 0)))


class LiveRecorder:
    """Subscribes to the node's outputs; callbacks only timestamp and queue (scoring runs elsewhere)."""

    def __init__(self, node, cloud_topic: str, vocab_topic: str):
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import String

        self.queue: queue.Queue = queue.Queue()
        self.vocabulary_json: str | None = None
        self.received = 0
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.cloud_sub = node.create_subscription(PointCloud2, cloud_topic, self._on_cloud, qos, raw=True)
        self.vocab_sub = node.create_subscription(String, vocab_topic, self._on_vocab, _qos(latched=True))

    def _on_cloud(self, raw: bytes) -> None:
        self.received += 1
        self.queue.put((time.time_ns(), raw))

    def _on_vocab(self, msg) -> None:
        self.vocabulary_json = msg.data


class LiveScorer:
    """Matches the node's outputs to the bag's ground truth by header stamp and scores them.

    The player thread records what was sent (`on_publish`); a worker thread drains the recorder's
    queue, so receive timestamps are never delayed by scoring.
    """

    def __init__(self, layout, scorer, stats, samples, out_bag=None):
        self.layout, self.scorer, self.stats, self.samples, self.out_bag = layout, scorer, stats, samples, out_bag
        self.lock = threading.Lock()
        self.sent: dict[int, tuple[int, int]] = {}  # stamp -> (cloud index, publish wall ns)
        self.ground_truth: dict[int, BagMessage] = {}
        self.finite: dict[int, np.ndarray] = {}  # stamp -> finite mask, only for clouds with NaN points
        self.waiting: dict[int, tuple[int, object]] = {}  # outputs whose ground truth is not in yet
        self.received: set[int] = set()
        self.e2e_ms: list[float] = []
        self.unexpected = 0  # outputs with a stamp that was never sent (another publisher? a stale node?)
        self.duplicates = 0
        self.last_receive = time.monotonic()

    # ---------------------------------------------------------------- player side
    def on_publish(self, msg: BagMessage, wall_ns: int) -> None:
        if msg.topic not in (self.layout.lidar_topic, self.layout.ground_truth_topic):
            return
        try:
            decoded = msg.decode()
        except BagError:
            return  # the node cannot read it either: it shows up as dropped, or the frame lacks ground truth
        stamp = _stamp(decoded)
        with self.lock:
            if msg.topic == self.layout.lidar_topic:
                self.sent[stamp] = (len(self.sent), wall_ns)
            else:
                self.ground_truth[stamp] = msg
        if msg.topic == self.layout.lidar_topic:
            self._note_finite(stamp, decoded)

    def _note_finite(self, stamp: int, cloud) -> None:
        from ov_panoptic_ros.ros.messages import InputError, read_cloud

        try:
            arrays = read_cloud(cloud)
        except InputError:
            return  # the node rejects it too; it shows up as dropped
        if not arrays.all_finite:
            self.finite[stamp] = arrays.finite.copy()

    @property
    def clouds_sent(self) -> int:
        with self.lock:
            return len(self.sent)

    # ---------------------------------------------------------------- scoring side
    def run(self, source: queue.Queue, stop: threading.Event) -> None:
        while not (stop.is_set() and source.empty()):
            try:
                recv_ns, raw = source.get(timeout=0.05)
            except queue.Empty:
                continue
            self.last_receive = time.monotonic()
            self._handle(recv_ns, raw)

    def _handle(self, recv_ns: int, raw: bytes) -> None:
        try:
            cloud = typestore().deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2")
        except Exception:  # not a PointCloud2 we can read: not one of ours
            self.unexpected += 1
            return
        stamp = _stamp(cloud)
        self._score_waiting()
        with self.lock:
            sent, gt = self.sent.get(stamp), self.ground_truth.pop(stamp, None)
            self._evict_before(stamp)
        if sent is None:
            self.unexpected += 1
            return
        if stamp in self.received:
            self.duplicates += 1
            return
        self.received.add(stamp)
        self.e2e_ms.append((recv_ns - sent[1]) / 1e6)
        if self.out_bag is not None:
            self.out_bag.add_topic("/ov_panoptic/panoptic_points", "sensor_msgs/msg/PointCloud2")
            self.out_bag.write_raw("/ov_panoptic/panoptic_points", stamp, raw)
        if gt is None:
            self.waiting[stamp] = (sent[0], cloud)
            return
        self._score(stamp, sent[0], cloud, gt)

    def _evict_before(self, stamp: int) -> None:
        """The node publishes in stamp order: ground truth older than an output will never be needed."""
        for table in (self.ground_truth, self.finite):
            for old in [s for s in table if s < stamp]:
                del table[old]

    def _score(self, stamp: int, index: int, cloud, gt_msg: BagMessage) -> None:
        from ov_panoptic_ros.core.frame import Frame
        from ov_panoptic_ros.eval.replay import FrameSample, ground_truth_problem
        from ov_panoptic_ros.ros.messages import InputError, read_cloud

        try:
            names = ["label", "instance_id"] + (["vocab_version"] if _has_field(cloud, "vocab_version") else [])
            pred = read_cloud_fields(cloud, names)
            xyz = np.array(read_cloud(cloud).xyz)
            gt = read_cloud_fields(gt_msg.decode(), ["label", "instance_id"])
        except (InputError, BagError) as e:
            self.stats.skip(index, stamp, "output_bad_layout", str(e))
            return
        gt_labels, gt_inst = gt["label"], gt["instance_id"]
        with self.lock:
            finite = self.finite.pop(stamp, None)
        if finite is not None and gt_labels.shape[0] == finite.shape[0]:
            gt_labels, gt_inst = gt_labels[finite], gt_inst[finite]
        problem = ground_truth_problem(gt_labels, pred["label"].shape[0], self.scorer.classes.n_classes)
        version = self.scorer.vocabulary.version
        if problem is None and "vocab_version" in pred and np.any(pred["vocab_version"] != version):
            problem = ("vocabulary_changed", "labeled with another vocabulary version than the one scored")
        if problem is not None:
            self.stats.skip(index, stamp, *problem)
            return
        self.scorer.add(pred["label"], pred["instance_id"], gt_labels, gt_inst)
        self.stats.processed += 1
        self.stats.points += int(xyz.shape[0])
        self.samples.offer(FrameSample(index, stamp, Frame(points=xyz, stamp_ns=stamp), pred["label"],
                                       pred["instance_id"], gt_labels, gt_inst))

    def _score_waiting(self) -> None:
        """Outputs that came back before their ground truth was published: score those now complete."""
        for stamp in sorted(self.waiting):
            with self.lock:
                gt = self.ground_truth.pop(stamp, None)
            if gt is not None:
                index, cloud = self.waiting.pop(stamp)
                self._score(stamp, index, cloud, gt)

    def finish(self) -> None:
        """After the run: score what is still waiting; outputs whose ground truth never came are skipped."""
        self._score_waiting()
        for stamp, (index, _) in sorted(self.waiting.items()):
            self.stats.skip(index, stamp, "ground_truth_missing", f"no ground truth stamped {stamp}")
        self.waiting.clear()


def _stamp(msg) -> int:
    return int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)


def _has_field(cloud, name: str) -> bool:
    return any(f.name == name for f in cloud.fields)


@dataclass
class LiveOptions:
    rate: float = 1.0
    max_frames: int | None = None
    startup_timeout_s: float = 180.0
    drain_timeout_s: float = 15.0  # after the last publish, wait this long without a new output
    node_params: dict = field(default_factory=dict)
    node_command: list[str] | None = None


def replay_live(bag: str | Path, config: str = "tiny", out: str | Path = "runs/replay_live", *, rate: float = 1.0,
                mapping=None, max_frames: int | None = None, topics: BagTopics | None = None,
                calibration_file: str | Path | None = None, min_points: int = 15, figure_frames: int = 3,
                node_params: dict | None = None, startup_timeout_s: float = 180.0, drain_timeout_s: float = 15.0,
                node_command: list[str] | None = None, progress: bool = True,
                output_bag: str | Path | None = None) -> dict:
    """Play `bag` into a freshly started `ov_panoptic_node` over DDS; score what it publishes; write the report.

    Returns metrics.json (as `replay_offline`, plus a `live` section: clouds sent/received/dropped and
    end-to-end latency). The node's log is kept in `out/node.log`.
    """
    from ov_panoptic_ros.core.config import load_config
    from ov_panoptic_ros.eval.replay import ReplayError, _user_table

    if rate <= 0:
        raise ReplayError(f"--rate must be positive, got {rate}")
    opts = LiveOptions(rate, max_frames, startup_timeout_s, drain_timeout_s, dict(node_params or {}), node_command)
    cfg = load_config(config)  # fail here, with the config's own message, not inside the node
    table = _user_table(mapping)
    out = Path(out)
    reader = open_bag(bag, topics)
    try:
        layout = reader.layout(need_ground_truth=True, calibration_file=calibration_file)
        out.mkdir(parents=True, exist_ok=True)
        calib_path = out / "calibration.yaml"
        calib_path.write_text(layout.calibration_text)
        config_arg = str(Path(config).resolve()) if Path(str(config)).exists() else str(config)
        params = node_parameters(layout, config_arg, calib_path, opts.node_params)
        return _run_live(reader, layout, cfg, table, min_points, figure_frames, params, opts, out, progress,
                         output_bag)
    finally:
        reader.close()


def _run_live(reader, layout, cfg, table, min_points, figure_frames, params, opts: LiveOptions, out: Path,
              progress: bool, output_bag) -> dict:
    from ov_panoptic_ros.eval.bag import BagWriter
    from ov_panoptic_ros.eval.replay import RunStats, SampleKeeper, Scorer, _expected_frames

    node = NodeProcess(params, out, opts.node_command)
    session = RosSession("ov_panoptic_live_replay")
    out_bag = BagWriter(output_bag) if output_bag else None
    stop_scoring = threading.Event()
    try:
        recorder = LiveRecorder(session.node, f"/{NODE_NAME}/panoptic_points", f"/{NODE_NAME}/vocabulary")
        player = Player(session.node, reader, None, opts.rate)
        startup_s = _wait_until_ready(node, recorder, player, layout, opts.startup_timeout_s)
        scorer = Scorer(layout.classes, vocabulary_from_json(recorder.vocabulary_json), table, min_points)
        stats = RunStats()
        expected = _expected_frames(reader, layout.lidar_topic, 1, opts.max_frames)
        live = LiveScorer(layout, scorer, stats, SampleKeeper(expected, figure_frames), out_bag)
        worker = threading.Thread(target=live.run, args=(recorder.queue, stop_scoring), daemon=True)
        worker.start()
        t0 = time.monotonic()
        play_stats = _play(player, live, layout, opts, expected, progress)
        try:
            _drain(live, node, opts.drain_timeout_s)
        except KeyboardInterrupt:  # stop waiting for the node; score what came back
            play_stats.interrupted = True
        wall_s = time.monotonic() - t0
        stop_scoring.set()
        worker.join(timeout=60)
        live.finish()
    finally:
        stop_scoring.set()
        session.close()
        exit_code = node.stop()
        if out_bag is not None:
            out_bag.close()
    return _live_report(reader, layout, cfg, live, play_stats, opts, out, wall_s, startup_s, exit_code, node,
                        output_bag)


def _wait_until_ready(node: NodeProcess, recorder: LiveRecorder, player: Player, layout, timeout_s: float) -> float:
    """Until the node has published its vocabulary (pipeline built) and subscribed to every input."""
    t0 = time.monotonic()
    inputs = [layout.lidar_topic] + [t for c in layout.cameras for t in (c.image_topic, c.info_topic)]
    while time.monotonic() - t0 < timeout_s:
        if not node.alive():
            raise LiveError(f"the node exited during start-up (code {node.proc.returncode}); its log "
                            f"({node.log_path}):\n{node.log_tail()}")
        if recorder.vocabulary_json is not None and recorder.cloud_sub.get_publisher_count() > 0 \
                and not player.wait_for_subscribers(inputs, 0.0):
            return time.monotonic() - t0
        time.sleep(0.1)
    raise LiveError(f"the node was not ready after {timeout_s:.0f} s (no vocabulary or no subscription to "
                    f"{inputs}); its log ({node.log_path}):\n{node.log_tail()}")


def _play(player: Player, live: LiveScorer, layout, opts: LiveOptions, expected: int, progress: bool) -> PlayStats:
    from tqdm import tqdm

    bar = tqdm(total=expected or None, unit="cloud", desc="live replay", disable=not progress, dynamic_ncols=True)

    def on_publish(msg: BagMessage, wall_ns: int) -> None:
        live.on_publish(msg, wall_ns)
        if msg.topic == layout.lidar_topic:
            bar.update(1)
            bar.set_postfix(received=len(live.received), refresh=False)

    def should_stop(msg: BagMessage | None) -> bool:
        return (opts.max_frames is not None and msg is not None and msg.topic == layout.lidar_topic
                and live.clouds_sent >= opts.max_frames)

    try:
        return player.play(on_publish, should_stop)
    finally:
        bar.close()


def _drain(live: LiveScorer, node: NodeProcess, timeout_s: float) -> None:
    """Wait for outputs still in flight: until every sent cloud came back, or none came for `timeout_s`."""
    live.last_receive = max(live.last_receive, time.monotonic())
    while node.alive() and len(live.received) < live.clouds_sent:
        if time.monotonic() - live.last_receive > timeout_s:
            return
        time.sleep(0.05)


def _live_report(reader, layout, cfg, live: LiveScorer, play_stats: PlayStats, opts: LiveOptions, out: Path,
                 wall_s: float, startup_s: float, exit_code: int, node: NodeProcess, output_bag) -> dict:
    from ov_panoptic_ros.eval.replay import percentiles, scored_run_summary, vocabulary_summary
    from ov_panoptic_ros.eval.report import write_report

    stats = live.stats
    sent, received = live.clouds_sent, len(live.received)
    if play_stats.interrupted:
        stats.partial_reasons.append(f"interrupted (Ctrl-C) after {sent} clouds were sent")
    if play_stats.partial_reason:
        stats.partial_reasons.append(play_stats.partial_reason)
    e2e = percentiles(live.e2e_ms)
    bag_read_s = reader.read_s + reader.decode_s
    doc = {
        "mode": "live",
        **scored_run_summary(reader, stats, live.scorer, output_bag),
        "config": cfg.name,
        "pipeline_mode": "node",
        "vocabulary": vocabulary_summary(live.scorer.vocabulary),
        "frames": stats.frames_dict(reader.message_counts.get(layout.lidar_topic, 0), sent, 1, opts.max_frames),
        "latency_ms": e2e,
        "stage_latency_ms": {},
        "timing": {"wall_s": wall_s, "node_startup_s": startup_s, "bag_read_s": bag_read_s,
                   "bag_read_share": bag_read_s / wall_s if wall_s > 0 else None,
                   "frames_per_s": received / wall_s if wall_s > 0 else None},
        "live": {
            "rate": opts.rate, "clouds_sent": sent, "clouds_received": received, "dropped": sent - received,
            "drop_rate": (sent - received) / sent if sent else None, "end_to_end_latency_ms": e2e,
            "outputs_with_unknown_stamp": live.unexpected, "duplicate_outputs": live.duplicates,
            "messages_published": play_stats.published, "play_wall_s": play_stats.wall_s,
            "node_exit_code": exit_code, "node_log": str(node.log_path), "node_params": str(node.params_file),
        },
    }
    return write_report(out, doc, live.scorer, live.samples.result())
