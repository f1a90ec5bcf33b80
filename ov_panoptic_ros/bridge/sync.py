"""LiDAR-master time synchronization of camera images, without rclpy and without a clock of its own.

`CameraSynchronizer` matches buffered images to a cloud stamp (nearest within `max_offset_s`, after
each camera's calibrated `time_offset_s`). `FrameAssembler` adds the waiting policy the node uses:
a cloud waits at most `camera_timeout_s` (measured on the caller's monotonic clock) for its cameras
and is then processed with whichever arrived. Unlike message_filters' ApproximateTime, one late or
dead camera never drops the frame. The offline replay can use either class with its own notion of now.

Stamps are integer nanoseconds. Items are opaque (the node stores raw messages and converts only
the images a frame actually uses). What a camera's buffer holds is bounded three ways: by time (images
more than `buffer_s` older than the camera's newest one can only match clouds that arrive that late),
by bytes (`max_bytes`, the caller says each item's size) and by count; the newest image always stays.
Without the first two, 30 raw 1600x900 images per camera held 780 MB for a 6-camera rig.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ov_panoptic_ros.bridge.stamps import NS

# Defaults of the node's sync.* parameters, which the offline replay uses too so it sees what the node would.
DEFAULT_MAX_OFFSET_S = 0.05
DEFAULT_CAMERA_TIMEOUT_S = 0.1
DEFAULT_JUMP_THRESHOLD_S = 1.0
DEFAULT_BUFFER_S = 0.5  # a cloud may arrive this long after its images (sweep time + transport)
DEFAULT_BUFFER_MB = 32.0  # per camera: 7 raw 1600x900 rgb8 images


@dataclass
class _Buffer:
    items: deque  # of (corrected_stamp_ns, item, nbytes); bounded
    newest_ns: int | None = None
    nbytes: int = 0

    def clear(self) -> None:
        self.items.clear()
        self.newest_ns = None
        self.nbytes = 0

    def keep(self, kept: list) -> None:
        self.items.clear()
        self.items.extend(kept)
        self.newest_ns = max((s for s, _, _ in kept), default=None)
        self.nbytes = sum(n for _, _, n in kept)


class CameraSynchronizer:
    """Bounded per-camera buffers and nearest-in-time matching against a LiDAR stamp.

    Each camera keeps at most `buffer_size` images, `max_bytes` bytes (as given to `add`) and the images
    within `buffer_s` of its newest stamp; beyond that the oldest-stamped go first, never the newest.
    A backwards jump (a stamp older than the newest one seen from the same source by more than
    `jump_threshold_s`, e.g. a looping bag) drops the buffered items of the old timeline; each jump
    is counted in `time_jumps`.
    """

    def __init__(self, time_offsets_s: dict[str, float], max_offset_s: float = DEFAULT_MAX_OFFSET_S,
                 buffer_size: int = 30, jump_threshold_s: float = DEFAULT_JUMP_THRESHOLD_S,
                 buffer_s: float = DEFAULT_BUFFER_S, max_bytes: int = int(DEFAULT_BUFFER_MB * 2**20)):
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.offsets_ns = {name: int(round(off * NS)) for name, off in time_offsets_s.items()}
        self.max_offset_s = max_offset_s
        self.jump_threshold_s = jump_threshold_s
        self.buffer_s = buffer_s
        self.max_bytes = max_bytes
        self.buffer_size = buffer_size
        self._buffers = {name: _Buffer(deque()) for name in time_offsets_s}
        self._newest_cloud_ns: int | None = None
        self.time_jumps = 0

    @property
    def cameras(self) -> list[str]:
        return list(self._buffers)

    def _is_jump(self, stamp_ns: int, newest_ns: int | None) -> bool:
        return newest_ns is not None and stamp_ns < newest_ns - int(self.jump_threshold_s * NS)

    def add(self, camera: str, stamp_ns: int, item: Any, nbytes: int = 0) -> bool:
        """Buffer an image of `nbytes` bytes; False (and nothing buffered) for a camera this synchronizer
        does not know."""
        buf = self._buffers.get(camera)
        if buf is None:
            return False
        stamp = int(stamp_ns) + self.offsets_ns[camera]
        if self._is_jump(stamp, buf.newest_ns):
            buf.clear()
            self.time_jumps += 1
        buf.items.append((stamp, item, int(nbytes)))
        buf.nbytes += int(nbytes)
        buf.newest_ns = stamp if buf.newest_ns is None else max(buf.newest_ns, stamp)
        self._bound(buf)
        return True

    def _bound(self, buf: _Buffer) -> None:
        """Evict by time, then the oldest-stamped while over the byte or count bound (the newest stays)."""
        horizon = buf.newest_ns - int(self.buffer_s * NS)
        if any(s < horizon for s, _, _ in buf.items):
            buf.keep([entry for entry in buf.items if entry[0] >= horizon])
        while len(buf.items) > 1 and (buf.nbytes > self.max_bytes or len(buf.items) > self.buffer_size):
            oldest = min(buf.items, key=lambda entry: entry[0])
            buf.items.remove(oldest)
            buf.nbytes -= oldest[2]

    def buffered(self, camera: str) -> tuple[int, int]:
        """(images, bytes) buffered for a camera."""
        buf = self._buffers[camera]
        return len(buf.items), buf.nbytes

    def observe_cloud(self, stamp_ns: int) -> bool:
        """Note a cloud stamp; on a backwards jump drop every image newer than it (old timeline). True on a jump."""
        stamp_ns = int(stamp_ns)
        jumped = self._is_jump(stamp_ns, self._newest_cloud_ns)
        if jumped:
            self.time_jumps += 1
            horizon = stamp_ns + int(self.jump_threshold_s * NS)
            for buf in self._buffers.values():
                buf.keep([entry for entry in buf.items if entry[0] <= horizon])
            self._newest_cloud_ns = stamp_ns
        else:
            self._newest_cloud_ns = stamp_ns if self._newest_cloud_ns is None else max(self._newest_cloud_ns, stamp_ns)
        return jumped

    def best(self, camera: str, cloud_stamp_ns: int) -> tuple[int, Any] | None:
        """The buffered (corrected stamp, item) nearest to the cloud within max_offset_s, else None. Of two
        equally near, the earlier image: the choice must not depend on the order DDS delivered them in."""
        limit = int(self.max_offset_s * NS)
        best, best_key = None, None
        for stamp, item, _ in self._buffers[camera].items:
            key = (abs(stamp - cloud_stamp_ns), stamp)
            if key[0] <= limit and (best_key is None or key < best_key):
                best, best_key = (stamp, item), key
        return best

    def match(self, cloud_stamp_ns: int, observe: bool = True) -> dict[str, Any]:
        """Per camera, the item nearest in time to the cloud within max_offset_s, or None."""
        cloud_stamp_ns = int(cloud_stamp_ns)
        if observe:
            self.observe_cloud(cloud_stamp_ns)
        out = {}
        for name in self._buffers:
            hit = self.best(name, cloud_stamp_ns)
            out[name] = None if hit is None else hit[1]
        return out

    def _period_ns(self, camera: str) -> int | None:
        stamps = sorted(s for s, _, _ in self._buffers[camera].items)
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]) if b > a)
        return gaps[len(gaps) // 2] if gaps else None

    def is_decided(self, camera: str, cloud_stamp_ns: int) -> bool:
        """Whether no image still to come can beat the current best match for this cloud.

        True once an image at or after the cloud stamp is buffered, or when the best earlier image is
        within 40% of the camera's period of the cloud (the next one, one period later, would be further).
        """
        items = self._buffers[camera].items
        if any(s >= cloud_stamp_ns for s, _, _ in items):
            return True
        hit = self.best(camera, cloud_stamp_ns)
        period = self._period_ns(camera)
        return hit is not None and period is not None and cloud_stamp_ns - hit[0] <= 0.4 * period

    def clear(self) -> None:
        for buf in self._buffers.values():
            buf.clear()
        self._newest_cloud_ns = None


@dataclass
class SyncedFrame:
    """A cloud and, per camera, its matched image item (None: no match within max_offset_s in time)."""

    stamp_ns: int
    cloud: Any
    images: dict[str, Any]
    waited_s: float
    missing: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    stamp_ns: int
    cloud: Any
    arrived_s: float


class FrameAssembler:
    """The node's waiting policy on top of a CameraSynchronizer.

    Each cloud waits until every camera is decided (see `CameraSynchronizer.is_decided`) and usable, or
    `camera_timeout_s` has passed since it arrived, then comes out of `poll` with the images that
    matched. A camera named in `awaiting` is not usable until `camera_usable` is called for it (the node:
    its first CameraInfo, which DDS may deliver after the first image); once a cloud has waited the whole
    timeout for it, later clouds no longer wait for it (a camera that never sends one costs one timeout,
    not one per frame). At most `max_pending` clouds wait; the oldest is dropped (counted) beyond that.
    """

    def __init__(self, sync: CameraSynchronizer, camera_timeout_s: float = DEFAULT_CAMERA_TIMEOUT_S,
                 max_pending: int = 4, awaiting: Iterable[str] = ()):
        self.sync = sync
        self.camera_timeout_s = camera_timeout_s
        self.max_pending = max_pending
        self.awaiting = set(awaiting)
        self._pending: deque[_Pending] = deque()
        self.sync_misses = {name: 0 for name in sync.cameras}
        self.dropped_pending = 0  # clouds dropped while waiting: too many pending, or old timeline
        self.released = 0  # clouds that came out of `poll`
        self.incomplete = 0  # of those, clouds that came out without an image of some camera

    def add_cloud(self, stamp_ns: int, cloud: Any, now_s: float) -> None:
        stamp_ns = int(stamp_ns)
        if self.sync.observe_cloud(stamp_ns):  # backwards jump: pending clouds are from the old timeline
            self.dropped_pending += len(self._pending)
            self._pending.clear()
        self._pending.append(_Pending(stamp_ns, cloud, now_s))
        while len(self._pending) > self.max_pending:
            self._pending.popleft()
            self.dropped_pending += 1

    def add_image(self, camera: str, stamp_ns: int, item: Any, nbytes: int = 0) -> bool:
        return self.sync.add(camera, stamp_ns, item, nbytes)

    def camera_usable(self, camera: str) -> None:
        """Clouds stop waiting for this camera's prerequisite (see `awaiting`)."""
        self.awaiting.discard(camera)

    def reset(self) -> None:
        """Forget waiting clouds and buffered images (the node stops processing); counters stay."""
        self._pending.clear()
        self.sync.clear()

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    def _ready(self, p: _Pending, now_s: float) -> bool:
        if now_s - p.arrived_s >= self.camera_timeout_s:
            return True
        return not self.awaiting and all(self.sync.is_decided(c, p.stamp_ns) for c in self.sync.cameras)

    def poll(self, now_s: float) -> list[SyncedFrame]:
        """Clouds whose wait is over, in arrival order, with their matched images."""
        out, still = [], deque()
        for p in self._pending:
            if not self._ready(p, now_s):
                still.append(p)
                continue
            self.awaiting.clear()  # released: by the timeout (then given up on) or with nothing awaited
            images = self.sync.match(p.stamp_ns, observe=False)
            missing = [c for c, item in images.items() if item is None]
            for c in missing:
                self.sync_misses[c] += 1
            self.released += 1
            self.incomplete += bool(missing)
            out.append(SyncedFrame(p.stamp_ns, p.cloud, images, now_s - p.arrived_s, missing))
        self._pending = still
        return out

    def next_deadline_s(self) -> float | None:
        """When the oldest pending cloud stops waiting (for a caller that sleeps instead of polling)."""
        return min((p.arrived_s + self.camera_timeout_s for p in self._pending), default=None)
