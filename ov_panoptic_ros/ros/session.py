"""rclpy for tools that are not the node: a private context with one spun node, and the QoS they use."""
from __future__ import annotations

import queue
import threading
import time


TF2_DEPTH = 100  # the history tf2's listener keeps on /tf and /tf_static; also the most a latched topic replays


def latched_qos(depth: int = 1):
    """Transient local, reliable, keep last `depth`: what a latched publisher (calibration, vocabulary: 1;
    /tf_static: TF2_DEPTH) offers."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


class RosSession:
    """rclpy in its own context with one node spun in a background thread (so it coexists with others)."""

    def __init__(self, node_name: str):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions

        self.context = Context()
        # The tool keeps Python's own Ctrl-C (KeyboardInterrupt): rclpy's handlers would swallow it, and a
        # replay or playback would run on to the end of the bag (seen: 17 s after Ctrl-C).
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
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
        self.vocab_sub = node.create_subscription(String, vocab_topic, self._on_vocab, latched_qos())

    def _on_cloud(self, raw: bytes) -> None:
        self.received += 1
        self.queue.put((time.time_ns(), raw))

    def _on_vocab(self, msg) -> None:
        self.vocabulary_json = msg.data
