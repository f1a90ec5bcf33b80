"""Live replay: the bag played over real DDS into the real node, its output scored as offline replay scores.

`replay_live` starts `ov_panoptic_node` (a subprocess, as on a vehicle), plays the bag into it, records
`~/panoptic_points` and scores each output against the bag's ground truth by header stamp. It also
measures what only a live run can: clouds the node dropped and end-to-end latency (publish to receive,
same host clock).
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ov_panoptic_ros.bridge.clouds import read_cloud, read_cloud_fields
from ov_panoptic_ros.bridge.problems import InputError
from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.frame import Frame, Vocabulary
from ov_panoptic_ros.data.bag.errors import BagError
from ov_panoptic_ros.data.bag.layout import BagTopics
from ov_panoptic_ros.data.bag.reader import BagMessage, open_bag
from ov_panoptic_ros.data.bag.typestore import typestore
from ov_panoptic_ros.data.bag.writer import BagWriter
from ov_panoptic_ros.data.source import ground_truth_problem
from ov_panoptic_ros.eval.errors import LiveError, ReplayError
from ov_panoptic_ros.eval.node_process import NODE_NAME, NodeProcess, node_parameters
from ov_panoptic_ros.eval.run_stats import FrameSample, RunStats, SampleKeeper, percentiles
from ov_panoptic_ros.eval.scoring import Scorer, user_table
from ov_panoptic_ros.eval.summary import bag_summary, scored_run_summary, vocabulary_summary
from ov_panoptic_ros.ros.player import Player, PlayStats
from ov_panoptic_ros.ros.session import LiveRecorder, RosSession


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
        stamp = stamp_to_ns(decoded.header.stamp)
        with self.lock:
            if msg.topic == self.layout.lidar_topic:
                self.sent[stamp] = (len(self.sent), wall_ns)
            else:
                self.ground_truth[stamp] = msg
        if msg.topic == self.layout.lidar_topic:
            self._note_finite(stamp, decoded)

    def _note_finite(self, stamp: int, cloud) -> None:
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
        stamp = stamp_to_ns(cloud.header.stamp)
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


def _has_field(cloud, name: str) -> bool:
    return any(f.name == name for f in cloud.fields)


@dataclass
class LiveOptions:
    rate: float = 1.0
    max_frames: int | None = None
    startup_timeout_s: float = 180.0
    drain_quiet_s: float = 3.0  # after the last publish, stop waiting once the node is this long without an output
    node_params: dict = field(default_factory=dict)
    node_command: list[str] | None = None


def replay_live(bag: str | Path, config: str = "tiny", out: str | Path = "runs/replay_live", *, rate: float = 1.0,
                mapping=None, max_frames: int | None = None, topics: BagTopics | None = None,
                calibration_file: str | Path | None = None, min_points: int = 15, figure_frames: int = 3,
                node_params: dict | None = None, startup_timeout_s: float = 180.0, drain_quiet_s: float = 3.0,
                node_command: list[str] | None = None, progress: bool = True,
                output_bag: str | Path | None = None) -> dict:
    """Play `bag` into a freshly started `ov_panoptic_node` over DDS; score what it publishes; write the report.

    Returns metrics.json (as `replay_offline`, plus a `live` section: clouds sent/received/dropped and
    end-to-end latency). The node's log is kept in `out/node.log`.
    """
    if rate <= 0:
        raise ReplayError(f"--rate must be positive, got {rate}")
    params = {"qos.reliability": "reliable", **(node_params or {})}  # a replay measures the node, not the transport
    opts = LiveOptions(rate, max_frames, startup_timeout_s, drain_quiet_s, params, node_command)
    cfg = load_config(config)  # fail here, with the config's own message, not inside the node
    table = user_table(mapping)
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
    """Start the node (it warms up before subscribing), play, wait for what is in flight, score, stop.

    Ctrl-C skips the wait, stops the node within a second or two and writes the report without figures."""
    # its own node name: a user's ov_panoptic node on the same domain may hear the drive too, but its
    # outputs never mix with this replay's
    node = NodeProcess(params, out, opts.node_command, name=f"{NODE_NAME}_replay_{os.getpid()}")
    session = RosSession("ov_panoptic_live_replay")
    out_bag = BagWriter(output_bag) if output_bag else None
    stop_scoring = threading.Event()
    hurry = True  # until the run ends normally: a failure or Ctrl-C stops the node without waiting on it
    try:
        recorder = LiveRecorder(session.node, f"/{node.name}/panoptic_points", f"/{node.name}/vocabulary")
        player = Player(session.node, reader, None, opts.rate)
        startup_s = _wait_until_ready(node, recorder, player, layout, opts.startup_timeout_s)
        scorer = Scorer(layout.classes, Vocabulary.from_json(recorder.vocabulary_json), table, min_points)
        in_bag = reader.message_counts.get(layout.lidar_topic, 0)
        expected = in_bag if opts.max_frames is None else min(in_bag, opts.max_frames)
        live = LiveScorer(layout, scorer, RunStats(), SampleKeeper(expected, figure_frames), out_bag)
        worker = threading.Thread(target=live.run, args=(recorder.queue, stop_scoring), daemon=True)
        worker.start()
        t0 = time.monotonic()
        play_stats = _play(player, live, layout, opts, expected, progress)
        if not play_stats.interrupted:
            try:
                _drain(live, node, opts.drain_quiet_s, progress)
            except KeyboardInterrupt:  # stop waiting for the node; score what came back
                play_stats.interrupted = True
        hurry = play_stats.interrupted
        wall_s = time.monotonic() - t0
        stop_scoring.set()
        worker.join(timeout=1.0 if hurry else 60.0)
        live.finish()
    finally:
        stop_scoring.set()
        session.close()
        exit_code = node.stop(timeout_s=1.0 if hurry else 10.0)
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
            raise LiveError(f"the node exited during start-up (code {node.proc.returncode}): {node.last_error()} "
                            f"(whole log: {node.log_path})")
        if recorder.vocabulary_json is not None and recorder.cloud_sub.get_publisher_count() > 0 \
                and not player.wait_for_subscribers(inputs, 0.0):
            return time.monotonic() - t0
        time.sleep(0.1)
    raise LiveError(f"the node was not ready after {timeout_s:.0f} s (no vocabulary or no subscription to "
                    f"{inputs}); raise --startup-timeout on a slow machine (its log: {node.log_path})")


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


def _drain(live: LiveScorer, node: NodeProcess, quiet_s: float, progress: bool) -> None:
    """Wait for outputs still in flight, only while the node keeps publishing: until every sent cloud came
    back, or the node has published nothing for `quiet_s` (what did not come by then was dropped)."""
    live.last_receive = max(live.last_receive, time.monotonic())
    if progress and len(live.received) < live.clouds_sent:
        print(f"[live] waiting for the node: {live.clouds_sent - len(live.received)} cloud(s) in flight "
              f"(stops {quiet_s:.0f} s after its last output)", file=sys.stderr, flush=True)
    while node.alive() and len(live.received) < live.clouds_sent:
        if time.monotonic() - live.last_receive > quiet_s:
            return
        time.sleep(0.05)


def _live_report(reader, layout, cfg, live: LiveScorer, play_stats: PlayStats, opts: LiveOptions, out: Path,
                 wall_s: float, startup_s: float, exit_code: int, node: NodeProcess, output_bag) -> dict:
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
        **scored_run_summary(bag_summary(reader), stats, live.scorer, output_bag),
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
    return write_report(out, doc, live.scorer, live.samples.result(), figures=not play_stats.interrupted)
