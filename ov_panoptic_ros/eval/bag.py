"""The evaluation bag layout: write it (from the synthetic world or your own code) and read it back.

A rosbag2 (MCAP or sqlite3, read and written with `rosbags`, no ROS install needed) holding the LiDAR
PointCloud2, per camera an Image or CompressedImage and a CameraInfo, the calibration YAML (a latched
std_msgs/String and, in MCAP, also an attachment), the ground truth as a PointCloud2 with `label` and
`instance_id` per LiDAR point, and the ground-truth class list as a latched std_msgs/String JSON.
docs/bag_layout.md is the user-facing description; this module is the one implementation of it.

Reading is lazy and time-ordered (constant memory over a long drive). A bag whose MCAP file was cut
short (a recorder killed mid-drive) is salvaged up to the last complete record and flagged, so the
frames before the damage are still evaluated.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import Schema, decompress, get_msgdef, get_qos
from rosbags.typesys import Stores, get_typestore

from ov_panoptic_ros.core.calibration import Calibration, CalibrationError, parse_calibration
from ov_panoptic_ros.eval.metrics import ClassInfo

MCAP_MAGIC = b"\x89MCAP0\r\n"
CALIBRATION_ATTACHMENT = "calibration.yaml"
GT_CLASSES_FORMAT = "ov_panoptic/gt_classes"
STORAGES = ("mcap", "sqlite3")
_TYPESTORE = None


def typestore():
    """The Kilted typestore (built once: building it parses every message definition)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_KILTED)
    return _TYPESTORE


# --------------------------------------------------------------------------------------------------
# Errors: every one carries a message meant for the user, never a traceback.
# --------------------------------------------------------------------------------------------------
class BagError(Exception):
    """A bag that cannot be used; the message says which bag and why."""


class BagNotFoundError(BagError):
    pass


class BagCorruptError(BagError):
    pass


class BagReadError(BagCorruptError):
    """Reading failed part-way; `messages_read` messages came out before the fault."""

    def __init__(self, message: str, messages_read: int = 0):
        super().__init__(message)
        self.messages_read = messages_read


class MissingTopicsError(BagError):
    def __init__(self, path: Path, missing: list[str], available: dict[str, str]):
        self.missing = list(missing)
        listing = "\n".join(f"    {t}  [{ty}]" for t, ty in sorted(available.items())) or "    (none)"
        super().__init__(
            f"bag {path} lacks the topic(s) this needs: {', '.join(self.missing)}\n"
            f"  topics in the bag:\n{listing}\n"
            f"  (topic names are configurable: see docs/bag_layout.md)"
        )


# --------------------------------------------------------------------------------------------------
# Topic names
# --------------------------------------------------------------------------------------------------
@dataclass
class BagTopics:
    """Topic names of the layout. `{camera}` is replaced by each camera name of the calibration."""

    lidar: str = "/lidar/points"
    image: str = "/{camera}/image_raw"  # a CompressedImage may sit here or at this + "/compressed"
    camera_info: str = "/{camera}/camera_info"
    calibration: str = "/ov_panoptic/calibration"
    ground_truth: str = "/ov_panoptic/ground_truth"
    gt_classes: str = "/ov_panoptic/gt_classes"

    def image_topic(self, camera: str, compressed: bool = False) -> str:
        topic = self.image.format(camera=camera)
        return topic + "/compressed" if compressed and not topic.endswith("/compressed") else topic

    def info_topic(self, camera: str) -> str:
        return self.camera_info.format(camera=camera)

    @classmethod
    def from_mapping(cls, data: dict | None) -> BagTopics:
        """From a YAML/CLI mapping; unknown keys are errors so a typo does not silently use a default."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise BagError(f"unknown topic key(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: str(v) for k, v in data.items()})


@dataclass
class CameraTopics:
    name: str
    image_topic: str
    compressed: bool
    info_topic: str


@dataclass
class BagLayout:
    """What the evaluation needs, resolved against one bag."""

    lidar_topic: str
    cameras: list[CameraTopics]
    calibration: Calibration
    calibration_text: str
    calibration_source: str
    ground_truth_topic: str | None = None
    classes: ClassInfo | None = None

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]


# --------------------------------------------------------------------------------------------------
# Ground-truth class list (the latched JSON topic)
# --------------------------------------------------------------------------------------------------
def gt_classes_to_json(classes: ClassInfo) -> str:
    """The `/ov_panoptic/gt_classes` payload: one entry per ground-truth label index."""
    ignored = set(classes.ignore)
    entries = [
        {"name": n, "thing": t, "novel": nv, "ignore": i in ignored}
        for i, (n, t, nv) in enumerate(zip(classes.names, classes.is_thing, classes.is_novel))
    ]
    return json.dumps({"format": GT_CLASSES_FORMAT, "version": 1, "classes": entries})


def gt_classes_from_json(text: str, source: str = "gt_classes") -> ClassInfo:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BagError(f"{source}: not valid JSON: {e}") from e
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BagError(f"{source}: expected a JSON object with a non-empty 'classes' list")
    names, thing, novel, ignore = [], [], [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise BagError(f"{source}: class {i} needs a non-empty string 'name', got {entry!r}")
        names.append(entry["name"].strip())
        thing.append(bool(entry.get("thing", False)))
        novel.append(bool(entry.get("novel", False)))
        if entry.get("ignore", False):
            ignore.append(i)
    try:
        return ClassInfo(tuple(names), tuple(thing), tuple(novel), tuple(ignore))
    except ValueError as e:
        raise BagError(f"{source}: {e}") from e


# --------------------------------------------------------------------------------------------------
# MCAP: attachments (read and add) and salvage of a file cut short
# --------------------------------------------------------------------------------------------------
def _u64(buf: bytes, pos: int) -> tuple[int, int]:
    return struct.unpack_from("<Q", buf, pos)[0], pos + 8


def _str(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return bytes(buf[pos + 4:pos + 4 + n]).decode(), pos + 4 + n


def _record(op: int, body: bytes) -> bytes:
    return bytes([op]) + struct.pack("<Q", len(body)) + body


def _pack_str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


def _read_footer(f) -> tuple[int, int]:
    """(summary_start, summary_offset_start) from an MCAP footer; BagCorruptError if there is none."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size < 8 + 9 + 20 + 8:
        raise BagCorruptError("file too short for an MCAP footer")
    f.seek(size - 8 - 29)
    tail = f.read(29 + 8)
    if tail[-8:] != MCAP_MAGIC or tail[0] != 0x02:
        raise BagCorruptError("MCAP footer missing (file truncated?)")
    summary_start, summary_offset_start = struct.unpack_from("<QQ", tail, 9)
    return summary_start, summary_offset_start


def _iter_records(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """(op, record offset, body) of consecutive MCAP records in buf[start:end]."""
    pos, end = start, len(buf) if end is None else end
    while pos + 9 <= end:
        op = buf[pos]
        (n,) = struct.unpack_from("<Q", buf, pos + 1)
        if pos + 9 + n > end:
            return
        yield op, pos, buf[pos + 9:pos + 9 + n]
        pos += 9 + n


def read_mcap_attachments(path: str | Path) -> dict[str, bytes]:
    """Attachments of an MCAP file by name, found through the summary's attachment index."""
    with open(path, "rb") as f:
        summary_start, summary_offset_start = _read_footer(f)
        if not summary_start:
            return {}
        f.seek(summary_start)
        summary = f.read(summary_offset_start - summary_start if summary_offset_start else -1)
        out = {}
        for op, _, body in _iter_records(summary):
            if op != 0x0A:  # AttachmentIndex
                continue
            offset, _ = _u64(body, 0)
            f.seek(offset)
            head = f.read(9)
            if len(head) != 9 or head[0] != 0x09:
                raise BagCorruptError(f"MCAP attachment index points at offset {offset}, which is no attachment")
            rec = f.read(struct.unpack_from("<Q", head, 1)[0])
            pos = 16  # log_time, create_time
            name, pos = _str(rec, pos)
            _, pos = _str(rec, pos)  # media type
            n, pos = _u64(rec, pos)
            out[name] = bytes(rec[pos:pos + n])
        return out


def add_mcap_attachment(path: str | Path, name: str, data: bytes, media_type: str = "text/plain") -> None:
    """Insert an attachment into a finished MCAP file (before DataEnd) and index it in the summary.

    rosbags writes no attachments; this rewrites the file once, shifting the summary offsets.
    """
    path = Path(path)
    buf = path.read_bytes()
    with open(path, "rb") as f:
        summary_start, summary_offset_start = _read_footer(f)
    data_end = (summary_start or len(buf) - 8 - 29) - 13
    if not summary_start or buf[data_end] != 0x0F:
        raise BagError(f"{path}: no summary section after DataEnd; cannot index an attachment")
    stamp = time.time_ns()
    body = struct.pack("<QQ", stamp, stamp) + _pack_str(name) + _pack_str(media_type)
    body += struct.pack("<Q", len(data)) + data + struct.pack("<I", 0)
    attachment = _record(0x09, body)
    index_body = struct.pack("<QQQQQ", data_end, len(attachment), stamp, stamp, len(data))
    index_body += _pack_str(name) + _pack_str(media_type)
    summary_end = summary_offset_start or len(buf) - 8 - 29
    records = [(op, bytes(b)) for op, _, b in _iter_records(buf, summary_start, summary_end)]
    records = [(op, _bump_attachment_count(b) if op == 0x0B else b) for op, b in records]
    records.append((0x0A, index_body))
    head = buf[:data_end] + attachment + buf[data_end:summary_start]
    _write_mcap_tail(path, head, records)


def _bump_attachment_count(stats: bytes) -> bytes:
    count = struct.unpack_from("<I", stats, 14)[0] + 1  # message_count u64, schema_count u16, channels u32
    return stats[:14] + struct.pack("<I", count) + stats[18:]


def _write_mcap_tail(path: Path, head: bytes, records: list[tuple[int, bytes]]) -> None:
    """Write head + summary records + summary offsets (one per run of equal opcodes) + footer + magic."""
    out = io.BytesIO()
    out.write(head)
    summary_start = out.tell()
    groups: list[list[int]] = []  # [op, start, length]
    for op, body in records:
        if not groups or groups[-1][0] != op:
            groups.append([op, out.tell(), 0])
        rec = _record(op, body)
        out.write(rec)
        groups[-1][2] += len(rec)
    offsets_start = out.tell()
    for op, start, length in groups:
        out.write(_record(0x0E, bytes([op]) + struct.pack("<QQ", start, length)))
    out.write(_record(0x02, struct.pack("<QQI", summary_start, offsets_start, 0)))
    out.write(MCAP_MAGIC)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(out.getvalue())
    tmp.replace(path)


class McapSalvage:
    """Reads an MCAP file without a valid footer record by record, up to the first damaged record.

    Used only when the normal reader refuses a file: a recorder killed mid-drive leaves exactly this.
    """

    def __init__(self, path: Path):
        self.path = path
        self.schemas: dict[int, tuple[str, str, str]] = {}
        self.connections: dict[int, Connection] = {}
        self.counts: dict[int, int] = {}
        self.end = 8  # offset after the last complete top-level record
        self.reason = ""
        self.start_ns, self.end_ns = 2**63 - 1, 0
        with open(path, "rb") as f:
            head = f.read(8)
        if head != MCAP_MAGIC:
            raise BagCorruptError(f"{path} is not an MCAP file (bad magic)")
        for conn_id, stamp, _ in self._scan(collect=True):
            self.counts[conn_id] = self.counts.get(conn_id, 0) + 1
            self.start_ns, self.end_ns = min(self.start_ns, stamp), max(self.end_ns, stamp)

    def _scan(self, collect: bool) -> Iterator[tuple[int, int, bytes]]:
        """(channel id, log time, data) in file order, time-sorted within each chunk."""
        with open(self.path, "rb") as f:
            f.seek(8)
            while True:
                pos = f.tell()
                head = f.read(9)
                if len(head) < 9:
                    self._stop(collect, pos, "file ends inside a record header" if head else "")
                    return
                op, n = head[0], struct.unpack_from("<Q", head, 1)[0]
                body = f.read(n)
                if len(body) < n:
                    if op == 0x06:  # an uncompressed chunk cut short still holds its complete messages
                        yield from self._cut_chunk(body, collect)
                    self._stop(collect, pos, f"record at byte {pos} is cut short ({len(body)} of {n} bytes)")
                    return
                if op in (0x0F, 0x02):  # DataEnd or Footer: the data section is complete
                    self._stop(collect, pos, "")
                    return
                try:
                    yield from self._records(op, body, collect)
                except Exception as e:  # a damaged record: anything may fail while parsing it
                    self._stop(collect, pos, f"record at byte {pos} is damaged ({e})")
                    return
                if collect:
                    self.end = f.tell()

    def _stop(self, collect: bool, pos: int, reason: str) -> None:
        if collect:
            size = self.path.stat().st_size
            reason = reason or f"the data section ends at byte {pos} without a footer"
            self.reason = f"MCAP file {self.path.name} ({size} bytes) is truncated or damaged: {reason}"

    def _records(self, op: int, body: bytes, collect: bool) -> Iterator[tuple[int, int, bytes]]:
        if op == 0x06:  # Chunk
            start, end, size, crc = struct.unpack_from("<QQQI", body, 0)
            compression, pos = _str(body, 28)
            n, pos = _u64(body, pos)
            raw = decompress(bytes(body[pos:pos + n]), compression, size, crc)
            msgs = []
            for inner_op, _, inner in _iter_records(raw):
                msgs.extend(self._records(inner_op, inner, collect))
            yield from sorted(msgs, key=lambda m: m[1])
        elif op == 0x05:  # Message
            channel, _, log_time, _ = struct.unpack_from("<HIQQ", body, 0)
            if channel in self.connections:
                yield channel, log_time, bytes(body[22:])
        elif op == 0x03 and collect:
            self._schema(body)
        elif op == 0x04 and collect:
            self._channel(body)

    def _cut_chunk(self, body: bytes, collect: bool) -> Iterator[tuple[int, int, bytes]]:
        try:
            compression, pos = _str(body, 28)
            _, pos = _u64(body, pos)
        except (struct.error, UnicodeDecodeError):
            return
        if compression:
            return
        msgs = []
        for op, _, inner in _iter_records(body, pos):
            msgs.extend(self._records(op, inner, collect))
        yield from sorted(msgs, key=lambda m: m[1])

    def _schema(self, body: bytes) -> None:
        (sid,) = struct.unpack_from("<H", body, 0)
        name, pos = _str(body, 2)
        encoding, pos = _str(body, pos)
        (n,) = struct.unpack_from("<I", body, pos)
        self.schemas[sid] = (name, encoding, bytes(body[pos + 4:pos + 4 + n]).decode())

    def _channel(self, body: bytes) -> None:
        cid, sid = struct.unpack_from("<HH", body, 0)
        topic, pos = _str(body, 4)
        encoding, pos = _str(body, pos)
        (n,) = struct.unpack_from("<I", body, pos)
        metadata = bytes(body[pos + 4:pos + 4 + n])
        name, sch_enc, sch_data = self.schemas.get(sid, ("", "", ""))
        msgdef = get_msgdef(Schema(sid, name, sch_enc, sch_data) if name else None)
        self.connections[cid] = Connection(cid, topic, name, msgdef, "", 0,
                                           ConnectionExtRosbag2(encoding, get_qos(metadata)), self)

    def messages(self) -> Iterator[tuple[Connection, int, bytes]]:
        for cid, stamp, data in self._scan(collect=False):
            yield self.connections[cid], stamp, data


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
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
        """Topics recorded with transient-local offered QoS, plus the layout's two latched topics."""
        return {c.topic for c in self.connections if _latched(c)} | {self.topics.calibration, self.topics.gt_classes}

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
        except (BagError, OSError, struct.error):
            return {}

    def calibration_text(self) -> tuple[str, str]:
        """(YAML text, where it came from): the latched topic first, then an MCAP attachment."""
        if self.topics.calibration in self.topic_types:
            msg = self.first_message(self.topics.calibration)
            if msg is not None:
                return str(msg.decode().data), f"topic {self.topics.calibration}"
        attached = self.attachments()
        if CALIBRATION_ATTACHMENT in attached:
            return attached[CALIBRATION_ATTACHMENT].decode(), f"MCAP attachment {CALIBRATION_ATTACHMENT}"
        raise BagError(
            f"bag {self.path} has no calibration: expected the topic {self.topics.calibration}"
            f" or an MCAP attachment named {CALIBRATION_ATTACHMENT} (or pass --calibration FILE)"
        )

    def gt_classes(self) -> ClassInfo:
        self.require([self.topics.gt_classes])
        msg = self.first_message(self.topics.gt_classes)
        if msg is None:
            raise BagError(f"bag {self.path}: topic {self.topics.gt_classes} has no message")
        return gt_classes_from_json(str(msg.decode().data), f"bag {self.path}, topic {self.topics.gt_classes}")

    def layout(self, need_ground_truth: bool = True, calibration_file: str | Path | None = None) -> BagLayout:
        """Resolve every topic the evaluation needs; one error names all that are missing."""
        if calibration_file is not None:
            try:
                text, source = Path(calibration_file).read_text(), str(calibration_file)
            except OSError as e:
                raise BagError(f"calibration file {calibration_file}: {e.strerror or e}") from e
        else:
            text, source = self.calibration_text()
        try:
            calibration = parse_calibration(text, source)
        except CalibrationError as e:
            raise BagError(str(e)) from e
        types = self.topic_types
        missing = [] if self.topics.lidar in types else [self.topics.lidar]
        cameras = []
        for name in calibration.cameras:
            cam = self._camera_topics(name, types)
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

    def _camera_topics(self, name: str, types: dict[str, str]) -> CameraTopics | None:
        info = self.topics.info_topic(name)
        for compressed in (False, True):
            topic = self.topics.image_topic(name, compressed)
            kind = types.get(topic, "")
            if kind.endswith("/CompressedImage"):
                return CameraTopics(name, topic, True, info)
            if kind.endswith("/Image"):
                return CameraTopics(name, topic, False, info)
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


# --------------------------------------------------------------------------------------------------
# PointCloud2 field access: thin adapters over the public API of ros/messages.py, which owns the
# PointCloud2 layout (read_fields for the ground-truth label / instance_id, pack_cloud for the input cloud).
# --------------------------------------------------------------------------------------------------
def read_cloud_fields(msg, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Named fields of a PointCloud2 as contiguous, writable copies (scores and samples may outlive the
    message). A missing field raises messages.CloudError (kind `cloud_missing_field`) naming it."""
    from ov_panoptic_ros.ros.messages import read_fields

    return {name: np.array(view) for name, view in read_fields(msg, names).items()}


def pack_lidar_cloud(xyz: np.ndarray, intensity: np.ndarray | None):
    """x, y, z[, intensity] float32 -> messages.PackedCloud (what a LiDAR driver publishes)."""
    from ov_panoptic_ros.ros.messages import pack_cloud

    xyz = np.asarray(xyz, dtype=np.float32)
    columns = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    if intensity is not None:
        columns["intensity"] = np.asarray(intensity, dtype=np.float32)
    return pack_cloud(columns)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
LATCHED_QOS = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                  QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
SENSOR_QOS = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE,
                 QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


def storage_for(path: Path, storage: str | None) -> str:
    """The storage of a bag path: given, or from a .mcap / .db3 suffix, else MCAP."""
    by_suffix = {".mcap": "mcap", ".db3": "sqlite3"}.get(path.suffix)
    if storage is None:
        return by_suffix or "mcap"
    if storage not in STORAGES:
        raise BagError(f"unknown bag storage {storage!r}; choose from {', '.join(STORAGES)}")
    if by_suffix and by_suffix != storage:
        raise BagError(f"bag path {path} has the suffix of {by_suffix} storage but storage={storage!r}")
    return storage


class BagWriter:
    """A rosbags Writer that takes typestore messages by topic name.

    A path ending in .mcap / .db3 becomes that single file (what Foxglove opens directly); any other
    path becomes a rosbag2 directory. Closing always finalizes the bag, so a run that stops early
    still leaves a readable bag with everything written so far.
    """

    def __init__(self, path: str | Path, storage: str | None = None):
        self.path = Path(path)
        self.storage = storage_for(self.path, storage)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; not overwriting it")
        self.single_file = self.path.suffix in (".mcap", ".db3")
        self._tmp = tempfile.mkdtemp(prefix=".bagwrite-", dir=self.path.parent) if self.single_file else None
        target = Path(self._tmp) / "bag" if self.single_file else self.path
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(target, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self._writer.open()
        self._conns: dict[str, Connection] = {}
        self.closed = False

    def add_topic(self, topic: str, msgtype: str, latched: bool = False) -> None:
        if topic in self._conns:
            return
        qos = [LATCHED_QOS if latched else SENSOR_QOS]
        self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore(),
                                                         offered_qos_profiles=qos)

    def write(self, topic: str, stamp_ns: int, msg) -> None:
        self.add_topic(topic, msg.__msgtype__)
        self.write_raw(topic, stamp_ns, typestore().serialize_cdr(msg, msg.__msgtype__))

    def write_raw(self, topic: str, stamp_ns: int, data: bytes) -> None:
        self._writer.write(self._conns[topic], int(stamp_ns), data)

    def close(self) -> Path:
        """Finalize; returns the bag path (the single file, or the directory)."""
        if self.closed:
            return self.path
        self.closed = True
        self._writer.close()
        if self.single_file:
            produced = next(p for p in (Path(self._tmp) / "bag").iterdir() if p.suffix in (".mcap", ".db3"))
            shutil.move(str(produced), self.path)
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self.path

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def mcap_file(self) -> Path | None:
        if self.storage != "mcap":
            return None
        return self.path if self.single_file else next(self.path.glob("*.mcap"), None)


# Message builders (rosbags typestore classes) ------------------------------------------------------
def ros_types():
    return typestore().types


def header(stamp_ns: int, frame_id: str):
    t = ros_types()
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                    frame_id=frame_id)


def string_msg(text: str):
    return ros_types()["std_msgs/msg/String"](data=text)


def cloud_msg(packed, stamp_ns: int, frame_id: str):
    from ov_panoptic_ros.ros.messages import to_pointcloud2

    t = ros_types()
    return to_pointcloud2(packed, header(stamp_ns, frame_id), t["sensor_msgs/msg/PointCloud2"],
                          t["sensor_msgs/msg/PointField"])


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str):
    h, w, _ = rgb.shape
    return ros_types()["sensor_msgs/msg/Image"](
        header=header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3,
        data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1))


def compressed_image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, fmt: str = "jpeg"):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG" if fmt == "jpeg" else "PNG", quality=95)
    return ros_types()["sensor_msgs/msg/CompressedImage"](
        header=header(stamp_ns, frame_id), format=fmt, data=np.frombuffer(buf.getvalue(), dtype=np.uint8))


def camera_info_msg(info, stamp_ns: int, frame_id: str):
    """From data.synthetic.CameraInfoData (or anything with width, height, K, D, distortion_model)."""
    K = np.asarray(info.K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    t = ros_types()
    return t["sensor_msgs/msg/CameraInfo"](
        header=header(stamp_ns, frame_id), height=int(info.height), width=int(info.width),
        distortion_model=str(info.distortion_model), d=np.asarray(info.D, dtype=np.float64),
        k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0, binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


# --------------------------------------------------------------------------------------------------
# A synthetic drive in the layout
# --------------------------------------------------------------------------------------------------
@dataclass
class SyntheticBagInfo:
    path: Path
    storage: str
    stamps_ns: list[int]  # LiDAR (and ground-truth) header stamps, one per frame
    cameras: list[str]
    classes: ClassInfo
    topics: BagTopics
    num_points: list[int]


def synthetic_classes() -> ClassInfo:
    from ov_panoptic_ros.data.synthetic import CLASSES, NOVEL, STUFF

    return ClassInfo.from_names(CLASSES, things=[c for c in CLASSES if c not in STUFF], novel=NOVEL)


def write_synthetic_bag(path: str | Path, n_frames: int = 6, storage: str | None = None, seed: int = 0,
                        num_points: int = 4000, num_cameras: int = 2, image_size: tuple[int, int] = (160, 120),
                        rate_hz: float = 10.0, compressed: bool = False, topics: BagTopics | None = None,
                        camera_delay_s: float = 0.004, ground_truth: bool = True,
                        attach_calibration: bool = True) -> SyntheticBagInfo:
    """Record a synthetic drive (data.synthetic) in the evaluation layout; used by tests, demo, benchmarks.

    Images are stamped `camera_delay_s` after their cloud (a realistic trigger skew the synchronizer
    must absorb); every message is logged 5 ms after its stamp, as a recorder would receive it.
    """
    from ov_panoptic_ros.data.synthetic import scene_sequence

    if n_frames < 1:
        raise BagError("n_frames must be at least 1")
    topics = topics or BagTopics()
    classes = synthetic_classes()
    info = SyntheticBagInfo(Path(path), storage_for(Path(path), storage), [], [], classes, topics, [])
    with BagWriter(path, info.storage) as writer:
        for i, scene in enumerate(scene_sequence(n_frames, seed=seed, rate_hz=rate_hz, num_points=num_points,
                                                 num_cameras=num_cameras, image_size=image_size)):
            if i == 0:
                _write_latched(writer, scene, classes, topics)
                info.cameras = [c.name for c in scene.frame.cameras]
            _write_frame(writer, scene, topics, compressed, camera_delay_s, ground_truth)
            info.stamps_ns.append(scene.frame.stamp_ns)
            info.num_points.append(scene.frame.num_points)
            calibration_yaml = scene.calibration.to_yaml()
        mcap = writer.mcap_file()
    if attach_calibration and mcap is not None:
        add_mcap_attachment(mcap, CALIBRATION_ATTACHMENT, calibration_yaml.encode(), "application/yaml")
    return info


def _write_latched(writer: BagWriter, scene, classes: ClassInfo, topics: BagTopics) -> None:
    stamp = scene.frame.stamp_ns - 1_000_000  # before the first frame, as a latched publisher is
    writer.add_topic(topics.calibration, "std_msgs/msg/String", latched=True)
    writer.write(topics.calibration, stamp, string_msg(scene.calibration.to_yaml()))
    writer.add_topic(topics.gt_classes, "std_msgs/msg/String", latched=True)
    writer.write(topics.gt_classes, stamp, string_msg(gt_classes_to_json(classes)))


def _write_frame(writer: BagWriter, scene, topics: BagTopics, compressed: bool, camera_delay_s: float,
                 ground_truth: bool) -> None:
    from ov_panoptic_ros.core.frame import class_color
    from ov_panoptic_ros.ros.messages import pack_panoptic_cloud

    frame, log_lag = scene.frame, 5_000_000
    stamp = frame.stamp_ns
    out = [(stamp + log_lag, topics.lidar,
            cloud_msg(pack_lidar_cloud(frame.points, frame.intensity), stamp, frame.frame_id))]
    if ground_truth:
        palette = np.array([class_color(n) for n in scene.classes], dtype=np.uint8)
        gt = pack_panoptic_cloud(frame.points, None, scene.gt_labels, scene.gt_instance_ids,
                                 np.ones(frame.num_points, np.float32), palette)
        out.append((stamp + log_lag, topics.ground_truth, cloud_msg(gt, stamp, frame.frame_id)))
    for k, (cam, rgb, cinfo) in enumerate(zip(frame.cameras, frame.images, scene.camera_infos)):
        cam_stamp = stamp + int(camera_delay_s * 1e9) * (k + 1)
        img = compressed_image_msg(rgb, cam_stamp, cam.name) if compressed else image_msg(rgb, cam_stamp, cam.name)
        out.append((cam_stamp + log_lag, topics.info_topic(cam.name), camera_info_msg(cinfo, cam_stamp, cam.name)))
        out.append((cam_stamp + log_lag, topics.image_topic(cam.name, compressed), img))
    for log_time, topic, msg in sorted(out, key=lambda x: x[0]):  # a recorder writes in arrival order
        writer.write(topic, log_time, msg)
