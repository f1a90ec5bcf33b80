"""Writing output PointCloud2 payloads: per-point columns -> one interleaved little-endian buffer.

The rows are written by the C kernel `_interleave` into one `array.array('B')`, which an rclpy message then
holds without a copy: no per-point Python, and never a numpy array assigned to `msg.data` (rclpy converts
those element by element, ~0.5 s for 200k points).
"""
from __future__ import annotations

import array
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.bridge._interleave import interleave
from ov_panoptic_ros.bridge.clouds import FLOAT32, FLOAT64, INT8, INT16, INT32, POINTFIELD_DTYPES, UINT8, UINT16, UINT32

UNLABELED_RGB = (128, 128, 128)  # gray for points no class applies to


@dataclass
class PackedCloud:
    """An output cloud ready for a PointCloud2: fields as (name, offset, datatype, count).

    `data` is an `array.array('B')`: an rclpy message holds it as `msg.data` without a copy (a numpy
    array would be converted element by element); rosbags messages get `np.frombuffer(data, np.uint8)`.
    """

    fields: list[tuple[str, int, int, int]]
    point_step: int
    data: array.array
    num_points: int


# numpy (kind, itemsize) -> PointField datatype, for the columns pack_cloud accepts
_DATATYPE_OF = {("i", 1): INT8, ("u", 1): UINT8, ("i", 2): INT16, ("u", 2): UINT16, ("i", 4): INT32,
                ("u", 4): UINT32, ("f", 4): FLOAT32, ("f", 8): FLOAT64}


def cloud_layout(spec: Iterable[tuple[str, int, int]]) -> tuple[list[tuple[str, int, int, int]], int]:
    """(name, datatype, count) in order -> (PointFields as (name, offset, datatype, count), point_step).

    C struct rules: each field at the next offset that is a multiple of its item size, and point_step
    a multiple of the largest item size, so every field of every point is naturally aligned.
    """
    fields, off, align = [], 0, 1
    for name, datatype, count in spec:
        size = POINTFIELD_DTYPES[datatype].itemsize
        off = -(-off // size) * size
        fields.append((name, off, datatype, count))
        off += size * count
        align = max(align, size)
    return fields, -(-off // align) * align


def _panoptic_spec(with_intensity: bool, with_vocab_version: bool) -> list[tuple[str, int, int]]:
    spec = [("x", FLOAT32, 1), ("y", FLOAT32, 1), ("z", FLOAT32, 1)]
    spec += [("intensity", FLOAT32, 1)] if with_intensity else []
    spec += [("label", UINT16, 1)] + ([("vocab_version", UINT16, 1)] if with_vocab_version else [])
    return spec + [("instance_id", UINT32, 1), ("score", FLOAT32, 1), ("rgb", FLOAT32, 1)]


def panoptic_fields(with_intensity: bool, with_vocab_version: bool = False) -> tuple[list, int]:
    """Output layout. 4-byte aligned; `vocab_version` (optional) lives in the 2 bytes after `label`."""
    return cloud_layout(_panoptic_spec(with_intensity, with_vocab_version))


@dataclass(frozen=True)
class Lookup:
    """A pack_cloud column given as a table lookup: point i's field is table[min(index[i], len(table) - 1)],
    done while the rows are written (the node's class colours: no per-point colour array)."""

    index: np.ndarray  # (N,) or 0-d unsigned integers
    table: np.ndarray  # (K,) entries, K >= 1: their dtype is the field's

    def __post_init__(self):
        index, table = np.asarray(self.index), np.asarray(self.table)
        if index.dtype.kind != "u" or index.ndim > 1:
            raise ValueError(f"lookup indices must be 0-d or (N,) unsigned integers, got {index.dtype} {index.shape}")
        if table.ndim != 1 or table.size == 0:
            raise ValueError(f"a lookup table must be a non-empty (K,) array, got shape {table.shape}")
        object.__setattr__(self, "index", index.astype(index.dtype.newbyteorder("="), copy=False))
        object.__setattr__(self, "table", np.ascontiguousarray(table, table.dtype.newbyteorder("<")))


def _column(name: str, col) -> tuple[np.ndarray | Lookup, tuple[str, int, int]]:
    """The column as a little-endian array (or a Lookup), and its field spec (name, datatype, count)."""
    if isinstance(col, Lookup):
        return col, (name, _datatype(name, col.table.dtype), 1)
    a = np.asarray(col)
    dt = a.dtype
    datatype = _datatype(name, dt)
    if a.ndim > 2 or (a.ndim == 2 and a.shape[1] == 0):
        raise ValueError(f"column {name!r} has shape {a.shape}; expected (N,), (N, count) or a scalar")
    if dt.byteorder == ">":
        a = a.astype(dt.newbyteorder("<"))
    return a, (name, datatype, a.shape[1] if a.ndim == 2 else 1)


def _datatype(name: str, dt: np.dtype) -> int:
    datatype = _DATATYPE_OF.get((dt.kind, dt.itemsize))
    if datatype is None:
        raise ValueError(f"column {name!r} has dtype {dt}; PointCloud2 fields are int8/uint8/int16/uint16/"
                         "int32/uint32/float32/float64")
    return datatype


@functools.lru_cache(maxsize=64)
def _layout(spec: tuple) -> tuple:
    return cloud_layout(spec)  # once per layout, not per frame


def pack_cloud(columns: Mapping[str, np.ndarray]) -> PackedCloud:
    """Per-point columns -> one interleaved little-endian PointCloud2 payload, fields in the given order.

    A column is (N,) (a field of count 1), (N, count), a 0-d array (one value for every point, e.g.
    `np.uint16(7)`) or a `Lookup`; its dtype (int8 ... float64, see POINTFIELD_DTYPES; a Lookup's table's)
    is the field's datatype, with no conversion. Layout: `cloud_layout` (natural alignment, zero padding).

    The rows are written by the C kernel `_interleave` straight from the columns as they are (strided and
    unaligned views included; numpy would copy a strided column element by element, ~5 memcpys of the
    payload for 8 fields). The kernel writes every byte, padding as zero.
    """
    cols, spec = [], []
    n, first = None, None
    for name, col in columns.items():
        a, field = _column(name, col)
        cols.append(a)
        spec.append(field)
        rows = a.index if isinstance(a, Lookup) else a
        if rows.ndim:
            if n is None:
                n, first = rows.shape[0], name
            elif rows.shape[0] != n:
                raise ValueError(f"column {name!r} has {rows.shape[0]} points, column {first!r} has {n}")
    if n is None:
        raise ValueError("pack_cloud needs at least one per-point column (all columns are scalars)")
    fields, step = _layout(tuple(spec))
    data = array.array("B", b"\0") * (n * step)  # an array.array cannot be sized without being filled
    interleave(data, step, n, [(a.index, f[1], a.table) if isinstance(a, Lookup) else (a, f[1])
                               for a, f in zip(cols, fields)])
    return PackedCloud(list(fields), step, data, n)


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """(K, 3) uint8 RGB -> (K,) uint32 0x00RRGGBB (stored in the float32 `rgb` field as RViz expects)."""
    c = np.asarray(colors, dtype=np.uint8).reshape(-1, 3).astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


_UNLABELED_PACKED = np.uint32((UNLABELED_RGB[0] << 16) | (UNLABELED_RGB[1] << 8) | UNLABELED_RGB[2])


def class_color_table(palette: np.ndarray) -> np.ndarray:
    """(K, 3) uint8 class colours -> the `rgb` field's lookup table: K + 1 float32 entries holding the
    0x00RRGGBB bits, the last one gray (UNLABELED, or any label past the palette, clips to it)."""
    return np.append(pack_rgb(palette), _UNLABELED_PACKED).view(np.float32)


def pack_panoptic_cloud(
    xyz: np.ndarray,
    intensity: np.ndarray | None,
    labels: np.ndarray,
    instance_ids: np.ndarray,
    scores: np.ndarray,
    palette: np.ndarray,
    vocab_version: int | None = None,
) -> PackedCloud:
    """Per-point results -> one interleaved little-endian buffer (x, y, z, [intensity], label, ...).

    The layout is `panoptic_fields`; the values are cast to its types (float32, uint16, uint32). `rgb` is
    the colour of each point's label in `palette` ((K, 3) uint8, e.g. `Vocabulary.colors()`), gray for
    UNLABELED and any label past the palette: looked up while the rows are written.
    """
    xyz = np.asarray(xyz, dtype=np.float32)
    n = int(xyz.shape[0])
    per_point = {"labels": labels, "instance_ids": instance_ids, "scores": scores, "intensity": intensity}
    for name, arr in per_point.items():
        if arr is not None and np.shape(arr)[0] != n:
            raise ValueError(f"{name} has {np.shape(arr)[0]} entries for {n} points")
    label = np.asarray(labels)
    if label.dtype.kind not in "ui" or (label.dtype.kind == "i" and label.size and label.min() < 0):
        raise ValueError(f"labels must be non-negative integers, got {label.dtype}")
    label = label.astype(np.uint16, copy=False)
    columns = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    if intensity is not None:
        columns["intensity"] = np.asarray(intensity, dtype=np.float32)
    columns["label"] = label
    if vocab_version is not None:
        columns["vocab_version"] = np.uint16(vocab_version & 0xFFFF)
    columns["instance_id"] = np.asarray(instance_ids, dtype=np.uint32)
    columns["score"] = np.asarray(scores, dtype=np.float32)
    columns["rgb"] = Lookup(label, class_color_table(palette))  # 0x00RRGGBB bits, as RViz reads them
    return pack_cloud(columns)  # its layout is panoptic_fields(...): same spec order (tested)


def to_pointcloud2(packed: PackedCloud, header, cloud_cls, field_cls):
    """Build a PointCloud2 of the given message classes (rclpy or rosbags) from a PackedCloud.

    The message's `data` is `packed.data` itself (rclpy) or a numpy view of it (rosbags): no copy.
    rclpy's `data` setter copies whatever it is given into a new array.array, unless the message checks
    its fields: then an array.array('B') is stored as is (0.2 ms per 200k points saved).
    """
    common = dict(header=header, height=1, width=packed.num_points,
                  fields=[field_cls(name=n, offset=o, datatype=d, count=c) for n, o, d, c in packed.fields],
                  is_bigendian=False, point_step=packed.point_step,
                  row_step=packed.point_step * packed.num_points, is_dense=True)
    if not hasattr(cloud_cls, "get_fields_and_field_types"):  # rosbags
        return cloud_cls(data=np.frombuffer(packed.data, dtype=np.uint8), **common)
    msg = cloud_cls(check_fields=True, **common)  # rosidl_generator_py of Jazzy and later (Kilted here)
    msg.data = packed.data
    return msg


def pack_lidar_cloud(xyz: np.ndarray, intensity: np.ndarray | None) -> PackedCloud:
    """x, y, z[, intensity] float32: what a LiDAR driver publishes."""
    xyz = np.asarray(xyz, dtype=np.float32)
    columns = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    if intensity is not None:
        columns["intensity"] = np.asarray(intensity, dtype=np.float32)
    return pack_cloud(columns)
