"""The `ov_panoptic` node: PointCloud2 + camera images in, panoptic cloud, boxes and vocabulary out.

A managed (lifecycle) node, as ROS 2 drivers and yolo_ros are: construction declares and checks the
parameters; configure builds the pipeline and loads the model; activate creates the topics; deactivate stops
processing and keeps the model; cleanup frees it. `bring_up` (and `autostart`, the default) does
configure + activate at start-up. Parameters and start-up checks live in ros/node_setup.py, the vocabulary
parameters' callbacks in ros/node_vocabulary.py (mixins of the node); this module is the frame path.

Threads (why): executor callbacks only convert the cloud header-cheaply, buffer raw image messages
and run the synchronizer, so they never block on the model. One inference worker takes the newest
synchronized frame (older ones are dropped and counted, never queued) and converts only the images
that frame uses. One vocabulary worker embeds accepted vocabularies off the frame path; the
inference worker swaps them in between frames, publishing `~/vocabulary` first, so every cloud is
labeled with exactly one vocabulary and the message announcing it always comes before it.
"""
from __future__ import annotations

import gc
import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from ov_panoptic_ros.bridge.assemble import CameraStream, assemble_frame
from ov_panoptic_ros.bridge.camera_info import CameraModels
from ov_panoptic_ros.bridge.clouds import CloudArrays, read_cloud
from ov_panoptic_ros.bridge.packing import pack_panoptic_cloud, to_pointcloud2
from ov_panoptic_ros.bridge.problems import PROBLEMS, InputError
from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.bridge.sync import CameraSynchronizer, FrameAssembler, SyncedFrame
from ov_panoptic_ros.core.process import steady_latency
from ov_panoptic_ros.core.frame import CameraModel, Frame, PanopticResult, Vocabulary, VocabularyError
from ov_panoptic_ros.ros import params as P
from ov_panoptic_ros.ros.dds import apply_default_profile, startup_report
from ov_panoptic_ros.ros.diagnostics import NodeStats, ThrottledLog, to_diagnostic_array
from ov_panoptic_ros.ros.detections import instance_detections
from ov_panoptic_ros.ros.markers import drawable_instances, instance_markers
from ov_panoptic_ros.ros.node_setup import NodeSetup, StartupError
from ov_panoptic_ros.ros.node_vocabulary import VocabularyParameters
from ov_panoptic_ros.ros.overrides import override_names
from ov_panoptic_ros.ros.session import TF2_DEPTH, latched_qos

NODE_NAME = "ov_panoptic"
PACKAGE = "ov_panoptic_ros"
WARMUP_POINTS, WARMUP_IMAGE_SIZE = 20_000, (640, 480)
POLL_PERIOD_S = 0.02  # how often waiting clouds are checked against their camera timeout
DIAGNOSTICS_PERIOD_S = 1.0
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE

# Every counter /diagnostics shows, registered at zero so users see what is counted before it happens: the
# node's own, then every input problem kind (bridge/problems.py; sync misses are counted per camera).
COUNTERS = (
    "clouds_received", "images_received", "frames_synced", "frames_missing_cameras", "frames_processed",
    "frames_dropped_stale", "frames_dropped_pending", "time_jumps",
    "empty_clouds", "nonfinite_points_dropped", "clouds_with_nonfinite_points", "pipeline_errors",
    "vocabulary_changes_accepted", "vocabulary_changes_rejected", "vocabulary_prepare_failed",
    "lifecycle_transitions_refused", "lifecycle_transitions_failed",
    *(kind for kind in PROBLEMS if kind not in ("sync_miss", "cloud_missing_field")),
)


@dataclass
class _CloudItem:
    header: object  # std_msgs/Header of the input cloud, reused for every output
    cloud: CloudArrays
    received_s: float


def _qos(reliability: str, depth: int) -> QoSProfile:
    rel = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel,
                      durability=DurabilityPolicy.VOLATILE)


def _free_device_memory(device) -> None:
    """After the last reference to a pipeline on `device` is dropped: return its GPU memory to the driver."""
    gc.collect()
    if getattr(device, "type", None) == "cuda":
        import torch

        torch.cuda.empty_cache()


class PanopticNode(NodeSetup, VocabularyParameters, LifecycleNode):
    """See the module docstring. `pipeline` may be given (tests, benchmarks) to share a loaded model;
    `argv` is the command line whose `--ros-args` parameters the unknown-parameter warning checks."""

    def __init__(self, pipeline=None, argv=None, **node_kwargs):
        # undeclared names reach _validate_parameters, which refuses them by name (rclpy's own refusal names none)
        super().__init__(NODE_NAME, allow_undeclared_parameters=True, **node_kwargs)
        self._given_pipeline = pipeline
        self.pipeline = None
        self._worker = self._vocab_worker = None
        self._io: list = []  # the topics and timers of the active state
        self.cloud_pub = self.marker_pub = self.detection_pub = self.vocab_pub = None
        try:
            self._declare_all(argv or [], node_kwargs.get("parameter_overrides") or ())
        except BaseException:
            self.destroy_node()  # release the DDS entities of a node that failed to start
            raise

    def _declare_all(self, argv, given_overrides) -> None:
        self.stats = NodeStats()
        for c in COUNTERS:
            self.stats.count(c, 0)
        self._warn = ThrottledLog(self.get_logger().warning)
        self.failure = ""  # why the last transition failed, for bring_up and the refusal log line
        self._entered("unconfigured")  # /diagnostics shows the state from the start; each transition updates it
        self._declare_static()
        self.config = self._load_config()
        self.cameras = self._load_cameras()
        self._declare_vocabulary(self.config)
        self._warn_unknown_overrides(override_names(argv, self.get_fully_qualified_name(), given_overrides))
        self._vocab_version = 0
        self._vocab_changed = False
        self._vocabulary_from(self._current_vocab_values(), version=0)  # a bad start-up vocabulary: StartupError
        self.add_pre_set_parameters_callback(self._prepare_parameters)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        # a whole SetParameters request is applied as one vocabulary change: this callback shares the
        # parameter services' (mutually exclusive) group, so it runs after the request is done
        self._vocab_guard = self.create_guard_condition(self._on_vocabulary_changed)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self._count_refused_transitions()

    # ----------------------------------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the pipeline (load the model, embed the vocabulary), warm it up, start the workers. The node
        holds the pipeline only once the sync state exists: the diagnostics timer, in its own callback group,
        takes a set pipeline to mean a configured node."""
        try:
            vocabulary = self._vocabulary_from(self._current_vocab_values(), self._vocab_version)
            pipeline = self._build_pipeline(vocabulary)
        except (StartupError, VocabularyError) as e:
            return self._fail("configure", str(e))
        if self._p("warmup"):
            self._warm_up(pipeline)
        self._setup_sync()
        self.pipeline = pipeline
        self._setup_threads()
        return self._entered("inactive")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Create the publishers, subscriptions and the poll timer; announce the vocabulary."""
        try:
            self._create_io()
        except (InvalidQosOverridesError, ParameterException, RuntimeError, ValueError) as e:
            self._destroy_io()
            # rclpy raises these for a qos_overrides.* parameter of the wrong type or an unknown policy value
            return self._fail("activate", f"creating the topics failed (check the qos_overrides.* parameters): {e}")
        with self._cond:
            self._processing = True
        self._publish_vocabulary(self.pipeline.vocabulary)
        self.get_logger().info(
            f"ready: active, device={self.pipeline.device} mode={self.pipeline.mode} lidar={self._p('lidar_topic')}"
            f" cameras={[c.name for c in self.cameras]} classes={self.pipeline.vocabulary.names}")
        return self._entered("active")

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop processing (a frame in progress finishes first), drop the topics; the model stays loaded."""
        self._pause_worker_and(self._destroy_io)
        with self._lock:
            self.assembler.reset()
        return self._entered("inactive")

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the workers and free the model and its GPU memory."""
        self._stop_threads()
        pipeline, self.pipeline = self.pipeline, None
        device = getattr(pipeline, "device", None)  # read before the last reference goes
        del pipeline
        _free_device_memory(device)
        return self._entered("unconfigured")

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.lifecycle_state == "active":
            self.on_deactivate(state)
        if self.lifecycle_state == "inactive":
            self.on_cleanup(state)
        return self._entered("finalized")

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error while {state.label}: cleaning up")
        self.on_shutdown(state)
        return self._entered("unconfigured")

    def _entered(self, state: str) -> TransitionCallbackReturn:
        self.lifecycle_state, self.failure = state, ""
        self.stats.set_info(lifecycle_state=state)
        return SUCCESS

    def _fail(self, transition: str, reason: str) -> TransitionCallbackReturn:
        self.failure = reason
        self.stats.count("lifecycle_transitions_failed")
        self.get_logger().error(f"{transition} failed: {reason}")
        return FAILURE

    def _count_refused_transitions(self) -> None:
        """A ChangeState request that is out of order (activate before configure, configure twice) gets a log
        line naming the state and a diagnostics counter (one whose transition fails is counted by _fail);
        rclpy's lifecycle service answers it as usual."""
        for service in self.services:
            if service.srv_name.endswith("/change_state"):
                answer = service.callback

                def counted(request, response, answer=answer):
                    before, self.failure = self.lifecycle_state, ""
                    response = answer(request, response)
                    if not response.success and not self.failure:
                        self.stats.count("lifecycle_transitions_refused")
                        name = request.transition.label or f"id {request.transition.id}"
                        self._warn("lifecycle_transitions_refused", f"lifecycle transition {name} refused: not a"
                                                                    f" transition from state {before}")
                    return response

                service.callback = counted

    def _build_pipeline(self, vocabulary: Vocabulary):
        pipeline = self._given_pipeline
        if pipeline is not None:
            pipeline.activate(pipeline.prepare_vocabulary(vocabulary))
            return pipeline
        from ov_panoptic_ros.core.pipeline import PanopticPipeline  # torch: imported only when needed

        try:
            return PanopticPipeline(self.config, vocabulary)
        except (OSError, RuntimeError, ValueError) as e:
            source = self._p("pipeline.config")
            raise StartupError(f"cannot build the pipeline from pipeline.config {source!r}: {e}") from e

    def _warm_up(self, pipeline) -> None:
        """One inference on a synthetic frame (random points, one gray image) before any input is subscribed."""
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        points = rng.uniform((-30.0, -30.0, -2.0), (30.0, 30.0, 2.0), (WARMUP_POINTS, 3)).astype(np.float32)
        w, h = WARMUP_IMAGE_SIZE
        camera = CameraModel("warmup", w, h, [[w / 2, 0, w / 2], [0, w / 2, h / 2], [0, 0, 1]],
                             T_cam_lidar=[[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
        frame = Frame(points=points, images=[np.full((h, w, 3), 128, np.uint8)], cameras=[camera])
        try:
            pipeline(frame)
        except (RuntimeError, ValueError) as e:  # the first real frame will say the same, counted
            self.get_logger().warning(f"warm-up inference failed: {type(e).__name__}: {e}")
            return
        self.get_logger().info(f"warm-up inference: {(time.perf_counter() - t0) * 1e3:.0f} ms")

    def _setup_sync(self) -> None:
        self._lock = threading.Lock()  # guards the assembler (the executor and the worker both use it)
        self.sync = CameraSynchronizer({c.name: c.time_offset_s for c in self.cameras},
                                       max_offset_s=self._p("sync.max_offset_s"),
                                       jump_threshold_s=self._p("sync.time_jump_threshold_s"),
                                       buffer_s=self._p("sync.buffer_s"), max_bytes=self._buffer_bytes())
        # a cloud also waits (up to the timeout) for each camera's first CameraInfo: DDS orders no topics
        self.assembler = FrameAssembler(self.sync, camera_timeout_s=self._p("sync.camera_timeout_s"),
                                        awaiting=[c.name for c in self.cameras])
        self.models = CameraModels({c.name for c in self.cameras if c.rectified})  # guarded by self._lock
        self.streams = [CameraStream(c.name, c.compressed) for c in self.cameras]
        self._image_topics = {c.name: c.image_topic for c in self.cameras}
        self.max_points = self._p("max_points")
        self.budget_ms = self._p("budget_ms")
        self._last_cloud_stamp: int | None = None  # of the last cloud accepted (clouds arrive in one callback group)

    def _buffer_bytes(self) -> int:
        return int(self._p("sync.buffer_mb") * 2**20)

    def _setup_threads(self) -> None:
        self._cond = threading.Condition()
        self._stop = False
        self._processing = False  # frames are taken only while active
        self._busy = False  # the worker is publishing: deactivate waits for it
        self._slot: SyncedFrame | None = None  # the newest synchronized frame, waiting for the worker
        self._ready_vocab: list = []  # prepared embeddings, in acceptance order
        self._vocab_requests: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._worker_loop, name="ov_panoptic_infer", daemon=True)
        self._vocab_worker = threading.Thread(target=self._vocab_loop, name="ov_panoptic_vocab", daemon=True)
        self._worker.start()
        self._vocab_worker.start()

    def _pause_worker_and(self, then) -> None:
        """Stop taking frames, wait out the one in progress, and run `then` before the worker can wake again:
        it also wakes for a new vocabulary, and must not announce it on a publisher being destroyed."""
        with self._cond:
            self._processing = False
            self._slot = None
            self._cond.wait_for(lambda: not self._busy)
            then()

    def _stop_threads(self) -> None:
        if self._worker is None:
            return
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._vocab_requests.put(None)
        for t in (self._worker, self._vocab_worker):
            t.join(timeout=30.0)
        self._worker = self._vocab_worker = None

    def _create_io(self) -> None:
        """Publishers and subscriptions; the data topics take the standard qos_overrides.<topic>.* parameters
        (history, depth, reliability) over the defaults below. Each entity gets its own QoSProfile: rclpy writes
        an override into the profile it is given, so a shared one would carry one topic's override to the next."""
        overrides = QoSOverridingOptions.with_default_policies()
        self.cloud_pub = self._keep(self.create_publisher(PointCloud2, "~/panoptic_points", self._out_qos(),
                                                          qos_overriding_options=overrides))
        self.marker_pub = self._keep(self.create_publisher(MarkerArray, "~/instances", self._out_qos(),
                                                           qos_overriding_options=overrides))
        self.detection_pub = self._keep(self.create_publisher(Detection3DArray, "~/detections", self._out_qos(),
                                                              qos_overriding_options=overrides))
        self.vocab_pub = self._keep(self.create_publisher(String, "~/vocabulary", latched_qos()))
        data = MutuallyExclusiveCallbackGroup()
        self._keep(self.create_subscription(PointCloud2, self._p("lidar_topic"), self._on_cloud, self._in_qos(),
                                            callback_group=data, qos_overriding_options=overrides))
        for cam in self.cameras:
            msg_type = CompressedImage if cam.compressed else Image
            self._keep(self.create_subscription(msg_type, cam.image_topic, lambda m, n=cam.name: self._on_image(n, m),
                                                self._in_qos(), callback_group=data, qos_overriding_options=overrides))
            self._keep(self.create_subscription(CameraInfo, cam.info_topic, lambda m, n=cam.name: self._on_info(n, m),
                                                self._in_qos(), callback_group=data, qos_overriding_options=overrides))
        if self.extrinsics.source != "file":  # tf2's listener QoS: /tf_static is latched
            self._keep(self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), TF2_DEPTH,
                                                callback_group=data))
            self._keep(self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                                latched_qos(TF2_DEPTH), callback_group=data))
        self._keep(self.create_timer(POLL_PERIOD_S, self._poll, callback_group=data))

    def _keep(self, entity):
        self._io.append(entity)
        return entity

    def _destroy_io(self) -> None:
        for entity in reversed(self._io):  # the node's own destroy_*: it forgets them, activate makes new ones
            if isinstance(entity, Publisher):
                self.destroy_publisher(entity)
            elif isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            else:
                self.destroy_timer(entity)
        self._io.clear()
        self.cloud_pub = self.marker_pub = self.detection_pub = self.vocab_pub = None

    def _in_qos(self) -> QoSProfile:
        return _qos(self._p("qos.reliability"), self._p("qos.depth"))

    def _out_qos(self) -> QoSProfile:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self._p("qos.depth"),
                          reliability=ReliabilityPolicy.RELIABLE)
    # ----------------------------------------------------------------------------------------- inputs
    def _bad_input(self, kind: str, message: str, key: str | None = None) -> None:
        """Count a skipped input and log it, throttled per kind (or per `key`)."""
        self.stats.count(kind)
        self._warn(kind, f"{message}; skipped (counter {kind}={self.stats.get(kind)})", key=key)

    def _on_cloud(self, msg: PointCloud2) -> None:
        self.stats.count("clouds_received")
        self.stats.cloud_arrived()
        try:
            cloud = read_cloud(msg, max_points=self.max_points)
        except InputError as e:
            self._bad_input(e.kind, f"PointCloud2 on {self._p('lidar_topic')}: {e}")
            return
        stamp = stamp_to_ns(msg.header.stamp)
        if stamp == self._last_cloud_stamp:
            self._bad_input("cloud_duplicate_stamp", f"PointCloud2 on {self._p('lidar_topic')} has the stamp of the"
                                                     f" cloud before it ({stamp} ns)")
            return
        self._last_cloud_stamp = stamp
        self._count_cloud_quality(cloud)
        with self._lock:
            self.assembler.add_cloud(stamp, _CloudItem(msg.header, cloud, time.monotonic()), time.monotonic())
        self._poll()

    def _count_cloud_quality(self, cloud: CloudArrays) -> None:
        if cloud.num_points == 0:
            self.stats.count("empty_clouds")
            self._warn("empty_clouds", "empty PointCloud2: publishing an empty labeled cloud")
            return
        dropped = cloud.num_points - cloud.num_finite
        if dropped:
            self.stats.count("nonfinite_points_dropped", dropped)
            self.stats.count("clouds_with_nonfinite_points")
            self._warn("nonfinite_points_dropped", f"dropped {dropped} of {cloud.num_points} NaN/inf points")

    def _on_image(self, camera: str, msg) -> None:
        self.stats.count("images_received")
        with self._lock:
            self.assembler.add_image(camera, stamp_to_ns(msg.header.stamp), msg, len(msg.data))
        self._poll()

    def _on_tf(self, msg, static: bool) -> None:
        for e in self.extrinsics.tf.add_message(msg, static):
            self._bad_input(e.kind, f"{'/tf_static' if static else '/tf'}: {e}")

    def _on_info(self, camera: str, msg: CameraInfo) -> None:
        with self._lock:
            first = self.models.update(camera, msg)
            if first:
                self.assembler.camera_usable(camera)
        if first:
            self._poll()

    def _poll(self) -> None:
        """Hand clouds whose camera wait is over to the worker; only the newest is kept."""
        with self._lock:
            frames = self.assembler.poll(time.monotonic())
        for frame in frames:
            with self._cond:
                if self._slot is not None:
                    self.stats.count("frames_dropped_stale")
                self._slot = frame
                self._cond.notify_all()

    # ----------------------------------------------------------------------------------------- worker
    def _worker_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._ready_vocab or
                                    (self._processing and self._slot is not None))
                if self._stop:
                    return
                vocabs, self._ready_vocab = self._ready_vocab, []
                job, self._slot = (self._slot, None) if self._processing else (None, self._slot)
                self._busy = True
            try:
                for embeddings in vocabs:
                    self._publish_vocabulary(embeddings.vocabulary)  # announced before any cloud labeled with it
                    self.pipeline.activate(embeddings)
                if job is not None:
                    self._run_job(job)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _run_job(self, job: SyncedFrame) -> None:
        try:
            self.process_frame(job)
        except Exception as e:  # one bad frame never kills the worker
            self.stats.count("pipeline_errors")
            self._warn("pipeline_errors", f"frame at {job.stamp_ns} failed: {type(e).__name__}: {e}")

    def process_frame(self, job: SyncedFrame) -> dict[str, float]:
        """One synchronized frame -> published cloud and markers. Returns per-stage milliseconds."""
        t0 = time.perf_counter()
        item: _CloudItem = job.cloud
        # No lock: images are decoded here, off the executor; CameraModels only swaps whole dict entries.
        frame, problems = assemble_frame(item.cloud, job.stamp_ns, item.header.frame_id, job.images,
                                         self.streams, self.models, self.extrinsics)
        for p in problems:  # throttled per camera: each camera's first problem of a kind is always logged
            self._bad_input(p.kind, f"camera {p.camera!r} ({self._image_topics[p.camera]}): {p.detail}",
                            key=f"{p.kind}:{p.camera}")
        t1 = time.perf_counter()
        result = self._infer(frame)
        t2 = time.perf_counter()
        stages = {"convert": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3}
        stages.update(self._publish_result(item.header, frame, result))
        total_ms = (time.perf_counter() - t0) * 1e3
        self.stats.frame_done(total_ms, stages, latency_ms=(time.monotonic() - item.received_s) * 1e3)
        self.stats.count("frames_processed")
        return stages

    def _infer(self, frame: Frame) -> PanopticResult:
        if frame.num_points == 0:  # nothing to label: an empty result in the current vocabulary
            return PanopticResult(np.zeros(0, np.uint16), np.zeros(0, np.uint32), np.zeros(0, np.float32), [],
                                  self.pipeline.vocabulary)
        result = self.pipeline(frame)
        if result.labels.shape[0] != frame.num_points:
            raise RuntimeError(f"pipeline returned {result.labels.shape[0]} labels for {frame.num_points} points")
        return result

    def _publish_result(self, header, frame: Frame, result: PanopticResult) -> dict[str, float]:
        """Pack and publish the cloud, markers and detections; returns milliseconds per step."""
        t0 = time.perf_counter()
        vocab = result.vocabulary
        packed = pack_panoptic_cloud(frame.points, frame.intensity, result.labels, result.instance_ids,
                                     result.scores, vocab.colors(), vocab_version=vocab.version)
        cloud = to_pointcloud2(packed, header, PointCloud2, PointField)
        t1 = time.perf_counter()
        self.cloud_pub.publish(cloud)
        t2 = time.perf_counter()
        drawable = drawable_instances(result.instances, vocab)  # once: both topics describe these instances
        markers = instance_markers(drawable, header)
        t3 = time.perf_counter()
        self.marker_pub.publish(markers)
        t4 = time.perf_counter()
        detections = instance_detections(drawable, header)
        t5 = time.perf_counter()
        self.detection_pub.publish(detections)
        t6 = time.perf_counter()
        return {"pack": (t1 - t0) * 1e3, "publish": (t2 - t1 + t4 - t3 + t6 - t5) * 1e3,
                "markers": (t3 - t2) * 1e3, "detections": (t5 - t4) * 1e3}

    # ----------------------------------------------------------------------------------------- vocabulary
    def _publish_vocabulary(self, vocabulary: Vocabulary) -> None:
        if self.vocab_pub is not None:  # inactive: activate announces the vocabulary then
            self.vocab_pub.publish(String(data=vocabulary.to_json()))
        self.stats.set_info(vocabulary_version=vocabulary.version, vocabulary=",".join(vocabulary.names))

    def _vocab_loop(self) -> None:
        while True:
            vocabulary = self._vocab_requests.get()
            if vocabulary is None:
                return
            try:
                embeddings = self.pipeline.prepare_vocabulary(vocabulary)
            except Exception as e:  # keep the old vocabulary; the parameter now disagrees, so say it loudly
                self.stats.count("vocabulary_prepare_failed")
                self.get_logger().error(f"vocabulary v{vocabulary.version} could not be embedded, keeping the "
                                        f"previous one: {type(e).__name__}: {e}")
                continue
            with self._cond:
                self._ready_vocab.append(embeddings)
                self._cond.notify_all()

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        if self.lifecycle_state in ("inactive", "active"):  # configure reads the parameters itself
            with self._lock:
                self.sync.max_offset_s = self._p("sync.max_offset_s")
                self.sync.jump_threshold_s = self._p("sync.time_jump_threshold_s")
                self.sync.buffer_s, self.sync.max_bytes = self._p("sync.buffer_s"), self._buffer_bytes()
                self.assembler.camera_timeout_s = self._p("sync.camera_timeout_s")
            self.max_points = self._p("max_points")
            self.budget_ms = self._p("budget_ms")
        if {p.name for p in parameters} & set(P.VOCABULARY_PARAMS):
            self._vocab_changed = True
            self._vocab_guard.trigger()

    # ----------------------------------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        """Runs beside the transitions (its own callback group): it reads the pipeline once, since cleanup may
        drop it between two reads, and an exception here would stop the executor, and so the node."""
        pipeline = self.pipeline
        if pipeline is not None:  # configured: the sync state exists too
            self._sync_counters()
            self.stats.set_info(device=pipeline.device, pipeline_mode=pipeline.mode)
        self.stats.set_info(pipeline_config=self._p("pipeline.config"))
        snapshot = self.stats.snapshot(self._p("budget_ms"))
        device = str(pipeline.device) if pipeline is not None else "none"
        self.diag_pub.publish(to_diagnostic_array(snapshot, f"{self.get_name()}: panoptic segmentation",
                                                  device, self.get_clock().now().to_msg()))

    def _sync_counters(self) -> None:
        with self._lock:
            self.stats.set_camera_misses(self.assembler.sync_misses)
            pending_dropped, jumps = self.assembler.dropped_pending, self.sync.time_jumps
            synced, incomplete = self.assembler.released, self.assembler.incomplete
            buffered = sum(self.sync.buffered(c)[1] for c in self.sync.cameras)
        self.stats.set_counter("frames_dropped_pending", pending_dropped)
        self.stats.set_counter("time_jumps", jumps)
        self.stats.set_counter("frames_synced", synced)
        self.stats.set_counter("frames_missing_cameras", incomplete)
        self.stats.set_info(sync_buffered_mb=f"{buffered / 2**20:.1f}")

    def destroy_node(self) -> None:
        """Stop the workers before the publishers they use go away."""
        self._stop_threads()
        super().destroy_node()


def bring_up(node: PanopticNode) -> None:
    """configure + activate, as `autostart` does at start-up; StartupError with the reason when one fails."""
    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != SUCCESS:
            raise StartupError(node.failure or f"{transition.__name__} failed")


def main(args: list[str] | None = None) -> int:
    """`ros2 run ov_panoptic_ros ov_panoptic_node [--ros-args ...]`; exit code 2 on a start-up error."""
    kept = steady_latency()  # freed memory kept, OpenMP waits passively: see core.process
    profile = apply_default_profile()  # before rclpy.init: Fast DDS reads it with the first participant
    argv = sys.argv if args is None else args
    rclpy.init(args=argv)
    try:
        node = PanopticNode(argv=argv)
        if node.get_parameter("autostart").value:
            bring_up(node)
    except StartupError as e:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"start-up error: {e}")
        rclpy.try_shutdown()
        return 2
    if not kept:
        node.get_logger().warning("the C library has no mallopt: freed frame buffers go back to the kernel")
    dds_line, dds_warning = startup_report(profile)
    node.get_logger().info(dds_line)
    if dds_warning:
        node.get_logger().warning(dds_warning)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
