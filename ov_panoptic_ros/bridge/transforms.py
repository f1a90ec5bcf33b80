"""A TF buffer: geometry_msgs/TransformStamped (rclpy or rosbags, from /tf and /tf_static) -> 4x4 lookups.

tf2_ros is not installable beside the pip ROS wheels, and the bag tools need the same lookups without any
ROS, so this is the one TF buffer of the package, for the node and the bags alike. It follows tf2's rules:
each frame has one parent; /tf_static links hold for all time; /tf links are interpolated between their
samples (linear translation, slerp rotation) and never extrapolated, so a lookup past the newest sample is
"late" and one before the oldest kept is "old"; `lookup_through` travels in time through a fixed frame.
"""
from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from ov_panoptic_ros.bridge.problems import InputError
from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.core.calibration import invert_rigid, unit_quaternion_rows

MAX_DEPTH = 64  # longer parent chains are loops (tf2 uses 1000; real trees are < 10 deep)


class TransformError(InputError):
    default_kind = "tf_missing"


@dataclass
class _Link:
    """How `child` sits in `parent`: one matrix (static) or time-stamped samples (dynamic)."""

    parent: str
    matrix: np.ndarray | None = None  # static: parent <- child
    times: list[int] = field(default_factory=list)
    poses: list[tuple] = field(default_factory=list)  # (tx, ty, tz, qx, qy, qz, qw), unit quaternions


def _pose(msg) -> tuple:
    t, q = msg.transform.translation, msg.transform.rotation
    pose = (float(t.x), float(t.y), float(t.z), float(q.x), float(q.y), float(q.z), float(q.w))
    norm = math.sqrt(sum(v * v for v in pose[3:]))
    if not all(math.isfinite(v) for v in pose) or norm < 1e-6:
        raise TransformError(f"transform {msg.header.frame_id!r} -> {msg.child_frame_id!r} has a non-finite value or"
                             f" a zero quaternion: {pose}", kind="tf_bad")
    return pose[:3] + tuple(v / norm for v in pose[3:])


def pose_matrix(pose: tuple) -> np.ndarray:
    """(tx, ty, tz, qx, qy, qz, qw) -> 4x4 (parent <- child)."""
    tx, ty, tz, x, y, z, w = pose
    r0, r1, r2 = unit_quaternion_rows(x, y, z, w)  # the quaternion is unit already (_pose, _interpolate)
    return np.array([(*r0, tx), (*r1, ty), (*r2, tz), (0.0, 0.0, 0.0, 1.0)])


def pose_from_matrix(T: np.ndarray) -> tuple:
    """4x4 (parent <- child) -> (tx, ty, tz, qx, qy, qz, qw), `pose_matrix`'s inverse: what a TransformStamped holds.
    A rotation block that is orthonormal only to a few 1e-7 (KITTI's calib.txt) gets its nearest rotation."""
    from scipy.spatial.transform import Rotation

    T = np.asarray(T, dtype=np.float64).reshape(4, 4)
    return tuple(float(v) for v in T[:3, 3]) + tuple(float(v) for v in Rotation.from_matrix(T[:3, :3]).as_quat())


def _interpolate(a: tuple, b: tuple, s: float) -> tuple:
    """Linear in translation, spherical in rotation (the shorter way round)."""
    trans = tuple(a[i] + s * (b[i] - a[i]) for i in range(3))
    qa, qb = a[3:], b[3:]
    dot = sum(x * y for x, y in zip(qa, qb))
    if dot < 0.0:
        qb, dot = tuple(-v for v in qb), -dot
    if dot > 0.9995:  # nearly equal: normalized lerp
        q = tuple(x + s * (y - x) for x, y in zip(qa, qb))
    else:
        theta = math.acos(dot)
        wa, wb = math.sin((1 - s) * theta), math.sin(s * theta)
        q = tuple(wa * x + wb * y for x, y in zip(qa, qb))
    norm = math.sqrt(sum(v * v for v in q))
    return trans + tuple(v / norm for v in q)


class TransformBuffer:
    """Transforms from TFMessages; `lookup(target, source, t)` gives the 4x4 that maps source points to target.

    Dynamic samples older than `cache_s` behind a link's newest are forgotten; a sample that far *behind* the
    newest one (a bag that loops, a clock reset) starts that link afresh, as tf2's listener does on a jump back.
    Thread-safe: the node's executor fills it while its inference worker looks up.
    """

    def __init__(self, cache_s: float = 10.0):
        self.cache_ns = int(cache_s * 1e9)
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- filling
    def add_message(self, tf_message, static: bool) -> list[TransformError]:
        """Every transform of a TFMessage; the unusable ones are returned (and left out), not raised."""
        errors = []
        for transform in tf_message.transforms:
            try:
                self.add(transform, static)
            except TransformError as e:
                errors.append(e)
        return errors

    def add(self, msg, static: bool) -> None:
        parent, child = str(msg.header.frame_id).lstrip("/"), str(msg.child_frame_id).lstrip("/")
        if not parent or not child or parent == child:
            raise TransformError(f"transform {parent!r} -> {child!r} needs two different, non-empty frame names",
                                 kind="tf_bad")
        pose = _pose(msg)
        with self._lock:
            link = self._links.get(child)
            if static:
                self._links[child] = _Link(parent, matrix=pose_matrix(pose))
                return
            if link is None or link.parent != parent or link.matrix is not None:
                link = self._links[child] = _Link(parent)
            self._insert(link, stamp_to_ns(msg.header.stamp), pose)

    def _insert(self, link: _Link, stamp: int, pose: tuple) -> None:
        if link.times and stamp < link.times[-1] - self.cache_ns:  # jump back: the old timeline is gone
            link.times.clear()
            link.poses.clear()
        i = bisect.bisect_left(link.times, stamp)
        if i < len(link.times) and link.times[i] == stamp:
            link.poses[i] = pose
        else:
            link.times.insert(i, stamp)
            link.poses.insert(i, pose)
        cut = bisect.bisect_left(link.times, link.times[-1] - self.cache_ns)
        if cut:
            del link.times[:cut], link.poses[:cut]

    def has_frame(self, frame: str) -> bool:
        with self._lock:
            return self._knows(frame.lstrip("/"))

    def _knows(self, frame: str) -> bool:
        """Whether a transform names `frame`, as child or parent; the caller holds the lock."""
        return frame in self._links or any(link.parent == frame for link in self._links.values())

    # ------------------------------------------------------------------------------------------- lookups
    def lookup(self, target: str, source: str, time_ns: int | None = None) -> np.ndarray:
        """4x4 target <- source at `time_ns` (None: the newest sample of each dynamic link)."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4)
        with self._lock:
            return self._lookup(target, source, time_ns)

    def _lookup(self, target: str, source: str, time_ns: int | None) -> np.ndarray:
        up_source, up_target = self._chain(source), self._chain(target)
        ancestors = {frame: i for i, frame in enumerate(up_target)}
        for j, frame in enumerate(up_source):
            if frame in ancestors:
                to_common = self._compose(up_source[:j + 1], time_ns, target, source)
                from_target = self._compose(up_target[:ancestors[frame] + 1], time_ns, target, source)
                return invert_rigid(from_target) @ to_common
        raise TransformError(self._unconnected(target, source, up_target, up_source), kind="tf_missing")

    def lookup_through(self, target: str, target_ns: int, source: str, source_ns: int, fixed: str) -> np.ndarray:
        """4x4 target(at target_ns) <- source(at source_ns), through `fixed`, a frame that does not move between
        the two times (odom, map): a cloud seen by a camera that took its image a little later, while driving."""
        return self.lookup(target, fixed, target_ns) @ self.lookup(fixed, source, source_ns)

    def _chain(self, frame: str) -> list[str]:
        """frame, its parent, ..., its root."""
        chain, seen = [frame], {frame}
        while frame in self._links:
            frame = self._links[frame].parent
            if frame in seen or len(chain) > MAX_DEPTH:
                raise TransformError(f"TF has a loop through {frame!r}: {' -> '.join(chain + [frame])}", kind="tf_loop")
            chain.append(frame)
            seen.add(frame)
        return chain

    def _compose(self, chain: list[str], time_ns: int | None, target: str, source: str) -> np.ndarray:
        """chain[-1] <- chain[0], one link per step."""
        out = np.eye(4)
        for child in chain[:-1]:
            out = self._link_matrix(child, time_ns, target, source) @ out
        return out

    def _link_matrix(self, child: str, time_ns: int | None, target: str, source: str) -> np.ndarray:
        link = self._links[child]
        if link.matrix is not None:
            return link.matrix
        if time_ns is None:
            return pose_matrix(link.poses[-1])
        times = link.times
        if not times[0] <= time_ns <= times[-1]:
            where = f"looking up {source!r} in {target!r}: /tf {link.parent!r} -> {child!r}"
            if time_ns > times[-1]:
                raise TransformError(f"{where} is late: newest at {times[-1]} ns, {(time_ns - times[-1]) / 1e6:.1f}"
                                     f" ms before the requested {time_ns} ns", kind="tf_late")
            raise TransformError(f"{where}: {time_ns} ns is older than the oldest sample kept ({times[0]} ns)",
                                 kind="tf_old")
        i = bisect.bisect_left(times, time_ns)
        if times[i] == time_ns:
            return pose_matrix(link.poses[i])
        s = (time_ns - times[i - 1]) / (times[i] - times[i - 1])
        return pose_matrix(_interpolate(link.poses[i - 1], link.poses[i], s))

    def _unconnected(self, target: str, source: str, up_target: list[str], up_source: list[str]) -> str:
        for frame in (source, target):
            if not self._knows(frame):
                return f"frame {frame!r} is unknown to TF (no /tf or /tf_static transform names it); looking up" \
                       f" {source!r} in {target!r}"
        return (f"{source!r} and {target!r} are not connected in TF (their roots are {up_source[-1]!r} and"
                f" {up_target[-1]!r})")
