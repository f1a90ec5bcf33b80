"""Reading a rosbag2 lazily in time order, with the wall time spent on storage and deserialization.

A bag whose MCAP file was cut short is salvaged up to the last complete record and flagged, so the
frames before the damage are still evaluated.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from rosbags.interfaces import Connection, QosDurability
from rosbags.rosbag2 import Reader

from ov_panoptic_ros.core.calibration import Calibration, CalibrationError, parse_calibration
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.data.bag.errors import (
    BagCorruptError,
    BagError,
    BagNotFoundError,
    BagReadError,
    MissingTopicsError,
    topic_listing,
)
from ov_panoptic_ros.data.bag.layout import (
    CALIBRATION_ATTACHMENT,
    BagLayout,
    BagTopics,
    CameraTopics,
    gt_classes_from_json,
    rectified_by_name,
)
from ov_panoptic_ros.data.bag.mcap_file import McapSalvage, read_mcap_attachments
from ov_panoptic_ros.data.bag.typestore import typestore


@dataclass
class BagMessage:
    """One recorded message; `decode()` deserializes on demand (replay skips what it does not need)."""

    topic: str
    msgtype: str
    log_time_ns: int
    raw: bytes
    _reader: BagReader = field(repr=False, default=None)
    _decoded: object = field(repr=False, default=None)

    def decode(self):
        """The deserialized message (cached: replay looks at a cloud's header before its points)."""
        if self._decoded is None:
            self._decoded = self._reader.decode(self)
        return self._decoded


def _latched(conn: Connection) -> bool:
    ext = conn.ext
    qos = getattr(ext, "offered_qos_profiles", None) or []
    return any(q.durability == QosDurability.TRANSIENT_LOCAL for q in qos)


class BagReader:
    """A rosbag2 (directory, .mcap or .db3) opened for the evaluation layout.

    Tracks the wall time spent reading (`read_s`) and deserializing (`decode_s`) so replay can
    report whether the bag is the bottleneck.
    """

    def __init__(self, path: str | Path, topics: BagTopics | None = None):
        self.path = Path(path)
        self.topics = topics or BagTopics()
        self.read_s = 0.0
        self.decode_s = 0.0
        self.bytes_read = 0
        self.partial_reason: str | None = None  # set when a damaged file is read by salvage
        self._reader: Reader | None = None
        self._salvage: McapSalvage | None = None
        self._open()

    # ---------------------------------------------------------------- opening
    def _open(self) -> None:
        if not self.path.exists():
            raise BagNotFoundError(f"bag {self.path} does not exist")
        t0 = time.perf_counter()
        try:
            reader = Reader(self.path)
            reader.open()
            self._reader = reader
        except Exception as e:  # rosbags raises ReaderError, FileNotFoundError, apsw and yaml errors
            self._try_salvage(e)
        self.read_s += time.perf_counter() - t0

    def _mcap_files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(self.path.glob("*.mcap"))
        return [self.path] if self.path.suffix == ".mcap" else []

    def _try_salvage(self, error: Exception) -> None:
        files = self._mcap_files()
        detail = f"{type(error).__name__}: {error}" if not isinstance(error, BagError) else str(error)
        if len(files) != 1:
            hint = ""
            if self.path.is_dir() and not any(self.path.iterdir()):
                hint = " (the directory is empty)"
            elif self.path.is_dir() and not list(self.path.glob("*.db3")) and not files:
                hint = " (no .mcap or .db3 file in it)"
            raise BagCorruptError(f"cannot read bag {self.path}: {detail}{hint}") from error
        try:
            salvage = McapSalvage(files[0])
        except (OSError, BagError) as e:
            raise BagCorruptError(f"cannot read bag {self.path}: {detail}") from e
        if not salvage.counts:
            raise BagCorruptError(f"cannot read bag {self.path}: {detail}; no complete message could be salvaged")
        self._salvage = salvage
        self.partial_reason = f"{salvage.reason}; read the {sum(salvage.counts.values())} complete messages before it"

    def close(self) -> None:
        if self._reader is not None and self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- metadata
    @property
    def connections(self) -> list[Connection]:
        if self._salvage is not None:
            return list(self._salvage.connections.values())
        return list(self._reader.connections)

    @property
    def storage(self) -> str:
        files = self._mcap_files()
        return "mcap" if files else "sqlite3"

    @property
    def topic_types(self) -> dict[str, str]:
        return {c.topic: c.msgtype for c in self.connections}

    @property
    def message_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.connections:
            n = self._salvage.counts.get(c.id, 0) if self._salvage else c.msgcount
            counts[c.topic] = counts.get(c.topic, 0) + n
        return counts

    @property
    def latched_topics(self) -> set[str]:
        """Topics recorded with transient-local offered QoS, plus the layout's latched topics: the calibration, the
        class list and /tf_static (latched by tf2's rules, whatever QoS a recorder wrote down, or none)."""
        return ({c.topic for c in self.connections if _latched(c)}
                | {self.topics.calibration, self.topics.gt_classes, self.topics.tf_static})

    @property
    def start_ns(self) -> int:
        return self._salvage.start_ns if self._salvage else self._reader.start_time

    @property
    def end_ns(self) -> int:
        return self._salvage.end_ns + 1 if self._salvage else self._reader.end_time

    @property
    def size_bytes(self) -> int:
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        return self.path.stat().st_size

    def require(self, topics: Iterable[str]) -> None:
        missing = [t for t in topics if t not in self.topic_types]
        if missing:
            raise MissingTopicsError(self.path, missing, self.topic_types)

    # ---------------------------------------------------------------- messages
    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Time-ordered messages of `topics` (all when None), read lazily; damage raises BagReadError."""
        wanted = None if topics is None else set(topics)
        conns = [c for c in self.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        source = self._salvage.messages() if self._salvage else self._reader.messages(conns)
        yield from self._timed(source, wanted)

    def _timed(self, source, wanted: set[str] | None) -> Iterator[BagMessage]:
        count = 0
        while True:
            t0 = time.perf_counter()
            try:
                conn, stamp, data = next(source)
            except StopIteration:
                return
            except Exception as e:  # any failure inside the storage reader means the rest is unreadable
                raise BagReadError(
                    f"bag {self.path} is damaged: reading stopped after {count} messages"
                    f" ({type(e).__name__}: {e})", count) from e
            finally:
                self.read_s += time.perf_counter() - t0
            if wanted is not None and conn.topic not in wanted:
                continue
            count += 1
            self.bytes_read += len(data)
            yield BagMessage(conn.topic, conn.msgtype, stamp, data, self)

    def decode(self, msg: BagMessage):
        """Deserialize with the Kilted typestore; a damaged payload raises BagError naming the topic."""
        t0 = time.perf_counter()
        try:
            return typestore().deserialize_cdr(msg.raw, msg.msgtype)
        except KeyError as e:
            raise BagError(f"topic {msg.topic}: message type {msg.msgtype} is unknown to the typestore") from e
        except Exception as e:
            raise BagError(f"topic {msg.topic}: cannot deserialize the message at {msg.log_time_ns} ns ({e})") from e
        finally:
            self.decode_s += time.perf_counter() - t0

    def first_message(self, topic: str) -> BagMessage | None:
        for msg in self.messages([topic]):
            return msg
        return None

    # ---------------------------------------------------------------- layout
    def attachments(self) -> dict[str, bytes]:
        files = self._mcap_files()
        if len(files) != 1 or self._salvage is not None:
            return {}
        try:
            return read_mcap_attachments(files[0])
        except (BagError, OSError):
            return {}

    def find_calibration_text(self) -> tuple[str, str] | None:
        """(YAML text, where it came from), or None: the latched topic first, then an MCAP attachment."""
        if self.topics.calibration in self.topic_types:
            msg = self.first_message(self.topics.calibration)
            if msg is not None:
                return str(msg.decode().data), f"topic {self.topics.calibration}"
        attached = self.attachments()
        if CALIBRATION_ATTACHMENT in attached:
            return attached[CALIBRATION_ATTACHMENT].decode(), f"MCAP attachment {CALIBRATION_ATTACHMENT}"
        return None

    def _no_calibration(self, tf_cameras: bool) -> str:
        message = (f"bag {self.path} has no calibration: expected the topic {self.topics.calibration}"
                   f" or an MCAP attachment named {CALIBRATION_ATTACHMENT} (or pass --calibration FILE)")
        if tf_cameras:
            message += (f"; without one, cameras found by the image topic pattern are placed by TF, and the bag has"
                        f" neither {self.topics.tf_static} nor {self.topics.tf}")
        return message

    def gt_classes(self) -> ClassInfo:
        self.require([self.topics.gt_classes])
        msg = self.first_message(self.topics.gt_classes)
        if msg is None:
            raise BagError(f"bag {self.path}: topic {self.topics.gt_classes} has no message")
        return gt_classes_from_json(str(msg.decode().data), f"bag {self.path}, topic {self.topics.gt_classes}")

    def layout(self, need_ground_truth: bool = True, calibration_file: str | Path | None = None,
               tf_cameras: bool = False, rectified: Iterable[str] = ()) -> BagLayout:
        """Resolve every topic the evaluation needs; one error names all that are missing.

        The calibration names the cameras. With `tf_cameras` (extrinsics may come from TF), a bag recorded by
        other tools, with no calibration but with TF, is usable too: its cameras are those the image topic
        pattern finds. A camera is rectified when its image topic says so (`rectified_by_name`) or it is
        named in `rectified`, for images rectified under another name."""
        calibration, text, source = self._calibration(calibration_file, tf_cameras)
        names = list(calibration.cameras) if calibration is not None else self._pattern_cameras()
        rectified = set(rectified)
        unknown = sorted(rectified - set(names))
        if unknown:
            raise BagError(f"--rectified names {unknown}, not cameras of bag {self.path} (its cameras: {names})")
        types = self.topic_types
        missing = [] if self.topics.lidar in types else [self.topics.lidar]
        cameras = []
        for name in names:
            cam = self._camera_topics(name, types, name in rectified)
            if cam is None:
                missing.append(f"{self.topics.image_topic(name)} (or {self.topics.image_topic(name, True)})")
            if self.topics.info_topic(name) not in types:
                missing.append(self.topics.info_topic(name))
            if cam is not None:
                cameras.append(cam)
        if need_ground_truth:
            missing += [t for t in (self.topics.ground_truth, self.topics.gt_classes) if t not in types]
        if missing:
            raise MissingTopicsError(self.path, missing, types)
        classes = self.gt_classes() if need_ground_truth else None
        return BagLayout(self.topics.lidar, cameras, calibration, text, source,
                         self.topics.ground_truth if need_ground_truth else None, classes)

    def _calibration(self, calibration_file: str | Path | None,
                     tf_cameras: bool) -> tuple[Calibration | None, str | None, str]:
        """(calibration, its YAML, where it came from): the file given, else the bag's; none only where TF may
        place the cameras and the bag has TF (without TF a missing calibration is an error, not a run with
        every camera left out)."""
        if calibration_file is not None:
            try:
                text, source = Path(calibration_file).read_text(), str(calibration_file)
            except OSError as e:
                raise BagError(f"calibration file {calibration_file}: {e.strerror or e}") from e
        else:
            found = self.find_calibration_text()
            if found is None:
                if tf_cameras and {self.topics.tf, self.topics.tf_static} & set(self.topic_types):
                    return None, None, f"none: cameras found by the topic pattern {self.topics.image}"
                raise BagError(self._no_calibration(tf_cameras))
            text, source = found
        try:
            return parse_calibration(text, source), text, source
        except CalibrationError as e:
            raise BagError(str(e)) from e

    def _pattern_cameras(self) -> list[str]:
        names = self.topics.cameras_in(self.topic_types)
        if not names:
            raise BagError(f"bag {self.path} has no calibration to name its cameras and no image topic matches"
                           f" {self.topics.image!r} ({{camera}} stands for a camera name: set the pattern with"
                           f" --image-topic or --topics FILE); topics in the bag: {topic_listing(self.topic_types)}")
        return names

    def _camera_topics(self, name: str, types: dict[str, str], rectified: bool) -> CameraTopics | None:
        info = self.topics.info_topic(name)
        for compressed in (False, True):
            topic = self.topics.image_topic(name, compressed)
            kind = types.get(topic, "")
            if kind.endswith(("/CompressedImage", "/Image")):
                return CameraTopics(name, topic, kind.endswith("/CompressedImage"), info,
                                    rectified or rectified_by_name(topic))
        return None


def open_bag(path: str | Path, topics: BagTopics | None = None, require: Iterable[str] = ()) -> BagReader:
    """Open a bag for reading (use as a context manager); raises BagError with a user-facing message.

    `require` names topics that must be there (MissingTopicsError lists every one that is not);
    `BagReader.layout()` checks the whole evaluation layout the same way.
    """
    reader = BagReader(path, topics)
    try:
        reader.require(require)
    except BagError:
        reader.close()
        raise
    return reader


