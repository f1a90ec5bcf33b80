"""ROS-layer benchmarks: message conversion, the node's per-frame overhead outside the model, RSS.

`bench_ros(quick=False) -> dict` (JSON-able). What each number includes:

1. `conversion` (200k points; input 22 bytes/point: x, y, z, intensity f32, ring u16, time f32; output
   32 bytes/point with intensity and vocab_version). Medians of `repeat` timed calls (timeit, default 200:
   the machine may be shared). `read_ms` = read_cloud (zero-copy xyz view + intensity + finite mask);
   `pack_ms` = pack_panoptic_cloud on what the node passes it (Frame.points and Frame.intensity: contiguous
   float32, labels, instance ids, scores, the vocabulary's palette), i.e. allocating the zero-filled
   array.array and the C kernel writing the rows, class colours looked up from the labels in the same pass;
   `pack_from_input_view_ms` = the same on read_cloud's
   strided views into the input (unaligned float32); `msg_ms` = to_pointcloud2 into an rclpy PointCloud2
   (which holds the packed array without a copy); `memcpy_in_ms`/`memcpy_out_ms` = np.copyto of the
   input/output payload into a preallocated buffer, the yardstick. `pack_vs_memcpy` = pack / memcpy_out;
   `write_vs_memcpy` = (pack + msg) / memcpy_out, the whole write path (target: within 3x).
2. `node_overhead` (100k points + 6 cameras 1600x900 rgb8, 200 frames): the real PanopticNode code path
   with the model replaced by a projection-only pass. Counted: input callbacks (cloud conversion, image
   buffering, sync, the /tf pose), frame assembly (image conversion, CameraModels, extrinsics from TF through
   odom: the rig's cameras on /tf_static, the vehicle's pose on /tf), core.geometry.project_points for
   the 6 cameras (also reported apart), packing, markers, publishing to a subscriber in another process.
   Not counted: DDS delivery/deserialization of the inputs (callbacks are called directly), the model.
   Frames go back to back (the next is sent when the node has published the last), and the process keeps
   freed memory as the node's main() does (core.process). Projection is the C kernel
   (core/_projection.c, one thread whatever the torch thread count, which is still reported).
3. `rss`: the same path for 2000 frames; RSS every 100 frames; trend after a 100-frame warm-up.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

import numpy as np

N_CONVERSION = 200_000
N_NODE = 100_000
IMAGE_W, IMAGE_H = 1600, 900
NUM_CAMERAS = 6


def _median_ms(fn, repeat: int) -> float:
    fn()
    return float(np.median(timeit.repeat(fn, number=1, repeat=repeat)) * 1e3)


def bench_conversion(repeat: int = 200) -> dict:
    from sensor_msgs.msg import PointCloud2, PointField
    from std_msgs.msg import Header

    from ov_panoptic_ros.bridge.clouds import read_cloud
    from ov_panoptic_ros.bridge.packing import pack_panoptic_cloud, to_pointcloud2
    from ov_panoptic_ros.testing.scene_msgs import driver_cloud

    rng = np.random.default_rng(0)
    xyz = rng.uniform(-50, 50, (N_CONVERSION, 3)).astype(np.float32)
    msg = driver_cloud(xyz, rng.random(N_CONVERSION).astype(np.float32), 0, "lidar")
    labels = rng.integers(0, 10, N_CONVERSION).astype(np.uint16)
    inst = rng.integers(0, 50, N_CONVERSION).astype(np.uint32)
    scores = rng.random(N_CONVERSION).astype(np.float32)
    palette = rng.integers(0, 256, (10, 3)).astype(np.uint8)
    cloud = read_cloud(msg)
    points, intensity = cloud.finite_points()  # what the node puts in its Frame, and later packs

    def pack():
        return pack_panoptic_cloud(points, intensity, labels, inst, scores, palette, vocab_version=1)

    def pack_view():
        return pack_panoptic_cloud(cloud.xyz, cloud.intensity, labels, inst, scores, palette, vocab_version=1)

    packed = pack()
    assert bytes(pack_view().data) == bytes(packed.data)
    payload_in = np.frombuffer(bytes(msg.data), np.uint8)
    payload_out = np.frombuffer(bytes(packed.data), np.uint8)
    copy_in, copy_out = np.empty_like(payload_in), np.empty_like(payload_out)
    header = Header(frame_id="lidar")
    out = {
        "points": N_CONVERSION,
        "repeat": repeat,
        "input_point_step": msg.point_step,
        "output_point_step": packed.point_step,
        "read_ms": _median_ms(lambda: read_cloud(msg), repeat),
        "pack_ms": _median_ms(pack, repeat),
        "pack_from_input_view_ms": _median_ms(pack_view, repeat),
        "msg_ms": _median_ms(lambda: to_pointcloud2(packed, header, PointCloud2, PointField), repeat),
        "memcpy_in_ms": _median_ms(lambda: np.copyto(copy_in, payload_in), repeat),
        "memcpy_out_ms": _median_ms(lambda: np.copyto(copy_out, payload_out), repeat),
    }
    out["read_vs_memcpy"] = out["read_ms"] / out["memcpy_in_ms"]
    out["pack_vs_memcpy"] = out["pack_ms"] / out["memcpy_out_ms"]
    out["write_vs_memcpy"] = (out["pack_ms"] + out["msg_ms"]) / out["memcpy_out_ms"]
    out["target_ratio"] = 3.0
    return out


class ProjectionOnlyPipeline:
    """Stands in for the model in the overhead benchmark: the real projection, then a trivial labeling
    (visible points get class `index % C`), so packing, colors and markers do real work."""

    mode = "bench-projection-only"
    device = "cpu"

    def __init__(self, vocabulary):
        from ov_panoptic_ros.core.config import ProjectionConfig

        self.cfg = ProjectionConfig()
        self._vocab = vocabulary
        self.projection_ms: list[float] = []

    @property
    def vocabulary(self):
        return self._vocab

    def prepare_vocabulary(self, vocabulary):
        return type("Prepared", (), {"vocabulary": vocabulary})()

    def activate(self, embeddings) -> None:
        self._vocab = embeddings.vocabulary

    def __call__(self, frame):
        import torch

        from ov_panoptic_ros.core.frame import UNLABELED, Instance, PanopticResult
        from ov_panoptic_ros.core.geometry import project_points

        t = time.perf_counter()
        with torch.inference_mode():
            proj = project_points(torch.from_numpy(frame.points), frame.cameras, self.cfg)
            seen = proj.seen.numpy()
        self.projection_ms.append((time.perf_counter() - t) * 1e3)
        n = frame.num_points
        labels = np.full(n, UNLABELED, np.uint16)
        idx = np.flatnonzero(seen)
        labels[idx] = idx % len(self._vocab.classes)
        thing = labels == 0
        inst = np.zeros(n, np.uint32)
        inst[thing] = 1 + np.flatnonzero(thing) % 20
        scores = np.where(seen, 0.5, 0.0).astype(np.float32)
        instances = [Instance(i, 0, 0.5, np.array([i, 0.0, 0.0]), np.array([4.0, 2.0, 1.5]), 0.1, 10)
                     for i in range(1, 21)]
        return PanopticResult(labels, inst, scores, instances, self._vocab)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _rig_tf(calibration):
    """/tf_static of the rig: each camera's optical frame under lidar_top (the inverse of its T_cam_lidar)."""
    from ov_panoptic_ros.testing.scene_msgs import tf_message

    return tf_message([("lidar_top", f"{name}_optical", np.linalg.inv(ext.T_cam_lidar), 0)
                       for name, ext in calibration.cameras.items()])


def _ego_pose(stamp_ns: int):
    """/tf odom -> lidar_top at 20 m/s, two samples bracketing the frame (the fixed-frame lookups interpolate)."""
    from ov_panoptic_ros.bench.tf import _pose
    from ov_panoptic_ros.testing.scene_msgs import tf_message

    return tf_message([("odom", "lidar_top", _pose((20.0 * (stamp_ns + dt) / 1e9 % 1000.0, 0.0, 0.0)), stamp_ns + dt)
                       for dt in (-10_000_000, 40_000_000)])


class _NodeRig:
    """An in-process PanopticNode fed by direct callback calls, publishing to a live subscriber."""

    def __init__(self, context):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from ov_panoptic_ros.core.config import load_config
        from ov_panoptic_ros.core.frame import Vocabulary
        from ov_panoptic_ros.data.synthetic import make_scene
        from ov_panoptic_ros.ros.node import PanopticNode, bring_up
        from ov_panoptic_ros.testing.probe import wait_until
        from ov_panoptic_ros.testing.scene_msgs import camera_info, driver_cloud, rgb_image

        scene = make_scene(num_points=N_NODE, num_cameras=NUM_CAMERAS, image_size=(IMAGE_W // 20, IMAGE_H // 20))
        self._tmp = tempfile.TemporaryDirectory()
        calib = Path(self._tmp.name) / "calibration.yaml"
        calib.write_text(scene.calibration.to_yaml())
        v = load_config("tiny").vocabulary
        self.pipeline = ProjectionOnlyPipeline(Vocabulary(v.classes, v.stuff, v.templates))
        self.node = PanopticNode(pipeline=self.pipeline, context=context, parameter_overrides=[
            Parameter("calibration_file", value=str(calib)), Parameter("sync.camera_timeout_s", value=1.0),
            Parameter("extrinsics_source", value="tf"), Parameter("tf.fixed_frame", value="odom")])
        bring_up(self.node)
        self.node._on_tf(_rig_tf(scene.calibration), static=True)  # as /tf_static delivers it
        self.executor = SingleThreadedExecutor(context=context)  # the node's timers (diagnostics) keep running
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self.sink = _SinkProcess(context.get_domain_id())  # subscribers live in other processes, like RViz
        if not wait_until(lambda: self.node.cloud_pub.get_subscription_count() > 0, 60.0):
            raise RuntimeError("the benchmark's subscriber process never connected")
        self.names = [c.name for c in scene.frame.cameras]
        self.cloud = driver_cloud(scene.frame.points, scene.frame.intensity, 0, "lidar_top")
        rng = np.random.default_rng(0)
        big = rng.integers(0, 256, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8)
        self.images = [rgb_image(big, 0, f"{n}_optical") for n in self.names]
        self.infos = []
        for info in scene.camera_infos:  # the synthetic rig's intrinsics, scaled to 1600x900
            info.K = info.K * np.array([[20.0], [20.0], [1.0]])
            info.width, info.height = IMAGE_W, IMAGE_H
            self.infos.append(camera_info(info, 0))
        self._stamp = 1_700_000_000 * 10**9

    def frame(self) -> dict[str, float]:
        """One frame through the node; returns per-part milliseconds."""
        from ov_panoptic_ros.testing.scene_msgs import header

        self._stamp += 100_000_000
        done = self.node.stats.get("frames_processed")
        n_proj = len(self.pipeline.projection_ms)
        t = time.perf_counter()
        self.node._on_tf(_ego_pose(self._stamp), static=False)  # the vehicle's pose, 10 ms either side
        for name, img, info in zip(self.names, self.images, self.infos):
            img.header = header(self._stamp, img.header.frame_id)
            self.node._on_info(name, info)
            self.node._on_image(name, img)
        self.cloud.header = header(self._stamp, "lidar_top")
        self.node._on_cloud(self.cloud)
        callbacks_ms = (time.perf_counter() - t) * 1e3
        def finished(counters):
            return counters.get("frames_processed", 0) > done or counters.get("pipeline_errors", 0)

        if not self.node.stats.wait_for(finished, 60.0):  # sleeps: polling would take CPU from the frame
            raise RuntimeError("the node processed no frame within 60 s")
        if self.node.stats.get("pipeline_errors"):
            raise RuntimeError("the node failed a benchmark frame")
        stages = self.node.stats.stage_last_ms()
        projection = self.pipeline.projection_ms[n_proj]
        parts = {"callbacks_ms": callbacks_ms, "assemble_ms": stages["convert"], "projection_ms": projection,
                 "trivial_labels_ms": stages["model"] - projection, "pack_ms": stages["pack"],
                 "markers_ms": stages["markers"], "detections_ms": stages["detections"],
                 "publish_ms": stages["publish"]}
        parts["overhead_excl_projection_ms"] = (callbacks_ms + stages["convert"] + stages["pack"]
                                                + stages["markers"] + stages["detections"] + stages["publish"])
        parts["overhead_ms"] = parts["overhead_excl_projection_ms"] + projection
        return parts

    def close(self) -> int:
        """Stop everything; returns how many clouds the subscriber process received."""
        received = self.sink.close()
        self.executor.shutdown(timeout_sec=5.0)
        self._spin.join(timeout=5.0)
        self.node.destroy_node()
        self._tmp.cleanup()
        return received


class _SinkProcess:
    """A subscriber to the node's outputs in a separate process; reports how many clouds it got."""

    def __init__(self, domain_id: int):
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}
        self.proc = subprocess.Popen([sys.executable, "-m", "ov_panoptic_ros.bench.ros", "--sink"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def close(self) -> int:
        out, _ = self.proc.communicate(input="", timeout=60)
        return int(out.strip().splitlines()[-1]) if out.strip() else -1


def _sink_main() -> None:
    """Subscribe to the node's outputs until stdin closes, then print the number of clouds received."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from ov_panoptic_ros.testing.probe import Probe

    rclpy.init()
    probe = Probe(cameras=(), name="bench_sink")
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    count = 0
    reader = threading.Thread(target=sys.stdin.read, daemon=True)
    reader.start()
    while reader.is_alive():
        time.sleep(0.2)
        count += len(probe.clouds())
        probe.clear()
    count += len(probe.clouds())
    executor.shutdown(timeout_sec=2.0)
    spin.join(timeout=5.0)  # a DDS wait still running at interpreter exit aborts the process
    probe.destroy_node()
    rclpy.try_shutdown()
    print(count, flush=True)


def _summary(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def bench_node(rig: _NodeRig, frames: int) -> dict:
    for _ in range(5):  # warm-up: first projection builds caches
        rig.frame()
    parts = [rig.frame() for _ in range(frames)]
    out = {k: _summary([p[k] for p in parts]) for k in parts[0]}
    import torch

    # a camera skipped for its extrinsics would make the frame look cheaper than it is: say so
    out["tf_problems"] = {k: v for k, v in rig.node.stats.counters.items() if k.startswith("tf_") and v}
    out.update(frames=frames, points=N_NODE, cameras=NUM_CAMERAS, image_size=[IMAGE_W, IMAGE_H],
               image_encoding="rgb8", target_p50_ms=15.0, torch_threads=torch.get_num_threads(),
               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(default)"))
    return out


def bench_rss(rig: _NodeRig, frames: int, warmup: int = 100, every: int = 100) -> dict:
    samples = []
    for i in range(1, frames + 1):
        rig.frame()
        if i % every == 0:
            samples.append(round(_rss_mb(), 1))
    after = np.asarray(samples[max(0, warmup // every - 1):])
    quarter = max(1, len(after) // 4)
    base = float(after[:quarter].mean())
    return {
        "frames": frames, "every": every, "warmup_frames": warmup, "rss_mb": samples,
        # trend: mean of the last quarter of samples vs the first quarter after warm-up
        "growth_after_warmup_pct": float(after[-quarter:].mean() - base) / base * 100.0,
        # worst single sample above the post-warm-up baseline (allocator noise included)
        "max_excursion_pct": float(after.max() - base) / base * 100.0,
        "target_pct": 5.0,
    }


def bench_ros(quick: bool = False) -> dict:
    """All ROS-layer benchmarks; quick mode uses fewer repetitions and frames."""
    import rclpy

    from ov_panoptic_ros.core.process import keep_freed_memory

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    keep_freed_memory()  # as the node's main() does
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=random.SystemRandom().randint(1, 200))
    try:
        result = {"conversion": bench_conversion(repeat=30 if quick else 200)}
        rig = _NodeRig(context)
        try:
            result["node_overhead"] = bench_node(rig, frames=30 if quick else 200)
            result["rss"] = bench_rss(rig, frames=300 if quick else 2000)
        finally:
            received = rig.close()
        sent = result["node_overhead"]["frames"] + 5 + result["rss"]["frames"]
        result["node_overhead"]["subscriber_received"] = f"{received}/{sent}"
    finally:
        rclpy.try_shutdown(context=context)
    result["quick"] = quick
    return result


if __name__ == "__main__":
    import json

    if "--sink" in sys.argv:
        _sink_main()
    else:
        print(json.dumps(bench_ros(quick="--quick" in sys.argv), indent=2))
