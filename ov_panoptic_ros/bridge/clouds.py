"""Reading PointCloud2 messages (rclpy or rosbags) into arrays, zero-copy where the layout allows.

Policy (the README's "Bad input"): a cloud above `max_points` points is rejected before its payload is
touched (default 1,000,000: a 2M-point cloud at 10 Hz is a misconfigured or merged source, not something
to slow the whole stack down with silently; raise the `max_points` parameter to accept it). The fields read
(x, y, z, intensity) must each be declared once and must not overlap: either would give wrong points. An
`intensity` with count > 1 (one value per return) gives its first element, the one RViz shows.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.bridge._interleave import interleave
from ov_panoptic_ros.bridge.buffers import as_uint8
from ov_panoptic_ros.bridge.problems import CloudError

# sensor_msgs/PointField datatypes
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
POINTFIELD_DTYPES = {
    INT8: np.dtype("i1"), UINT8: np.dtype("u1"), INT16: np.dtype("<i2"), UINT16: np.dtype("<u2"),
    INT32: np.dtype("<i4"), UINT32: np.dtype("<u4"), FLOAT32: np.dtype("<f4"), FLOAT64: np.dtype("<f8"),
}
DEFAULT_MAX_POINTS = 1_000_000


@dataclass
class CloudArrays:
    """A PointCloud2 as arrays. `xyz` may be a read-only strided view into the message payload."""

    xyz: np.ndarray  # (N, 3) float32, may contain NaN/inf
    intensity: np.ndarray | None  # (N,) float32; the first element of a field with count > 1
    finite: np.ndarray  # (N,) bool: all of x, y, z finite
    num_points: int

    @property
    def num_finite(self) -> int:
        return int(np.count_nonzero(self.finite))

    @property
    def all_finite(self) -> bool:
        return self.num_finite == self.num_points

    def finite_points(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Contiguous xyz and intensity of the finite points: what goes into a Frame."""
        if self.all_finite:
            return _contiguous(self.xyz), None if self.intensity is None else _contiguous(self.intensity)
        xyz = self.xyz[self.finite]
        return xyz, None if self.intensity is None else self.intensity[self.finite]


def _contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of an (N,) or (N, k) view, through the C kernel: numpy copies an unaligned
    strided view (a field of a 22-byte point) element by element, ~10x slower."""
    out = np.empty(a.shape, a.dtype)
    interleave(out, out.itemsize * (a.shape[1] if a.ndim == 2 else 1), a.shape[0], [(a, 0)])
    return out


def _field_table(msg, used: Iterable[str]) -> dict[str, tuple[int, int, int]]:
    """name -> (offset, datatype, count). A field that is read must be declared once (which `x` would it be?);
    others may repeat (PCL names padding `_`)."""
    table: dict[str, tuple[int, int, int]] = {}
    for f in msg.fields:
        name = str(f.name)
        if name in table and name in used:
            raise CloudError(f"field {name!r} is declared twice (offsets {table[name][0]} and {int(f.offset)})")
        table[name] = (int(f.offset), int(f.datatype), int(f.count))
    return table


def _check_cloud_header(msg, fields: dict, max_points: int) -> int:
    """Reject what can be rejected without touching the payload; return the point count."""
    missing = [a for a in "xyz" if a not in fields]
    if missing:
        raise CloudError(
            f"PointCloud2 has no {'/'.join(missing)} field(s); fields are {sorted(fields) or 'none'}",
            kind="cloud_missing_xyz",
        )
    if msg.is_bigendian:
        raise CloudError("big-endian PointCloud2 is not supported", kind="cloud_big_endian")
    for a in "xyz":
        if fields[a][1] != FLOAT32 or fields[a][2] != 1:
            raise CloudError(
                f"field {a!r} must be one float32 (datatype {FLOAT32}),"
                f" got datatype {fields[a][1]} count {fields[a][2]}",
                kind="cloud_bad_field_type",
            )
    n = int(msg.width) * int(msg.height)
    if n > max_points:
        raise CloudError(
            f"cloud has {n} points, more than max_points={max_points}; raise the max_points parameter to accept it",
            kind="cloud_too_large",
        )
    return n


def _check_cloud_layout(msg, fields: dict, used: Iterable[str], n: int, data_len: int) -> None:
    step, row_step, width, height = int(msg.point_step), int(msg.row_step), int(msg.width), int(msg.height)
    spans = {}  # name -> (first byte, end byte) within a point
    for name, (offset, datatype, count) in fields.items():
        size = POINTFIELD_DTYPES[datatype].itemsize if datatype in POINTFIELD_DTYPES else None
        if size is None:
            raise CloudError(f"field {name!r} has unknown datatype {datatype}")
        spans[name] = (offset, offset + size * max(count, 1))
        if offset < 0 or spans[name][1] > step:
            raise CloudError(f"field {name!r} (offset {offset}) does not fit in point_step {step}")
    read = sorted((spans[name], name) for name in set(used) if name in spans)
    for ((_, end), a), ((start, _), b) in zip(read, read[1:]):  # sorted by start: a neighbour overlaps if any does
        if start < end:
            raise CloudError(f"fields {a!r} and {b!r} overlap: {a!r} spans bytes {spans[a][0]}-{end - 1},"
                             f" {b!r} starts at {start}")
    if n and row_step < width * step:
        raise CloudError(f"row_step {row_step} is smaller than width*point_step = {width}*{step}")
    if data_len != row_step * height:
        raise CloudError(
            f"data has {data_len} bytes but row_step*height = {row_step}*{height} = {row_step * height}"
        )


def _strided(buf: np.ndarray, offset: int, dtype: np.dtype, n: int, step: int, cols: int = 1) -> np.ndarray:
    """A view of `cols` consecutive `dtype` values per point, `step` bytes apart."""
    shape, strides = ((n,), (step,)) if cols == 1 else ((n, cols), (step, dtype.itemsize))
    return np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset, strides=strides)


def read_fields(msg, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Named fields of a PointCloud2 (rclpy or rosbags) as arrays, e.g. a ground-truth cloud's
    `label` and `instance_id`.

    Each array has the field's own dtype: (N,) for count 1, (N, count) otherwise. Zero-copy: read-only
    strided views into `msg.data`, except for clouds with padded rows (height > 1 and row_step >
    width * point_step), which are copied without the padding. Raises CloudError (kind
    `cloud_missing_field`) naming every missing field, and the same layout errors as `read_cloud`.
    """
    names = list(names)
    fields = _field_table(msg, names)
    missing = [n for n in names if n not in fields]
    if missing:
        raise CloudError(f"PointCloud2 has no {', '.join(repr(n) for n in missing)} field(s);"
                         f" fields are {sorted(fields) or 'none'}", kind="cloud_missing_field")
    if msg.is_bigendian:
        raise CloudError("big-endian PointCloud2 is not supported", kind="cloud_big_endian")
    width, height, step, row_step = int(msg.width), int(msg.height), int(msg.point_step), int(msg.row_step)
    n = width * height
    raw = as_uint8(msg.data)
    _check_cloud_layout(msg, fields, names, n, raw.size)
    out = {}
    for name in names:
        offset, datatype, count = fields[name]
        dtype = POINTFIELD_DTYPES[datatype]
        cols = max(count, 1)
        if n == 0:
            view = np.zeros((0,) if cols == 1 else (0, cols), dtype)
        elif height > 1 and row_step != width * step:  # padded rows: a 2-D view, flattened (a copy)
            shape = (height, width) + (() if cols == 1 else (cols,))
            strides = (row_step, step) + (() if cols == 1 else (dtype.itemsize,))
            view = np.ndarray(shape, dtype=dtype, buffer=raw, offset=offset, strides=strides).reshape(
                (n,) if cols == 1 else (n, cols))
        else:
            view = _strided(raw, offset, dtype, n, step, cols=cols)
        view.flags.writeable = False  # never write through a view into someone's message
        out[name] = view
    return out


_READ = ("x", "y", "z", "intensity")  # the fields read_cloud reads


def read_cloud(msg, max_points: int = DEFAULT_MAX_POINTS) -> CloudArrays:
    """PointCloud2 (rclpy or rosbags) -> arrays; zero-copy for xyz when x, y, z are packed together."""
    fields = _field_table(msg, _READ)
    n = _check_cloud_header(msg, fields, max_points)
    raw = as_uint8(msg.data)
    _check_cloud_layout(msg, fields, _READ, n, raw.size)
    step = int(msg.point_step)
    if n == 0:
        empty = np.zeros((0, 3), np.float32)
        inten = np.zeros(0, np.float32) if "intensity" in fields else None
        return CloudArrays(empty, inten, np.zeros(0, bool), 0)
    if int(msg.height) > 1 and int(msg.row_step) != int(msg.width) * step:  # padded rows: drop the padding
        raw = np.ascontiguousarray(raw.reshape(int(msg.height), int(msg.row_step))[:, : int(msg.width) * step])
    ox, oy, oz = fields["x"][0], fields["y"][0], fields["z"][0]
    f32 = POINTFIELD_DTYPES[FLOAT32]
    if oy == ox + 4 and oz == ox + 8:
        xyz = _strided(raw, ox, f32, n, step, cols=3)
    else:
        xyz = np.stack([_strided(raw, o, f32, n, step) for o in (ox, oy, oz)], axis=1)
    intensity = None
    if "intensity" in fields:
        off, dt, _ = fields["intensity"]
        intensity = _strided(raw, off, POINTFIELD_DTYPES[dt], n, step).astype(np.float32, copy=False)
    finite = np.isfinite(xyz[:, 0]) & np.isfinite(xyz[:, 1]) & np.isfinite(xyz[:, 2])  # 20x faster than on (N, 3)
    return CloudArrays(xyz, intensity, finite, n)


def read_cloud_fields(msg, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Named fields as contiguous, writable copies (scores and samples may outlive the message); errors as
    `read_fields`."""
    return {name: np.array(view) for name, view in read_fields(msg, names).items()}
