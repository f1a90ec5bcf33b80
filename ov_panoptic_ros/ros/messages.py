"""ROS message <-> numpy conversion, shared by the node (rclpy messages) and the bag tools (rosbags).

Nothing here imports rclpy or a message package: messages are read by duck typing on their
attributes, so one converter serves both message flavours. `msg.data` may be `bytes`,
`array.array('B')` (rclpy) or a numpy uint8 array (rosbags); all expose the buffer protocol.

Policy (documented in the README, "Bad input"):
- A cloud is read through a zero-copy strided view where the layout allows it.
- Clouds above `max_points` points are rejected before their payload is touched (default
  1,000,000: a 2M-point cloud is a misconfigured or merged source at 10 Hz, not something to
  silently slow the whole stack down with; raise the `max_points` parameter to accept it).
- Output clouds are written into one `array.array('B')` by the C kernel `_interleave` (`pack_cloud`),
  which an rclpy message then holds without a copy: no per-point Python and no numpy array ever
  assigned to `msg.data` (that costs ~0.5 s).

Public cloud API: `read_cloud` (x, y, z, intensity, finite mask), `read_fields` (any named fields,
zero-copy views), `pack_cloud` (any columns, `Lookup` columns included -> PackedCloud),
`pack_panoptic_cloud` (the node's output layout, built on `pack_cloud`; class colours looked up from the
labels while packing), `to_pointcloud2` (PackedCloud -> rclpy or rosbags message).
"""
from __future__ import annotations

import array
import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.core.frame import CameraModel
from ov_panoptic_ros.ros._interleave import interleave

# sensor_msgs/PointField datatypes
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
POINTFIELD_DTYPES = {
    INT8: np.dtype("i1"), UINT8: np.dtype("u1"), INT16: np.dtype("<i2"), UINT16: np.dtype("<u2"),
    INT32: np.dtype("<i4"), UINT32: np.dtype("<u4"), FLOAT32: np.dtype("<f4"), FLOAT64: np.dtype("<f8"),
}
DEFAULT_MAX_POINTS = 1_000_000
UNLABELED_RGB = (128, 128, 128)  # gray for points no class applies to


class InputError(ValueError):
    """A message that cannot be used. `kind` names the diagnostics counter it increments."""

    kind = "bad_input"

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        if kind is not None:
            self.kind = kind


class CloudError(InputError):
    kind = "cloud_bad_layout"


class ImageError(InputError):
    kind = "image_bad"


class CameraInfoError(InputError):
    kind = "camera_info_bad"


def _as_uint8(data) -> np.ndarray:
    """The message payload as a flat uint8 array, without copying when it supports the buffer protocol."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a plain list of ints
        return np.asarray(data, dtype=np.uint8)


# --------------------------------------------------------------------------------------------- clouds
@dataclass
class CloudArrays:
    """A PointCloud2 as arrays. `xyz` may be a read-only strided view into the message payload."""

    xyz: np.ndarray  # (N, 3) float32, may contain NaN/inf
    intensity: np.ndarray | None  # (N,) float32
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


def _field_table(msg) -> dict[str, tuple[int, int, int]]:
    return {f.name: (int(f.offset), int(f.datatype), int(f.count)) for f in msg.fields}


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


def _check_cloud_layout(msg, fields: dict, n: int, data_len: int) -> None:
    step, row_step, width, height = int(msg.point_step), int(msg.row_step), int(msg.width), int(msg.height)
    for name, (offset, datatype, count) in fields.items():
        size = POINTFIELD_DTYPES[datatype].itemsize if datatype in POINTFIELD_DTYPES else None
        if size is None:
            raise CloudError(f"field {name!r} has unknown datatype {datatype}")
        if offset < 0 or offset + size * max(count, 1) > step:
            raise CloudError(f"field {name!r} (offset {offset}) does not fit in point_step {step}")
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
    fields = _field_table(msg)
    missing = [n for n in names if n not in fields]
    if missing:
        raise CloudError(f"PointCloud2 has no {', '.join(repr(n) for n in missing)} field(s);"
                         f" fields are {sorted(fields) or 'none'}", kind="cloud_missing_field")
    if msg.is_bigendian:
        raise CloudError("big-endian PointCloud2 is not supported", kind="cloud_big_endian")
    width, height, step, row_step = int(msg.width), int(msg.height), int(msg.point_step), int(msg.row_step)
    n = width * height
    raw = _as_uint8(msg.data)
    _check_cloud_layout(msg, fields, n, raw.size)
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


def read_cloud(msg, max_points: int = DEFAULT_MAX_POINTS) -> CloudArrays:
    """PointCloud2 (rclpy or rosbags) -> arrays; zero-copy for xyz when x, y, z are packed together."""
    fields = _field_table(msg)
    n = _check_cloud_header(msg, fields, max_points)
    raw = _as_uint8(msg.data)
    _check_cloud_layout(msg, fields, n, raw.size)
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
    if "intensity" in fields and fields["intensity"][2] == 1:
        off, dt, _ = fields["intensity"]
        intensity = _strided(raw, off, POINTFIELD_DTYPES[dt], n, step).astype(np.float32, copy=False)
    finite = np.isfinite(xyz[:, 0]) & np.isfinite(xyz[:, 1]) & np.isfinite(xyz[:, 2])  # 20x faster than on (N, 3)
    return CloudArrays(xyz, intensity, finite, n)


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


# --------------------------------------------------------------------------------------------- images
_RAW_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB (a read-only view into the message for tight rgb8)."""
    enc = str(msg.encoding).lower()
    if enc not in _RAW_ENCODINGS:
        raise ImageError(
            f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(_RAW_ENCODINGS)})",
            kind="image_bad_encoding",
        )
    channels = _RAW_ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    raw = _as_uint8(msg.data)
    if h <= 0 or w <= 0:
        raise ImageError(f"image size {w}x{h} is empty", kind="image_bad_layout")
    if step < w * channels:
        raise ImageError(f"step {step} is smaller than width*channels = {w}*{channels}", kind="image_bad_layout")
    if raw.size != step * h:
        raise ImageError(f"image data has {raw.size} bytes but step*height = {step}*{h} = {step * h}",
                         kind="image_bad_layout")
    px = raw.reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if enc == "rgb8":
        return px if px.flags.c_contiguous else np.ascontiguousarray(px)
    if enc == "mono8":
        return np.repeat(px, 3, axis=2)
    if enc == "rgba8":
        return np.ascontiguousarray(px[:, :, :3])
    return np.ascontiguousarray(px[:, :, 2::-1])  # bgr8 / bgra8


_COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png, image_transport format strings too) -> (H, W, 3) uint8 RGB."""
    from PIL import Image  # the node imports PIL only when a camera is configured as compressed

    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt or not any(f in fmt for f in _COMPRESSED_FORMATS):
        raise ImageError(f"unsupported compressed format {msg.format!r} (supported: jpeg, png)",
                         kind="image_bad_encoding")
    try:
        with Image.open(io.BytesIO(_as_uint8(msg.data).tobytes())) as img:
            return np.array(img.convert("RGB"))  # writable: torch.from_numpy warns on read-only arrays
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"corrupt {fmt} image: {e}", kind="image_corrupt") from e


# --------------------------------------------------------------------------------------------- camera info
_DISTORTION_COEFFS = {"plumb_bob": 5, "rational_polynomial": 8}


def _distortion(info) -> tuple[str, np.ndarray]:
    model = str(info.distortion_model).strip()
    d = np.asarray(info.d, dtype=np.float64).reshape(-1)
    if model in ("", "none"):
        if np.any(d != 0):
            raise CameraInfoError(f"distortion coefficients {d.tolist()} given without a distortion model",
                                  kind="camera_info_bad_distortion")
        return "none", np.zeros(0)
    if model not in _DISTORTION_COEFFS:
        raise CameraInfoError(
            f"unknown distortion model {model!r} (supported: plumb_bob, rational_polynomial)",
            kind="camera_info_bad_distortion",
        )
    need = _DISTORTION_COEFFS[model]
    if d.size == 0:
        return model, np.zeros(need)
    if d.size != need:
        raise CameraInfoError(f"{model} needs {need} coefficients, got {d.size}", kind="camera_info_bad_distortion")
    return model, d


def camera_model_from_info(name: str, info, extrinsics) -> CameraModel:
    """sensor_msgs/CameraInfo + calibration extrinsics -> CameraModel (K and D of the raw image)."""
    k = np.asarray(info.k, dtype=np.float64).reshape(-1)
    if k.size != 9 or not np.isfinite(k).all() or k[0] <= 0 or k[4] <= 0:
        raise CameraInfoError(f"camera {name!r}: CameraInfo K has no valid focal length: {k.tolist()}",
                              kind="camera_info_bad_k")
    if max(int(getattr(info, "binning_x", 0)), int(getattr(info, "binning_y", 0))) > 1:
        raise CameraInfoError(f"camera {name!r}: binning is not supported", kind="camera_info_unsupported")
    roi = getattr(info, "roi", None)
    if roi is not None and int(roi.width) and int(roi.height) and (int(roi.width), int(roi.height)) != (
        int(info.width), int(info.height)
    ):
        raise CameraInfoError(f"camera {name!r}: a region of interest is not supported", kind="camera_info_unsupported")
    model, d = _distortion(info)
    try:
        return CameraModel(
            name=name, width=int(info.width), height=int(info.height), K=k.reshape(3, 3), D=d,
            distortion_model=model, T_cam_lidar=extrinsics.T_cam_lidar, time_offset_s=extrinsics.time_offset_s,
        )
    except ValueError as e:
        raise CameraInfoError(f"camera {name!r}: {e}") from e


def camera_info_key(info) -> tuple:
    """What identifies a CameraInfo's content, to rebuild a CameraModel only when it changes."""
    return (int(info.width), int(info.height), str(info.distortion_model),
            tuple(float(v) for v in info.k), tuple(float(v) for v in info.d))
