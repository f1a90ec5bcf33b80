"""Message conversion: PointCloud2/Image/CompressedImage/CameraInfo <-> numpy, for rclpy and rosbags messages."""
import array
import io
import struct
import subprocess
import sys
import zlib
from unittest import mock

import numpy as np
import pytest
from ov_panoptic_ros.bridge._interleave import interleave
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ov_panoptic_ros.bridge.camera_info import CameraModels, camera_model_from_info
from ov_panoptic_ros.bridge.clouds import (
    DEFAULT_MAX_POINTS,
    FLOAT32,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    POINTFIELD_DTYPES,
    UINT8,
    UINT16,
    UINT32,
    read_cloud,
    read_fields,
)
from ov_panoptic_ros.bridge.images import compressed_to_rgb, image_to_rgb
from ov_panoptic_ros.bridge.packing import (
    _DATATYPE_OF,
    UNLABELED_RGB,
    Lookup,
    PackedCloud,
    class_color_table,
    cloud_layout,
    pack_cloud,
    pack_panoptic_cloud,
    panoptic_fields,
    to_pointcloud2,
)
from ov_panoptic_ros.bridge.problems import CameraInfoError, CloudError, ImageError, InputError
from ov_panoptic_ros.core.calibration import CameraExtrinsics
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.testing.scene_msgs import DRIVER_POINT_STEP, driver_cloud

RNG = np.random.default_rng(0)


def _xyz(n=50):
    return RNG.normal(0, 10, (n, 3)).astype(np.float32)


def _cloud_from_struct(arr: np.ndarray, fields, height=1, row_step=None, bigendian=False, data=None) -> PointCloud2:
    step = arr.dtype.itemsize
    width = arr.size // height
    return PointCloud2(
        height=height, width=width, is_bigendian=bigendian, point_step=step,
        row_step=step * width if row_step is None else row_step,
        fields=[PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        data=arr.tobytes() if data is None else data,
    )


# ------------------------------------------------------------------------------------------- read_cloud
def test_driver_cloud_reads_as_zero_copy_view():
    xyz, inten = _xyz(), RNG.random(50).astype(np.float32)
    msg = driver_cloud(xyz, inten, 5, "lidar")
    assert isinstance(msg.data, (bytes, bytearray, memoryview)) or msg.data.typecode == "B"
    cloud = read_cloud(msg)
    assert cloud.num_points == 50 and cloud.xyz.dtype == np.float32 and cloud.xyz.shape == (50, 3)
    np.testing.assert_array_equal(cloud.xyz, xyz)
    np.testing.assert_array_equal(cloud.intensity, inten)
    assert cloud.xyz.strides == (DRIVER_POINT_STEP, 4)  # a strided view, not a copy
    assert np.shares_memory(cloud.xyz, np.frombuffer(msg.data, np.uint8))
    assert cloud.all_finite


def test_rosbags_message_gives_the_same_arrays():
    """The bag tools pass rosbags messages (numpy uint8 data): same converter, same result."""
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    xyz = _xyz()
    ref = driver_cloud(xyz, None, 0, "lidar")
    bag_msg = ts.types["sensor_msgs/msg/PointCloud2"](
        header=ts.types["std_msgs/msg/Header"](stamp=ts.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0),
                                               frame_id="lidar"),
        height=1, width=ref.width, is_bigendian=False, point_step=ref.point_step, row_step=ref.row_step,
        fields=[ts.types["sensor_msgs/msg/PointField"](name=f.name, offset=f.offset, datatype=f.datatype,
                                                       count=f.count) for f in ref.fields],
        data=np.frombuffer(bytes(ref.data), np.uint8), is_dense=True,
    )
    cloud = read_cloud(bag_msg)
    np.testing.assert_array_equal(cloud.xyz, xyz)
    # and back: a rosbags output message from the same PackedCloud
    packed = pack_panoptic_cloud(xyz, None, np.zeros(50, np.uint16), np.zeros(50, np.uint32),
                                   np.zeros(50, np.float32), np.zeros((1, 3), np.uint8))
    out = to_pointcloud2(packed, bag_msg.header, ts.types["sensor_msgs/msg/PointCloud2"],
                           ts.types["sensor_msgs/msg/PointField"])
    assert out.data.dtype == np.uint8 and out.data.size == 50 * packed.point_step
    assert np.shares_memory(out.data, np.frombuffer(packed.data, np.uint8))  # a view, not a copy
    np.testing.assert_array_equal(read_cloud(out).xyz, xyz)


def test_scattered_fields_and_other_intensity_types():
    dt = np.dtype({"names": ["z", "i", "x", "y"], "formats": ["<f4", "<u2", "<f4", "<f4"],
                   "offsets": [0, 4, 8, 16], "itemsize": 24})
    arr = np.zeros(20, dt)
    xyz = _xyz(20)
    arr["x"], arr["y"], arr["z"], arr["i"] = xyz[:, 0], xyz[:, 1], xyz[:, 2], np.arange(20)
    fields = [("z", 0, FLOAT32, 1), ("intensity", 4, UINT16, 1), ("x", 8, FLOAT32, 1), ("y", 16, FLOAT32, 1)]
    cloud = read_cloud(_cloud_from_struct(arr, fields))
    np.testing.assert_array_equal(cloud.xyz, xyz)
    assert cloud.intensity.dtype == np.float32
    np.testing.assert_array_equal(cloud.intensity, np.arange(20, dtype=np.float32))


def test_padded_rows_are_stripped():
    dt = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": 12})
    arr = np.zeros((2, 5), dt)
    xyz = _xyz(10).reshape(2, 5, 3)
    arr["x"], arr["y"], arr["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    padded = b"".join(arr[r].tobytes() + b"\xff" * 4 for r in range(2))  # 4 junk bytes per row
    fields = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]
    msg = _cloud_from_struct(arr.reshape(-1), fields, height=2, row_step=64, data=padded)
    np.testing.assert_array_equal(read_cloud(msg).xyz, xyz.reshape(-1, 3))


def test_nonfinite_points_are_masked_and_dropped():
    xyz = _xyz(6)
    xyz[1, 0], xyz[4, 2] = np.nan, np.inf
    cloud = read_cloud(driver_cloud(xyz, np.arange(6, dtype=np.float32), 0, "l"))
    assert cloud.finite.tolist() == [True, False, True, True, False, True] and cloud.num_finite == 4
    pts, inten = cloud.finite_points()
    np.testing.assert_array_equal(pts, xyz[[0, 2, 3, 5]])
    np.testing.assert_array_equal(inten, [0, 2, 3, 5])
    assert pts.flags.c_contiguous


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_finite_points_of_a_finite_cloud_are_contiguous_copies(n):
    xyz = _xyz(n)
    intensity = np.arange(n, dtype=np.float32) * 0.5
    msg = driver_cloud(xyz, intensity, 0, "l")  # 22-byte points: unaligned strided views
    cloud = read_cloud(msg)
    assert cloud.all_finite
    pts, inten = cloud.finite_points()
    assert pts.shape == (n, 3) and pts.dtype == np.float32 and pts.flags.c_contiguous
    assert inten.shape == (n,) and inten.dtype == np.float32 and inten.flags.c_contiguous
    np.testing.assert_array_equal(pts, xyz)
    np.testing.assert_array_equal(inten, intensity)
    assert not np.shares_memory(pts, cloud.xyz)  # a copy: the Frame outlives the message


def test_empty_cloud_reads_as_zero_points():
    cloud = read_cloud(driver_cloud(np.zeros((0, 3), np.float32), None, 0, "l"))
    assert cloud.num_points == 0 and cloud.xyz.shape == (0, 3)


def _bad(msg, kind, max_points=DEFAULT_MAX_POINTS):
    with pytest.raises(CloudError) as e:
        read_cloud(msg, max_points=max_points)
    assert e.value.kind == kind, str(e.value)
    return str(e.value)


def test_cloud_errors_name_the_problem():
    good = driver_cloud(_xyz(10), None, 0, "l")
    no_xyz = PointCloud2(height=1, width=10, point_step=4, row_step=40, data=bytes(40),
                         fields=[PointField(name="intensity", offset=0, datatype=FLOAT32, count=1)])
    assert "no x/y/z" in _bad(no_xyz, "cloud_missing_xyz")

    short = driver_cloud(_xyz(10), None, 0, "l")
    short.data = bytes(short.data)[:-3]
    assert "row_step*height" in _bad(short, "cloud_bad_layout")

    wrong_step = driver_cloud(_xyz(10), None, 0, "l")
    wrong_step.point_step = 8  # fields no longer fit
    assert "point_step" in _bad(wrong_step, "cloud_bad_layout")

    wrong_row = driver_cloud(_xyz(10), None, 0, "l")
    wrong_row.row_step = 100
    assert "row_step" in _bad(wrong_row, "cloud_bad_layout")

    big = driver_cloud(_xyz(10), None, 0, "l")
    big.is_bigendian = True
    assert "big-endian" in _bad(big, "cloud_big_endian")

    f64 = PointCloud2(height=1, width=2, point_step=24, row_step=48, data=bytes(48),
                      fields=[PointField(name=a, offset=8 * i, datatype=FLOAT64, count=1)
                              for i, a in enumerate("xyz")])
    assert "float32" in _bad(f64, "cloud_bad_field_type")
    assert good is not None and read_cloud(good).num_points == 10


def test_too_many_points_rejected_before_touching_the_payload():
    msg = driver_cloud(_xyz(10), None, 0, "l")
    msg.width = 2_000_000  # the payload does not even match: the size check must come first
    assert "max_points" in _bad(msg, "cloud_too_large")
    assert read_cloud(driver_cloud(_xyz(10), None, 0, "l"), max_points=10).num_points == 10
    _bad(driver_cloud(_xyz(11), None, 0, "l"), "cloud_too_large", max_points=10)


def _xyz_cloud(fields, step, n=4):
    """n points of `step` bytes with distinct float32 bit patterns everywhere, and the given field table."""
    data = np.arange(n * step // 4, dtype=np.float32).tobytes() + bytes(n * step % 4)
    return PointCloud2(height=1, width=n, point_step=step, row_step=n * step, data=data,
                       fields=[PointField(name=a, offset=o, datatype=d, count=c) for a, o, d, c in fields])


XYZ = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)]


def test_overlapping_or_twice_declared_fields_are_rejected():
    """Issue 10: y at x's offset, or a second x, gave wrong points silently."""
    y_on_x = _xyz_cloud([("x", 0, FLOAT32, 1), ("y", 0, FLOAT32, 1), ("z", 8, FLOAT32, 1)], 12)
    assert "'x' and 'y' overlap" in _bad(y_on_x, "cloud_bad_layout")
    second_x = _xyz_cloud(XYZ + [("x", 12, FLOAT32, 1)], 16)
    assert "'x' is declared twice" in _bad(second_x, "cloud_bad_layout")
    straddling = _xyz_cloud([("x", 0, FLOAT32, 1), ("y", 2, FLOAT32, 1), ("z", 8, FLOAT32, 1)], 12)
    assert "overlap" in _bad(straddling, "cloud_bad_layout")
    intensity_on_z = _xyz_cloud(XYZ + [("intensity", 10, UINT16, 1)], 12)
    assert "'z' and 'intensity' overlap" in _bad(intensity_on_z, "cloud_bad_layout")
    intensity_array_into_x = _xyz_cloud([("intensity", 0, FLOAT32, 2), ("x", 4, FLOAT32, 1), ("y", 8, FLOAT32, 1),
                                         ("z", 12, FLOAT32, 1)], 16)
    assert "overlap" in _bad(intensity_array_into_x, "cloud_bad_layout")
    twice_label = _xyz_cloud(XYZ + [("label", 12, UINT16, 1), ("label", 14, UINT16, 1)], 16)
    with pytest.raises(CloudError, match="'label' is declared twice"):
        read_fields(twice_label, ["label"])
    # fields that are not read may repeat or overlap (PCL names padding `_`)
    padded = _xyz_cloud(XYZ + [("_", 12, UINT8, 1), ("_", 13, UINT8, 1), ("ring", 12, UINT16, 1)], 16)
    np.testing.assert_array_equal(read_cloud(padded).xyz, np.arange(16, dtype=np.float32).reshape(4, 4)[:, :3])


def test_intensity_with_count_above_one_gives_its_first_element():
    """Issue 10: such a cloud lost its intensity without a word; now its first element (what RViz shows)."""
    cloud = read_cloud(_xyz_cloud(XYZ + [("intensity", 12, FLOAT32, 3)], 24))
    np.testing.assert_array_equal(cloud.intensity, np.arange(4, dtype=np.float32) * 6 + 3)
    empty = read_cloud(_xyz_cloud(XYZ + [("intensity", 12, UINT8, 2)], 16, n=0))
    assert empty.intensity.shape == (0,)


# ------------------------------------------------------------------------------------------- read_fields
def _as_struct(packed: PackedCloud) -> np.ndarray:
    """A PackedCloud's payload through a structured dtype built from its own field table."""
    dt = np.dtype({"names": [f[0] for f in packed.fields], "offsets": [f[1] for f in packed.fields],
                   "formats": [(POINTFIELD_DTYPES[f[2]], (f[3],)) if f[3] > 1 else POINTFIELD_DTYPES[f[2]]
                               for f in packed.fields], "itemsize": packed.point_step})
    return np.frombuffer(packed.data, dt)


def _gt_struct(n=30):
    """A ground-truth-like cloud with every field type at odd (but valid) offsets, and a count-3 field."""
    dt = np.dtype({"names": ["x", "y", "z", "label", "flag", "instance_id", "normal", "weight", "tag"],
                   "formats": ["<f4", "<f4", "<f4", "<u2", "u1", "<u4", ("<f4", (3,)), "<f8", "i1"],
                   "offsets": [0, 4, 8, 12, 14, 16, 20, 32, 40], "itemsize": 44})
    arr = np.zeros(n, dt)
    arr["x"], arr["y"], arr["z"] = _xyz(n).T
    arr["label"] = RNG.integers(0, 65536, n)
    arr["flag"] = RNG.integers(0, 256, n)
    arr["instance_id"] = RNG.integers(0, 2**32, n, dtype=np.uint64)
    arr["normal"] = RNG.normal(size=(n, 3))
    arr["weight"] = RNG.normal(size=n)
    arr["tag"] = RNG.integers(-128, 128, n)
    fields = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1), ("label", 12, UINT16, 1),
              ("flag", 14, UINT8, 1), ("instance_id", 16, UINT32, 1), ("normal", 20, FLOAT32, 3),
              ("weight", 32, FLOAT64, 1), ("tag", 40, INT8, 1)]
    return arr, fields


def test_read_fields_gives_zero_copy_views_with_the_field_dtypes():
    arr, fields = _gt_struct()
    msg = _cloud_from_struct(arr, fields)
    out = read_fields(msg, ["label", "instance_id", "flag", "normal", "weight", "tag"])
    raw = np.frombuffer(msg.data, np.uint8)
    expected = {"label": np.uint16, "instance_id": np.uint32, "flag": np.uint8, "normal": np.float32,
                "weight": np.float64, "tag": np.int8}
    for name, dtype in expected.items():
        assert out[name].dtype == dtype, name
        np.testing.assert_array_equal(out[name], arr[name])
        assert np.shares_memory(out[name], raw), f"{name} was copied"
        assert out[name].strides[0] == 44 and not out[name].flags.writeable
    assert out["normal"].shape == (30, 3) and out["label"].shape == (30,)


def test_read_fields_of_a_rosbags_message_and_padded_rows():
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    arr, fields = _gt_struct(12)
    ref = _cloud_from_struct(arr, fields)
    bag_msg = ts.types["sensor_msgs/msg/PointCloud2"](
        header=ts.types["std_msgs/msg/Header"](stamp=ts.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0),
                                               frame_id="lidar"),
        height=1, width=12, is_bigendian=False, point_step=44, row_step=44 * 12,
        fields=[ts.types["sensor_msgs/msg/PointField"](name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields],
        data=np.frombuffer(bytes(ref.data), np.uint8).copy(), is_dense=True)
    got = read_fields(bag_msg, ["label", "instance_id"])
    np.testing.assert_array_equal(got["label"], arr["label"])
    assert np.shares_memory(got["instance_id"], bag_msg.data) and not got["instance_id"].flags.writeable

    padded = b"".join(arr[r * 4:(r + 1) * 4].tobytes() + b"\xee" * 8 for r in range(3))  # 3 rows, 8 junk bytes each
    msg = _cloud_from_struct(arr, fields, height=3, row_step=4 * 44 + 8, data=padded)
    got = read_fields(msg, ["label", "normal"])
    np.testing.assert_array_equal(got["label"], arr["label"])
    np.testing.assert_array_equal(got["normal"], arr["normal"])


def test_read_fields_errors_name_the_field():
    arr, fields = _gt_struct(5)
    msg = _cloud_from_struct(arr, fields)
    with pytest.raises(CloudError, match="'instance_ids', 'semantic'") as e:
        read_fields(msg, ["label", "instance_ids", "semantic"])
    assert e.value.kind == "cloud_missing_field" and "instance_id" in str(e.value)  # the available fields too
    short = _cloud_from_struct(arr, fields, data=arr.tobytes()[:-1])
    with pytest.raises(CloudError, match="row_step\\*height") as e:
        read_fields(short, ["label"])
    assert e.value.kind == "cloud_bad_layout"
    big = _cloud_from_struct(arr, fields, bigendian=True)
    with pytest.raises(CloudError, match="big-endian"):
        read_fields(big, ["label"])
    empty = read_fields(_cloud_from_struct(arr[:0], fields), ["label", "normal"])
    assert empty["label"].shape == (0,) and empty["label"].dtype == np.uint16 and empty["normal"].shape == (0, 3)


# ------------------------------------------------------------------------------------------- pack_cloud
def test_pack_cloud_layout_is_naturally_aligned_and_round_trips():
    n = 25
    cols = {
        "x": _xyz(n)[:, 0],
        "flag": RNG.integers(0, 256, n).astype(np.uint8),
        "label": RNG.integers(0, 65536, n).astype(np.uint16),
        "tag": RNG.integers(-128, 128, n).astype(np.int8),
        "weight": RNG.normal(size=n),  # float64
        "ring": RNG.integers(-2**15, 2**15, n).astype(np.int16),
        "normal": RNG.normal(size=(n, 3)).astype(np.float32),
        "version": np.uint16(513),  # a scalar: the same value for every point
        "id": RNG.integers(-2**31, 2**31, n).astype(np.int32),
    }
    packed = pack_cloud(cols)
    assert packed.fields == [("x", 0, FLOAT32, 1), ("flag", 4, UINT8, 1), ("label", 6, UINT16, 1),
                             ("tag", 8, INT8, 1), ("weight", 16, FLOAT64, 1), ("ring", 24, INT16, 1),
                             ("normal", 28, FLOAT32, 3), ("version", 40, UINT16, 1), ("id", 44, INT32, 1)]
    assert packed.point_step == 48 and packed.num_points == n and len(packed.data) == n * 48
    assert isinstance(packed.data, array.array) and packed.data.typecode == "B"
    # byte for byte what a structured array with those offsets holds (padding zero)
    ref = np.zeros(n, np.dtype({"names": list(cols), "offsets": [f[1] for f in packed.fields],
                                "formats": [(c.dtype, (3,)) if c.ndim == 2 else c.dtype for c in cols.values()],
                                "itemsize": 48}))
    for name, col in cols.items():
        ref[name] = col
    assert bytes(packed.data) == ref.tobytes()
    msg = to_pointcloud2(packed, Header(frame_id="l"), PointCloud2, PointField)
    back = read_fields(msg, list(cols))
    for name, col in cols.items():
        assert back[name].dtype == np.asarray(col).dtype, name
        np.testing.assert_array_equal(back[name], np.broadcast_to(col, back[name].shape))


def test_pack_cloud_all_small_fields_and_big_endian_input():
    bytes_only = pack_cloud({"a": np.arange(5, dtype=np.uint8), "b": np.arange(5, 10).astype(np.int8)})
    assert bytes_only.fields == [("a", 0, UINT8, 1), ("b", 1, INT8, 1)] and bytes_only.point_step == 2
    assert bytes(bytes_only.data) == bytes([0, 5, 1, 6, 2, 7, 3, 8, 4, 9])
    shorts = pack_cloud({"a": np.array([1, 2], np.uint16), "b": np.array([3, 4], np.uint8)})
    assert shorts.point_step == 4 and bytes(shorts.data) == bytes([1, 0, 3, 0, 2, 0, 4, 0])
    be = pack_cloud({"v": np.array([1.5, -2.0], dtype=">f4")})
    assert be.fields == [("v", 0, FLOAT32, 1)] and bytes(be.data) == np.array([1.5, -2.0], "<f4").tobytes()


def test_pack_cloud_errors():
    with pytest.raises(ValueError, match="column 'b' has 4 points, column 'a' has 5"):
        pack_cloud({"a": np.zeros(5, np.float32), "b": np.zeros(4, np.float32)})
    with pytest.raises(ValueError, match="column 'i' has dtype int64"):
        pack_cloud({"x": np.zeros(5, np.float32), "i": np.zeros(5, np.int64)})
    with pytest.raises(ValueError, match="column 'm' has shape"):
        pack_cloud({"m": np.zeros((5, 2, 2), np.float32)})
    with pytest.raises(ValueError, match="at least one per-point column"):
        pack_cloud({"v": np.uint16(1)})
    empty = pack_cloud({"x": np.zeros(0, np.float32), "l": np.zeros(0, np.uint16)})
    assert empty.num_points == 0 and len(empty.data) == 0 and empty.point_step == 8


def test_pack_cloud_reads_unaligned_strided_views():
    """x, y, z straight out of a 22-byte driver cloud (unaligned float32 views) pack like contiguous copies."""
    xyz = _xyz(40)
    cloud = read_cloud(driver_cloud(xyz, None, 0, "l"))
    assert not cloud.xyz[:, 1].flags.aligned
    view = pack_cloud({"x": cloud.xyz[:, 0], "y": cloud.xyz[:, 1], "z": cloud.xyz[:, 2]})
    copy = pack_cloud({"x": xyz[:, 0].copy(), "y": xyz[:, 1].copy(), "z": xyz[:, 2].copy()})
    assert bytes(view.data) == bytes(copy.data) == xyz.tobytes()


# ------------------------------------------------------------------------------------------- the C kernel
_DTYPES = [np.dtype(t) for t in ("i1", "u1", "<i2", "<u2", "<i4", "<u4", "<f4", "<f8")]


def _random_bits(rng, shape, dtype):
    """Random bytes seen as `dtype`: every bit pattern (NaN payloads, denormals) must survive as is."""
    shape = tuple(shape)
    return rng.integers(0, 256, shape + (dtype.itemsize,), dtype=np.uint8).view(dtype).reshape(shape)


def _random_column(rng, n, dtype, count, kind):
    """A column of n points in one of the memory forms pack_cloud is handed in practice."""
    shape = (n,) if count == 1 else (n, count)
    if kind == "scalar":
        return _random_bits(rng, (), dtype)[()]  # a numpy scalar, e.g. np.uint16(7)
    if kind == "broadcast":  # stride 0
        return np.broadcast_to(_random_bits(rng, (1,) + shape[1:], dtype), shape)
    if kind == "strided":  # unaligned rows at an odd stride, like a field of a 22-byte driver cloud
        step = dtype.itemsize * count * 2 + 3
        raw = rng.integers(0, 256, n * step + 8, dtype=np.uint8)
        # count > 2: elements two apart, so the rows are not contiguous either
        strides = (step,) if count == 1 else (step, dtype.itemsize * (1 + (count > 2)))
        return np.ndarray(shape, dtype, buffer=raw, offset=1, strides=strides)
    a = _random_bits(rng, shape, dtype)
    if kind == "bigendian":
        return a.astype(dtype.newbyteorder(">"))
    if kind == "reversed":  # negative stride
        return a[::-1]
    if kind == "fortran":  # (n, count) with its points far apart, elements contiguous
        return np.asfortranarray(a)
    return a


def _reference(columns: dict, packed: PackedCloud) -> bytes:
    """Straightforward numpy: a zeroed structured array with the packed field table, field by field."""
    dt = np.dtype({"names": [f[0] for f in packed.fields], "offsets": [f[1] for f in packed.fields],
                   "formats": [(POINTFIELD_DTYPES[f[2]], (f[3],)) if f[3] > 1 else POINTFIELD_DTYPES[f[2]]
                               for f in packed.fields], "itemsize": packed.point_step})
    ref = np.zeros(packed.num_points, dt)
    for name, col in columns.items():
        ref[name] = np.asarray(col)
    return ref.tobytes()


@pytest.mark.parametrize("seed", range(60))
def test_pack_cloud_matches_a_structured_array_for_random_layouts(seed):
    """All 8 datatypes, counts > 1, scalars, unaligned/reversed/Fortran/big-endian/broadcast inputs, many
    point counts: the packed bytes are the structured array's, and so are the raw kernel's into a dirty
    buffer (it writes every byte, padding as zero). Point steps of 16+ bytes in multiples of 4 run the
    SIMD engine (tail rows the other one); the rest run the other one only."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 67, 1001]))
    kinds = ["contiguous", "contiguous", "strided", "scalar", "broadcast", "bigendian", "reversed", "fortran"]
    columns = {}
    for i in range(int(rng.integers(1, 9))):
        dtype, count = _DTYPES[rng.integers(len(_DTYPES))], int(rng.choice([1, 1, 1, 2, 3, 4]))
        kind = str(rng.choice(kinds if count > 1 else [k for k in kinds if k != "fortran"]))
        if kind == "scalar" and count > 1:
            kind = "broadcast"
        columns[f"f{i}"] = _random_column(rng, n, dtype, count, "contiguous" if i == 0 else kind)
    packed = pack_cloud(columns)
    assert (packed.fields, packed.point_step) == cloud_layout(
        [(name, _DATATYPE_OF[(np.asarray(c).dtype.kind, np.asarray(c).dtype.itemsize)],
          np.shape(c)[1] if np.ndim(c) == 2 else 1) for name, c in columns.items()])
    assert isinstance(packed.data, array.array) and packed.num_points == n
    expected = _reference(columns, packed)
    assert bytes(packed.data) == expected
    dirty = bytearray(b"\xa5" * len(expected))
    little = [np.asarray(c).astype(np.asarray(c).dtype.newbyteorder("<")) for c in columns.values()]
    interleave(dirty, packed.point_step, n, [(c, f[1]) for c, f in zip(little, packed.fields)])
    assert bytes(dirty) == expected


@pytest.mark.parametrize("before, after", [(0, 5), (1, 4), (0, 2), (0, 3), (0, 4), (2, 9)])
def test_pack_cloud_packed_xyz_rows_at_every_word_position(before, after):
    """x, y, z of an (N, 3) float32 array (the node's points) are read as 12-byte rows: as a run of words
    starting a group of 4 (shuffled straight into rows), elsewhere, or overlapped by the last group."""
    rng = np.random.default_rng(before * 10 + after)
    n = 4 * 40 + 3
    xyz = _random_bits(rng, (n, 3), np.dtype("<f4"))
    columns = {f"b{i}": _random_bits(rng, (n,), np.dtype("<u4")) for i in range(before)}
    columns.update(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2])
    columns.update({f"a{i}": _random_bits(rng, (n,), np.dtype("<f4")) for i in range(after)})
    packed = pack_cloud(columns)
    assert packed.point_step == 4 * (before + 3 + after)
    assert bytes(packed.data) == _reference(columns, packed)


def test_interleave_writes_padding_as_zero_in_both_engines():
    """A float64 after a uint8 leaves 7 padding bytes per point; the kernel zeroes them in a dirty buffer."""
    for n, step in [(9, 16), (9, 24), (5, 10)]:  # 16/24: SIMD engine + 1 tail row; 10: the other engine
        a, b = np.arange(n, dtype=np.uint8) + 1, np.arange(n, dtype=np.float64) + 0.5
        dst = bytearray(b"\xff" * (n * step))
        interleave(dst, step, n, [(a, 0), (b, step - 8)])
        rows = np.frombuffer(bytes(dst), np.uint8).reshape(n, step)
        assert (rows[:, 1:step - 8] == 0).all() and (rows[:, 0] == a).all()
        assert (rows[:, step - 8:].copy().view(np.float64)[:, 0] == b).all()


def test_interleave_validates_everything_before_writing():
    n = 6
    x, lab = np.arange(n, dtype=np.float32), np.arange(n, dtype=np.uint16)
    dst = bytearray(b"\x77" * (n * 8))
    bad = [
        ((dst, 8, n, [(x[:5], 0)]), "source has 5 points, expected n=6"),  # short source
        ((dst, 8, n, [(x, 6)]), "4 bytes at dst_offset 6 do not fit in point_step 8"),  # offset past the point
        ((dst, 8, n, [(x, -1)]), "do not fit"),
        ((dst, 8, n, [(x, 0), (lab, 2)]), "overlap column 0"),
        ((bytearray(n * 8 - 1), 8, n, [(x, 0)]), "dst has 47 bytes, expected n\\*point_step = 6\\*8"),
        ((dst, 8, -1, [(x, 0)]), "n >= 0"),
        ((dst, 0, n, [(x, 0)]), "point_step must be > 0"),
        ((dst, 8, n, [(np.zeros((n, 1, 1), np.float32), 0)]), "3 dimensions"),
        ((dst, 8, n, [(x,)]), "expected a \\(src, dst_offset\\[, lut\\]\\) tuple"),
        ((dst, 8, n, [(lab, 0, np.zeros(0, np.uint32))]), "lookup table has no entries"),
        ((dst, 8, n, [(np.zeros((n, 2), np.uint16), 0, np.zeros(3, np.uint32))]), "lookup indices"),
        ((dst, 8, n, [(lab, 6, np.zeros(3, np.uint32))]), "do not fit"),  # the entry size counts, not the index's
    ]
    for args, message in bad:
        with pytest.raises(ValueError, match=message):
            interleave(*args)
        assert dst == b"\x77" * (n * 8), f"{message}: dst written before the error"
    with pytest.raises((TypeError, BufferError)):  # a read-only destination
        interleave(bytes(n * 8), 8, n, [(x, 0)])
    interleave(bytearray(0), 8, 0, [(x[:0], 0), (x[:0], 4)])  # no points: nothing to do, offsets still checked
    with pytest.raises(ValueError, match="do not fit"):
        interleave(bytearray(0), 8, 0, [(x[:0], 6)])


@pytest.mark.parametrize("index_dtype", ["u1", "<u2", "<u4", "<u8"])
def test_interleave_lookup_columns_clip_to_the_last_entry(index_dtype):
    rng = np.random.default_rng(1)
    n, step = 23, 12
    idx = rng.integers(0, 7, n).astype(index_dtype)
    idx[::5] = np.iinfo(idx.dtype).max  # past the table: the last entry
    lut4, lut2 = _random_bits(rng, (5,), np.dtype("<u4")), _random_bits(rng, (5,), np.dtype("<u2"))
    x = rng.random(n).astype(np.float32)
    dst = bytearray(b"\xee" * (n * step))
    interleave(dst, step, n, [(x, 0), (idx, 4, lut4), (idx[::-1], 8, lut2), (idx[:1].reshape(()), 10, lut2)])
    rows = np.frombuffer(bytes(dst), np.uint8).reshape(n, step)
    clip = np.minimum(idx.astype(np.int64), 4)
    assert (rows[:, 4:8].copy().view("<u4")[:, 0] == lut4[clip]).all()
    assert (rows[:, 8:10].copy().view("<u2")[:, 0] == lut2[clip[::-1]]).all()
    assert (rows[:, 10:12].copy().view("<u2")[:, 0] == lut2[clip[0]]).all()  # a 0-d index: a constant


@pytest.mark.parametrize("n, step", [(4 * 40 + 3, 24), (37, 16), (5, 32)])
def test_lookup_columns_in_the_words_engine_match_the_reference(n, step):
    """4-byte lookups at word offsets of a row that is a multiple of 4 bytes take the SIMD engine; a 2-byte
    lookup in the same row sends it to the other one. Both write the reference bytes (tail rows included)."""
    rng = np.random.default_rng(n + step)
    labels = rng.integers(0, 12, n).astype(np.uint16)
    labels[::9] = 65535
    table = _random_bits(rng, (10,), np.dtype("<u4"))
    other = _random_bits(rng, (n,), np.dtype("<f4"))
    wide_index = rng.integers(0, 2**40, n, dtype=np.uint64)
    clip = np.minimum(labels.astype(np.int64), 9)
    for extra in ({}, {"small": Lookup(labels, table.astype(np.uint16))}):
        columns = {"a": other, "c": Lookup(labels, table), "d": Lookup(wide_index, table),
                   "e": Lookup(labels[::-1], table), **extra}
        columns.update({f"pad{i}": other[::-1] for i in range(step // 4 - 4)})
        packed = pack_cloud(columns)
        assert packed.point_step == (step + 4 if extra else step)  # the 2-byte field is padded to a word
        arr = _as_struct(packed)
        assert (arr["c"] == table[clip]).all() and (arr["e"] == table[clip[::-1]]).all()
        assert (arr["d"] == table[np.minimum(wide_index, 9).astype(np.int64)]).all()
        assert (arr["a"].view(np.uint32) == other.view(np.uint32)).all()
        plain = {k: (v.table[np.minimum(v.index.astype(np.uint64), len(v.table) - 1).astype(np.int64)]
                     if isinstance(v, Lookup) else v) for k, v in columns.items()}
        assert bytes(packed.data) == bytes(pack_cloud(plain).data)  # the same bytes as materialized columns


def test_lookup_columns_want_unsigned_indices_and_a_table():
    with pytest.raises(ValueError, match="unsigned"):
        Lookup(np.array([0, -1, 2], np.int16), np.zeros(3, np.uint32))
    with pytest.raises(ValueError, match="unsigned"):
        Lookup(np.zeros((2, 2), np.uint16), np.zeros(3, np.uint32))
    with pytest.raises(ValueError, match="non-empty"):
        Lookup(np.zeros(2, np.uint16), np.zeros(0, np.uint32))
    with pytest.raises(ValueError, match="3 points"):
        pack_cloud({"x": np.zeros(2, np.float32), "c": Lookup(np.zeros(3, np.uint16), np.zeros(3, np.uint32))})
    with pytest.raises(ValueError, match="non-negative"):
        pack_panoptic_cloud(_xyz(3), None, np.array([0, -2, 1]), np.zeros(3, np.uint32), np.zeros(3, np.float32),
                              np.zeros((2, 3), np.uint8))


# ------------------------------------------------------------------------------------------- pack
def _reference_panoptic(xyz, intensity, labels, inst, scores, rgb_u32, vocab_version):
    """The output layout written out by hand: a structured array with fixed offsets, field by field."""
    off = 16 if intensity is not None else 12
    names, formats, offsets = ["x", "y", "z"], ["<f4"] * 3, [0, 4, 8]
    if intensity is not None:
        names, formats, offsets = names + ["intensity"], formats + ["<f4"], offsets + [12]
    names, formats, offsets = names + ["label"], formats + ["<u2"], offsets + [off]
    if vocab_version is not None:
        names, formats, offsets = names + ["vocab_version"], formats + ["<u2"], offsets + [off + 2]
    names += ["instance_id", "score", "rgb"]
    formats += ["<u4", "<f4", "<u4"]
    offsets += [off + 4, off + 8, off + 12]
    arr = np.zeros(len(xyz), np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                       "itemsize": off + 16}))
    arr["x"], arr["y"], arr["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if intensity is not None:
        arr["intensity"] = intensity
    arr["label"] = labels
    if vocab_version is not None:
        arr["vocab_version"] = vocab_version & 0xFFFF
    arr["instance_id"], arr["score"], arr["rgb"] = inst, scores, rgb_u32
    return arr.tobytes()


@pytest.mark.parametrize("n", [1, 3, 1001])
@pytest.mark.parametrize("with_intensity", [True, False])
@pytest.mark.parametrize("vocab_version", [None, 0, 9, 0x1ABCD])
def test_pack_panoptic_cloud_is_byte_for_byte_the_reference_layout(n, with_intensity, vocab_version):
    xyz = _xyz(n)
    xyz[0, 0] = np.nan
    if n > 2:
        xyz[1, 1] = -0.0
        xyz[2].view(np.uint32)[:] = [0x7F800001, 0xFFC00001, 0x00000001]  # signalling NaN, NaN payload, denormal
    inten = RNG.random(n).astype(np.float32) if with_intensity else None
    labels = RNG.integers(0, 65536, n).astype(np.uint16)
    inst = RNG.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    scores = RNG.random(n).astype(np.float32)
    palette = RNG.integers(0, 256, (7, 3)).astype(np.uint8)
    labels[: n // 2] = RNG.integers(0, 9, n // 2)  # in the palette, just past it, and far past it (65535 too)
    packed_palette = (palette[:, 0].astype(np.uint32) << 16) | (palette[:, 1].astype(np.uint32) << 8) | palette[:, 2]
    rgb = np.append(packed_palette, 0x808080)[np.minimum(labels, 7)].astype(np.uint32)  # gray past the palette
    expected = _reference_panoptic(xyz, inten, labels, inst, scores, rgb, vocab_version)
    packed = pack_panoptic_cloud(xyz, inten, labels, inst, scores, palette, vocab_version=vocab_version)
    assert bytes(packed.data) == expected
    assert (packed.fields, packed.point_step) == panoptic_fields(with_intensity, vocab_version is not None)
    # the same from the strided views read_cloud returns, and from wider dtypes
    cloud = read_cloud(driver_cloud(xyz, inten, 0, "l"))
    assert bytes(pack_panoptic_cloud(cloud.xyz, cloud.intensity if with_intensity else None, labels, inst, scores,
                                       palette, vocab_version).data) == expected
    # wider input dtypes are cast to the layout's types, as a structured-array assignment casts them
    wide = (RNG.normal(0, 10, (n, 3)), None if inten is None else inten.astype(np.float64), labels.astype(np.int64),
            inst.astype(np.int64), scores.astype(np.float64))
    assert bytes(pack_panoptic_cloud(*wide, palette, vocab_version).data) == _reference_panoptic(
        *wide, rgb, vocab_version)


def _result(n=40, classes=3):
    labels = RNG.integers(0, classes, n).astype(np.uint16)
    labels[::7] = UNLABELED
    return labels, RNG.integers(0, 5, n).astype(np.uint32), RNG.random(n).astype(np.float32)


@pytest.mark.parametrize("with_intensity", [True, False])
def test_packed_cloud_layout_and_values(with_intensity):
    n = 40
    xyz = _xyz(n)
    inten = RNG.random(n).astype(np.float32) if with_intensity else None
    labels, inst, scores = _result(n)
    vocab = Vocabulary(("car", "road", "tree"), ("road",))
    packed = pack_panoptic_cloud(xyz, inten, labels, inst, scores, vocab.colors(), vocab_version=7)
    names = [f[0] for f in packed.fields]
    expected = ["x", "y", "z"] + (["intensity"] if with_intensity else []) + [
        "label", "vocab_version", "instance_id", "score", "rgb"]
    assert names == expected
    assert packed.point_step == (32 if with_intensity else 28)
    assert all(f[1] % POINTFIELD_DTYPES[f[2]].itemsize == 0 for f in packed.fields)  # naturally aligned
    assert len(packed.data) == n * packed.point_step
    arr = _as_struct(packed)
    np.testing.assert_array_equal(np.stack([arr["x"], arr["y"], arr["z"]], 1), xyz)
    np.testing.assert_array_equal(arr["label"], labels)
    np.testing.assert_array_equal(arr["instance_id"], inst)
    np.testing.assert_array_equal(arr["score"], scores)
    assert (arr["vocab_version"] == 7).all()
    if with_intensity:
        np.testing.assert_array_equal(arr["intensity"], inten)
    bits = arr["rgb"].view(np.uint32)
    colors = vocab.colors()
    for i in range(n):
        r, g, b = UNLABELED_RGB if labels[i] == UNLABELED else colors[labels[i]]
        assert bits[i] == (int(r) << 16) | (int(g) << 8) | int(b)


def test_class_color_table_packs_the_palette_and_ends_gray():
    palette = np.array([[255, 0, 0], [1, 2, 3]], np.uint8)
    table = class_color_table(palette)
    assert table.dtype == np.float32 and table.view(np.uint32).tolist() == [0xFF0000, 0x010203, 0x808080]
    labels, inst, scores = _result(10)
    a = pack_panoptic_cloud(_xyz(10), None, labels, inst, scores, palette)
    assert "vocab_version" not in [f[0] for f in a.fields]
    expected = table.view(np.uint32)[np.minimum(labels, 2).astype(np.int64)]
    np.testing.assert_array_equal(_as_struct(a)["rgb"].view(np.uint32), expected)


def test_rclpy_message_takes_the_buffer_without_copy_and_reads_back():
    xyz = _xyz(30)
    labels, inst, scores = _result(30)
    packed = pack_panoptic_cloud(xyz, None, labels, inst, scores, np.zeros((3, 3), np.uint8))
    msg = to_pointcloud2(packed, Header(frame_id="lidar"), PointCloud2, PointField)
    # the packed array.array('B') itself: no copy, and never a numpy array (0.5 s element-wise conversion)
    assert msg.data is packed.data and msg.data.typecode == "B"
    assert (msg.width, msg.height, msg.point_step, msg.row_step) == (30, 1, packed.point_step, 30 * packed.point_step)
    assert msg.is_dense and not msg.is_bigendian
    np.testing.assert_array_equal(read_cloud(msg).xyz, xyz)


def test_pack_rejects_misaligned_inputs_and_handles_empty():
    with pytest.raises(ValueError, match="labels"):
        pack_panoptic_cloud(_xyz(5), None, np.zeros(4, np.uint16), np.zeros(5, np.uint32), np.zeros(5, np.float32),
                              np.zeros((5, 3), np.uint8))
    empty = pack_panoptic_cloud(np.zeros((0, 3), np.float32), None, np.zeros(0, np.uint16), np.zeros(0, np.uint32),
                                  np.zeros(0, np.float32), np.zeros((3, 3), np.uint8))
    assert empty.num_points == 0 and len(empty.data) == 0


# ------------------------------------------------------------------------------------------- images
def _image(rgb, encoding="rgb8", pad=0):
    h, w = rgb.shape[:2]
    px = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1]}[encoding]
    c = px.shape[2]
    rows = np.zeros((h, w * c + pad), np.uint8)
    rows[:, : w * c] = px.reshape(h, -1)
    return Image(height=h, width=w, encoding=encoding, step=w * c + pad, data=rows.tobytes())


def test_raw_images_convert_to_rgb():
    rgb = RNG.integers(0, 256, (6, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(image_to_rgb(_image(rgb)), rgb)
    np.testing.assert_array_equal(image_to_rgb(_image(rgb, "bgr8")), rgb)
    np.testing.assert_array_equal(image_to_rgb(_image(rgb, pad=5)), rgb)  # step padding respected
    np.testing.assert_array_equal(image_to_rgb(_image(rgb, "bgr8", pad=3)), rgb)
    mono = image_to_rgb(_image(rgb, "mono8", pad=1))
    assert mono.shape == (6, 7, 3)
    np.testing.assert_array_equal(mono[..., 1], rgb[..., 0])


def test_image_errors():
    rgb = RNG.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    bad_enc = _image(rgb)
    bad_enc.encoding = "32FC1"
    with pytest.raises(ImageError, match="unsupported image encoding") as e:
        image_to_rgb(bad_enc)
    assert e.value.kind == "image_bad_encoding"
    short = _image(rgb)
    short.data = bytes(short.data)[:-1]
    with pytest.raises(ImageError, match="step\\*height") as e:
        image_to_rgb(short)
    assert e.value.kind == "image_bad_layout"


def _raw(px, encoding, width, pad=0, big_endian=False):
    """An Image of the pixel rows `px` (H, ...) as raw bytes, each row padded by `pad` bytes."""
    h = px.shape[0]
    flat = np.ascontiguousarray(px).reshape(h, -1).view(np.uint8)
    rows = np.zeros((h, flat.shape[1] + pad), np.uint8)
    rows[:, :flat.shape[1]] = flat
    return Image(height=h, width=width, encoding=encoding, step=rows.shape[1], data=rows.tobytes(),
                 is_bigendian=big_endian)


def test_8uc3_is_read_as_bgr_and_16_bit_grey_by_its_high_byte_in_either_byte_order():
    rgb = RNG.integers(0, 256, (5, 6, 3)).astype(np.uint8)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_array_equal(image_to_rgb(_raw(bgr, "8UC3", 6, pad=2)), rgb)
    grey = RNG.integers(0, 65536, (5, 6)).astype(np.uint16)
    for encoding in ("mono16", "16UC1"):
        little = image_to_rgb(_raw(grey.astype("<u2"), encoding, 6, pad=4))
        big = image_to_rgb(_raw(grey.astype(">u2"), encoding, 6, big_endian=True))
        for out in (little, big):
            assert out.shape == (5, 6, 3)
            np.testing.assert_array_equal(out[..., 2], (grey >> 8).astype(np.uint8))


def _bt601(rgb):
    r, g, b = np.moveaxis(rgb.astype(np.float64), 2, 0)
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return [np.rint(c).astype(np.uint8) for c in (y, u, v)]


@pytest.mark.parametrize("encoding,order", [("yuv422", "uyvy"), ("yuv422_yuy2", "yuyv")])
def test_packed_yuv422_decodes_to_the_rgb_it_was_made_from(encoding, order):
    """Each pixel pair shares one colour (4:2:2 shares its chroma), so the round trip is exact up to rounding."""
    pairs = RNG.integers(30, 226, (4, 3, 3)).astype(np.uint8)
    rgb = np.repeat(pairs, 2, axis=1)
    y, u, v = _bt601(pairs)
    quad = {"uyvy": (u, y, v, y), "yuyv": (y, u, y, v)}[order]
    packed = np.stack(quad, axis=2).reshape(4, -1)
    out = image_to_rgb(_raw(packed, encoding, 6, pad=3))
    assert out.shape == (4, 6, 3)
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 3
    odd = Image(height=4, width=5, encoding=encoding, step=10, data=bytes(40))
    with pytest.raises(ImageError, match="width 5 is odd") as e:
        image_to_rgb(odd)
    assert e.value.kind == "image_bad_layout"


@pytest.mark.parametrize("encoding,red", [("bayer_rggb8", (0, 0)), ("bayer_bggr8", (1, 1)),
                                          ("bayer_gbrg8", (1, 0)), ("bayer_grbg8", (0, 1))])
def test_bayer_mosaics_demosaic_tile_by_tile(encoding, red):
    tiles = RNG.integers(0, 256, (3, 4, 3)).astype(np.uint8)
    rgb = np.repeat(np.repeat(tiles, 2, axis=0), 2, axis=1)  # (6, 8, 3): one colour per 2x2 tile
    mosaic = rgb[:, :, 1].copy()
    r0, c0 = red
    mosaic[r0::2, c0::2] = rgb[r0::2, c0::2, 0]
    mosaic[1 - r0::2, 1 - c0::2] = rgb[1 - r0::2, 1 - c0::2, 2]
    np.testing.assert_array_equal(image_to_rgb(_raw(mosaic, encoding, 8, pad=1)), rgb)
    ragged = image_to_rgb(_raw(mosaic[:5, :7], encoding, 7))  # odd sizes keep their shape and whole tiles
    assert ragged.shape == (5, 7, 3)
    np.testing.assert_array_equal(ragged[:4, :6], rgb[:4, :6])


def _jpeg(rgb, fmt="JPEG"):
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def test_compressed_images_decode():
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 30, 40)
    png = compressed_to_rgb(CompressedImage(format="png", data=_jpeg(rgb, "PNG")))
    np.testing.assert_array_equal(png, rgb)
    jpg = compressed_to_rgb(CompressedImage(format="bgr8; jpeg compressed bgr8", data=_jpeg(rgb)))
    assert jpg.shape == rgb.shape and np.abs(jpg.astype(int) - rgb).mean() < 6


def png_claiming_size(width: int, height: int) -> bytes:
    """A PNG whose header says width x height but whose pixel data is a 4x4 image's: as cheap to send as it
    is expensive to decode, were it decoded."""
    small = _jpeg(np.zeros((4, 4, 3), np.uint8), "PNG")
    ihdr = struct.pack(">II", width, height) + small[24:29]
    return small[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + small[33:]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # what the header claims, never decoded
def test_compressed_size_is_checked_before_decoding():
    """Issue 10: a 291 KB 10000x10000 PNG was decoded in full (2.9 s, +438 MB) before the size check."""
    from PIL import ImageFile

    png = _jpeg(RNG.integers(0, 256, (24, 32, 3)).astype(np.uint8), "PNG")
    jpeg = _jpeg(RNG.integers(0, 256, (24, 32, 3)).astype(np.uint8))
    decode = ImageFile.ImageFile.load
    with mock.patch.object(ImageFile.ImageFile, "load", autospec=True, side_effect=decode) as load:
        for fmt, data in (("png", png), ("jpeg", jpeg), ("png", png_claiming_size(10000, 10000))):
            with pytest.raises(ImageError, match="but CameraInfo says 32x12") as e:
                compressed_to_rgb(CompressedImage(format=fmt, data=data), size=(32, 12))
            assert e.value.kind == "image_size_mismatch"
        assert load.call_count == 0
        for fmt, data in (("png", png), ("jpeg", jpeg)):
            assert compressed_to_rgb(CompressedImage(format=fmt, data=data), size=(32, 24)).shape == (24, 32, 3)
        assert load.call_count >= 2  # the spy sees every decode
    with pytest.raises(ImageError, match="but CameraInfo says 30x24") as e:
        image_to_rgb(_image(RNG.integers(0, 256, (24, 32, 3)).astype(np.uint8)), size=(30, 24))
    assert e.value.kind == "image_size_mismatch"


def test_only_jpeg_and_png_are_decoded():
    """Whatever the format string says, PIL never picks another decoder (a BMP sent as 'jpeg' is corrupt)."""
    bmp = _jpeg(np.zeros((4, 4, 3), np.uint8), "BMP")
    with pytest.raises(ImageError, match="corrupt jpeg") as e:
        compressed_to_rgb(CompressedImage(format="jpeg", data=bmp))
    assert e.value.kind == "image_corrupt"


def test_compressed_errors():
    with pytest.raises(ImageError) as e:
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"\xff\xd8 definitely not a jpeg"))
    assert e.value.kind == "image_corrupt"
    truncated = _jpeg(RNG.integers(0, 256, (32, 32, 3)).astype(np.uint8))[:60]
    with pytest.raises(ImageError) as e:
        compressed_to_rgb(CompressedImage(format="jpeg", data=truncated))
    assert e.value.kind == "image_corrupt"
    with pytest.raises(ImageError, match="unsupported compressed format") as e:
        compressed_to_rgb(CompressedImage(format="16UC1; compressedDepth", data=b"x"))
    assert e.value.kind == "image_bad_encoding"


# ------------------------------------------------------------------------------------------- camera info
EXT = CameraExtrinsics(np.eye(4), 0.02)


def _info(model="plumb_bob", d=(0.1, -0.01, 0.0, 0.0, 0.0), k=(100.0, 0, 50, 0, 100.0, 40, 0, 0, 1)):
    return CameraInfo(width=100, height=80, distortion_model=model, d=list(d), k=list(k))


def test_camera_models_from_info():
    cam = camera_model_from_info("front", _info(), EXT)
    assert (cam.width, cam.height, cam.distortion_model, cam.time_offset_s) == (100, 80, "plumb_bob", 0.02)
    assert cam.K[0, 0] == 100.0 and cam.D.size == 5
    rat = camera_model_from_info("front", _info("rational_polynomial", d=[0.1] * 8), EXT)
    assert rat.distortion_model == "rational_polynomial" and rat.D.size == 8
    assert camera_model_from_info("f", _info(d=()), EXT).D.tolist() == [0.0] * 5  # empty D: undistorted
    assert camera_model_from_info("f", _info("", d=()), EXT).distortion_model == "none"


def test_equidistant_camera_info_is_a_fisheye_camera_model():
    """ROS 'equidistant' (OpenCV's fisheye model): k1..k4, or no coefficients at all (no distortion)."""
    fish = camera_model_from_info("front", _info("equidistant", d=[0.05, -0.01, 0.002, -0.0005]), EXT)
    assert (fish.distortion_model, fish.D.tolist()) == ("equidistant", [0.05, -0.01, 0.002, -0.0005])
    assert camera_model_from_info("f", _info("equidistant", d=()), EXT).D.tolist() == [0.0] * 4
    assert "equidistant needs 4 coefficients, got 5" in _info_error(_info("equidistant"), "camera_info_bad_distortion")
    assert "needs 4 coefficients, got 8" in _info_error(_info("equidistant", d=[0.1] * 8),
                                                        "camera_info_bad_distortion")
    assert "not all finite" in _info_error(_info("equidistant", d=[0.1, np.inf, 0, 0]), "camera_info_bad_distortion")


def _info_error(info, kind: str) -> str:
    with pytest.raises(CameraInfoError) as e:
        camera_model_from_info("front", info, EXT)
    assert e.value.kind == kind, str(e.value)
    assert "front" not in str(e.value)  # the caller names the camera, once (issue 10: it said so three times)
    return str(e.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("model, n", [("plumb_bob", 5), ("rational_polynomial", 8), ("equidistant", 4), ("none", 5)])
def test_nonfinite_distortion_coefficients_are_a_camera_info_problem(bad, model, n):
    """Issue 10: a NaN or inf coefficient reached the core, whose field-of-view search failed every frame."""
    d = [0.0] * n
    d[n // 2] = bad
    assert "not all finite" in _info_error(_info(model, d=d), "camera_info_bad_distortion")


def test_nonfinite_camera_models_are_refused_by_the_core():
    """The core refuses them too, naming the camera, whoever builds the model."""
    from ov_panoptic_ros.core.frame import CameraModel

    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    for kw in ({"D": [0.1, np.nan, 0, 0, 0], "distortion_model": "plumb_bob"}, {"K": np.where(k == 50, np.inf, k)},
               {"T_cam_lidar": np.full((4, 4), np.nan)}):
        with pytest.raises(ValueError, match="camera 'front': .* not all finite"):
            CameraModel(**{"name": "front", "width": 100, "height": 80, "K": k, **kw})


@pytest.mark.parametrize("k, why", [
    ((100.0, 0, 50, 0, 100.0, 40, 0, 0, 0), "K[2,2] = 0"),
    ((100.0, 0, 50, 0, 100.0, 40, 0, 0, 2), "K[2,2] = 2: the projection reads fx, fy, cx, cy, skew only"),
    ((100.0, 0, 50, 3, 100.0, 40, 0, 0, 1), "K[1,0] != 0"),
    ((100.0, 0, 50, 0, -100.0, 40, 0, 0, 1), "negative fy"),
    ((100.0, 0, np.nan, 0, 100.0, 40, 0, 0, 1), "NaN cx"),
    ((100.0, 0, 50, 0, 100.0, 40, 0, 0), "8 values"),
])
def test_camera_info_k_must_be_an_intrinsic_matrix(k, why):
    assert "K is not [[fx, s, cx], [0, fy, cy], [0, 0, 1]]" in _info_error(_info(k=k), "camera_info_bad_k"), why


def test_camera_info_of_no_size_is_its_own_problem():
    """Issue 10: 0x0 went to a generic camera_info_bad counter the README did not list."""
    info = _info()
    info.width = info.height = 0
    assert "0x0" in _info_error(info, "camera_info_bad_size")


def test_camera_models_notice_a_binning_or_roi_change():
    """Issue 10: with K, D and size unchanged, a new binning or ROI kept the cached model in use."""
    models = CameraModels()
    models.update("front", _info())
    assert models.model("front", EXT.T_cam_lidar).width == 100
    binned = _info()
    binned.binning_x = 2
    roi = _info()
    roi.roi.x_offset, roi.roi.width, roi.roi.height = 10, 50, 40
    for info, reason in ((binned, "binning"), (roi, "region of interest")):
        models.update("front", info)
        with pytest.raises(CameraInfoError, match=reason) as e:
            models.model("front", EXT.T_cam_lidar)
        assert e.value.kind == "camera_info_unsupported"
        models.update("front", _info())
        assert models.model("front", EXT.T_cam_lidar).width == 100
    full = _info()
    full.roi.width, full.roi.height = 100, 80  # the whole image: no region of interest
    assert camera_model_from_info("front", full, EXT).width == 100


def test_every_input_error_kind_is_a_counter():
    """A kind outside PROBLEMS would reach no /diagnostics counter: refused where it is raised."""
    with pytest.raises(ValueError, match="unknown problem kind 'image_bad'"):
        ImageError("something", kind="image_bad")
    with pytest.raises(ValueError, match="unknown problem kind None"):
        CameraInfoError("no kind given")
    assert InputError("x", kind="cloud_too_large").kind == "cloud_too_large"
    assert CloudError("x").kind == "cloud_bad_layout"


def test_camera_info_errors():
    assert "K is not" in _info_error(_info(k=[0.0] * 9), "camera_info_bad_k")
    with pytest.raises(CameraInfoError, match="unknown distortion model 'fisheye'.*equidistant") as e:
        camera_model_from_info("f", _info("fisheye", d=[0.1] * 4), EXT)  # the ROS name is equidistant
    assert e.value.kind == "camera_info_bad_distortion"
    with pytest.raises(CameraInfoError, match="needs 5"):
        camera_model_from_info("f", _info(d=[0.1] * 4), EXT)
    info = _info()
    info.width = 0
    assert "size 0x80" in _info_error(info, "camera_info_bad_size")


def test_converters_import_no_rclpy_and_no_message_packages():
    """The bag tools import the bridge without a ROS message runtime (and without torch)."""
    code = ("import sys, ov_panoptic_ros.bridge.assemble, ov_panoptic_ros.bridge.packing, ov_panoptic_ros.bridge.sync,"
            " ov_panoptic_ros.bridge.builders;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('rclpy','sensor_msgs','std_msgs','torch')];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _rect_info(p, r=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)):
    """A CameraInfo whose raw-image K and D would project differently from its P: rectified must use P."""
    info = _info(d=(0.3, 0.1, 0.0, 0.0, 0.0), k=(90.0, 0, 45, 0, 95.0, 35, 0, 0, 1))
    info.p, info.r = list(p), list(r)
    return info


MONO_P = (100.0, 0, 50, 0, 0, 100.0, 40, 0, 0, 0, 1, 0)


def test_rectified_cameras_project_with_p_and_r_and_no_distortion():
    cam = camera_model_from_info("front", _rect_info(MONO_P), EXT, rectified=True)
    assert cam.distortion_model == "none" and cam.D.size == 0
    np.testing.assert_array_equal(cam.K, np.array(MONO_P).reshape(3, 4)[:, :3])
    np.testing.assert_array_equal(cam.T_cam_lidar, np.eye(4))
    # The right camera of a stereo pair: P[0, 3] = -fx * baseline moves points by the baseline.
    right = camera_model_from_info("right", _rect_info((100.0, 0, 50, -100.0 * 0.5, 0, 100.0, 40, 0, 0, 0, 1, 0)),
                                   EXT, rectified=True)
    np.testing.assert_allclose(right.T_cam_lidar[:3, 3], [-0.5, 0.0, 0.0])
    # R rotates the camera frame into the rectified one: a point straight ahead lands off centre.
    angle = 0.1
    rot = (np.cos(angle), 0, np.sin(angle), 0, 1.0, 0, -np.sin(angle), 0, np.cos(angle))
    turned = camera_model_from_info("front", _rect_info(MONO_P, rot), EXT, rectified=True)
    x = turned.T_cam_lidar @ np.array([0.0, 0.0, 10.0, 1.0])
    u = 100.0 * x[0] / x[2] + 50
    assert abs(u - (50 + 100.0 * np.tan(angle))) < 1e-9
    zero_r = camera_model_from_info("front", _rect_info(MONO_P, [0.0] * 9), EXT, rectified=True)
    np.testing.assert_array_equal(zero_r.T_cam_lidar, np.eye(4))  # an unset R is the identity


@pytest.mark.parametrize("p, r, needle", [
    ([0.0] * 12, None, "a rectified camera needs CameraInfo P"),
    ([float("nan")] + list(MONO_P[1:]), None, "a rectified camera needs CameraInfo P"),
    (MONO_P[:8], None, "a rectified camera needs CameraInfo P"),
    (MONO_P, [2.0, 0, 0, 0, 1, 0, 0, 0, 1], "CameraInfo R is not a rotation"),
    (MONO_P, [1.0, 0, 0, 0, 1, 0, 0, 0, -1], "CameraInfo R is not a rotation"),  # a reflection
])
def test_a_rectified_camera_without_a_usable_p_or_r_is_a_camera_info_problem(p, r, needle):
    info = _rect_info(p) if r is None else _rect_info(p, r)
    with pytest.raises(CameraInfoError, match=needle) as e:
        camera_model_from_info("front", info, EXT, rectified=True)
    assert e.value.kind == "camera_info_bad_p"
    assert camera_model_from_info("front", info, EXT).distortion_model == "plumb_bob"  # raw: P is not read


def test_camera_models_use_p_for_rectified_cameras_and_rebuild_when_p_changes():
    models = CameraModels(rectified={"front"})
    models.update("front", _rect_info(MONO_P))
    models.update("back", _rect_info(MONO_P))
    assert models.model("front", EXT.T_cam_lidar).K[0, 0] == 100.0 and models.model("back", EXT.T_cam_lidar).K[0, 0] == 90.0
    models.update("front", _rect_info((120.0,) + MONO_P[1:]))
    assert models.model("front", EXT.T_cam_lidar).K[0, 0] == 120.0
