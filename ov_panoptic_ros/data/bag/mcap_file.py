"""MCAP attachments (read and add) and salvage of a file cut short (a recorder killed mid-drive)."""
from __future__ import annotations

import io
import os
import struct
import time
from pathlib import Path
from typing import Iterator

from rosbags.interfaces import Connection, ConnectionExtRosbag2
from rosbags.rosbag2.storage_mcap import Schema, decompress, get_msgdef, get_qos

from ov_panoptic_ros.data.bag.errors import BagCorruptError, BagError

MCAP_MAGIC = b"\x89MCAP0\r\n"


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
