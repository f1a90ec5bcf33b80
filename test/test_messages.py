"""Message conversion: PointCloud2/Image/CompressedImage/CameraInfo <-> numpy, for rclpy and rosbags messages."""
import io
import subprocess
import sys

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ov_panoptic_ros.core.calibration import CameraExtrinsics
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.ros import messages as M
from ov_panoptic_ros.ros.scene_msgs import DRIVER_POINT_STEP, driver_cloud

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
    cloud = M.read_cloud(msg)
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
    cloud = M.read_cloud(bag_msg)
    np.testing.assert_array_equal(cloud.xyz, xyz)
    # and back: a rosbags output message from the same PackedCloud
    packed = M.pack_panoptic_cloud(xyz, None, np.zeros(50, np.uint16), np.zeros(50, np.uint32),
                                   np.zeros(50, np.float32), np.zeros((50, 3), np.uint8))
    out = M.to_pointcloud2(packed, bag_msg.header, ts.types["sensor_msgs/msg/PointCloud2"],
                           ts.types["sensor_msgs/msg/PointField"])
    assert out.data.dtype == np.uint8 and out.data.size == 50 * packed.point_step
    np.testing.assert_array_equal(M.read_cloud(out).xyz, xyz)


def test_scattered_fields_and_other_intensity_types():
    dt = np.dtype({"names": ["z", "i", "x", "y"], "formats": ["<f4", "<u2", "<f4", "<f4"],
                   "offsets": [0, 4, 8, 16], "itemsize": 24})
    arr = np.zeros(20, dt)
    xyz = _xyz(20)
    arr["x"], arr["y"], arr["z"], arr["i"] = xyz[:, 0], xyz[:, 1], xyz[:, 2], np.arange(20)
    fields = [("z", 0, M.FLOAT32, 1), ("intensity", 4, M.UINT16, 1), ("x", 8, M.FLOAT32, 1), ("y", 16, M.FLOAT32, 1)]
    cloud = M.read_cloud(_cloud_from_struct(arr, fields))
    np.testing.assert_array_equal(cloud.xyz, xyz)
    assert cloud.intensity.dtype == np.float32
    np.testing.assert_array_equal(cloud.intensity, np.arange(20, dtype=np.float32))


def test_padded_rows_are_stripped():
    dt = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8], "itemsize": 12})
    arr = np.zeros((2, 5), dt)
    xyz = _xyz(10).reshape(2, 5, 3)
    arr["x"], arr["y"], arr["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    padded = b"".join(arr[r].tobytes() + b"\xff" * 4 for r in range(2))  # 4 junk bytes per row
    fields = [("x", 0, M.FLOAT32, 1), ("y", 4, M.FLOAT32, 1), ("z", 8, M.FLOAT32, 1)]
    msg = _cloud_from_struct(arr.reshape(-1), fields, height=2, row_step=64, data=padded)
    np.testing.assert_array_equal(M.read_cloud(msg).xyz, xyz.reshape(-1, 3))


def test_nonfinite_points_are_masked_and_dropped():
    xyz = _xyz(6)
    xyz[1, 0], xyz[4, 2] = np.nan, np.inf
    cloud = M.read_cloud(driver_cloud(xyz, np.arange(6, dtype=np.float32), 0, "l"))
    assert cloud.finite.tolist() == [True, False, True, True, False, True] and cloud.num_finite == 4
    pts, inten = cloud.finite_points()
    np.testing.assert_array_equal(pts, xyz[[0, 2, 3, 5]])
    np.testing.assert_array_equal(inten, [0, 2, 3, 5])
    assert pts.flags.c_contiguous


def test_empty_cloud_reads_as_zero_points():
    cloud = M.read_cloud(driver_cloud(np.zeros((0, 3), np.float32), None, 0, "l"))
    assert cloud.num_points == 0 and cloud.xyz.shape == (0, 3)


def _bad(msg, kind, max_points=M.DEFAULT_MAX_POINTS):
    with pytest.raises(M.CloudError) as e:
        M.read_cloud(msg, max_points=max_points)
    assert e.value.kind == kind, str(e.value)
    return str(e.value)


def test_cloud_errors_name_the_problem():
    good = driver_cloud(_xyz(10), None, 0, "l")
    no_xyz = PointCloud2(height=1, width=10, point_step=4, row_step=40, data=bytes(40),
                         fields=[PointField(name="intensity", offset=0, datatype=M.FLOAT32, count=1)])
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
                      fields=[PointField(name=a, offset=8 * i, datatype=M.FLOAT64, count=1)
                              for i, a in enumerate("xyz")])
    assert "float32" in _bad(f64, "cloud_bad_field_type")
    assert good is not None and M.read_cloud(good).num_points == 10


def test_too_many_points_rejected_before_touching_the_payload():
    msg = driver_cloud(_xyz(10), None, 0, "l")
    msg.width = 2_000_000  # the payload does not even match: the size check must come first
    assert "max_points" in _bad(msg, "cloud_too_large")
    assert M.read_cloud(driver_cloud(_xyz(10), None, 0, "l"), max_points=10).num_points == 10
    _bad(driver_cloud(_xyz(11), None, 0, "l"), "cloud_too_large", max_points=10)


# ------------------------------------------------------------------------------------------- pack
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
    rgb = M.label_colors(labels, vocab.colors())
    packed = M.pack_panoptic_cloud(xyz, inten, labels, inst, scores, rgb, vocab_version=7)
    names = [f[0] for f in packed.fields]
    expected = ["x", "y", "z"] + (["intensity"] if with_intensity else []) + [
        "label", "vocab_version", "instance_id", "score", "rgb"]
    assert names == expected
    assert packed.point_step == (32 if with_intensity else 28)
    assert all(f[1] % M.POINTFIELD_DTYPES[f[2]].itemsize == 0 for f in packed.fields)  # naturally aligned
    assert len(packed.data) == n * packed.point_step
    arr = np.frombuffer(packed.data, M._numpy_dtype(packed.fields, packed.point_step))
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
        r, g, b = M.UNLABELED_RGB if labels[i] == UNLABELED else colors[labels[i]]
        assert bits[i] == (int(r) << 16) | (int(g) << 8) | int(b)


def test_per_point_rgb_uint8_matches_packed_form():
    labels, inst, scores = _result(10)
    colors = RNG.integers(0, 256, (10, 3)).astype(np.uint8)
    a = M.pack_panoptic_cloud(_xyz(10), None, labels, inst, scores, colors)
    b = M.pack_panoptic_cloud(_xyz(10), None, labels, inst, scores, M.pack_rgb(colors))
    fa = np.frombuffer(a.data, M._numpy_dtype(a.fields, a.point_step))["rgb"]
    fb = np.frombuffer(b.data, M._numpy_dtype(b.fields, b.point_step))["rgb"]
    np.testing.assert_array_equal(fa.view(np.uint32), fb.view(np.uint32))
    assert "vocab_version" not in [f[0] for f in a.fields]


def test_rclpy_message_takes_the_buffer_without_copy_and_reads_back():
    xyz = _xyz(30)
    labels, inst, scores = _result(30)
    packed = M.pack_panoptic_cloud(xyz, None, labels, inst, scores, M.label_colors(labels, np.zeros((3, 3), np.uint8)))
    msg = M.to_pointcloud2(packed, Header(frame_id="lidar"), PointCloud2, PointField)
    # an array.array('B') is handed over (one memcpy), never a numpy array (0.5 s element-wise conversion)
    assert msg.data.typecode == "B" and msg.data == packed.data
    assert (msg.width, msg.height, msg.point_step, msg.row_step) == (30, 1, packed.point_step, 30 * packed.point_step)
    assert msg.is_dense and not msg.is_bigendian
    np.testing.assert_array_equal(M.read_cloud(msg).xyz, xyz)


def test_pack_rejects_misaligned_inputs_and_handles_empty():
    with pytest.raises(ValueError, match="labels"):
        M.pack_panoptic_cloud(_xyz(5), None, np.zeros(4, np.uint16), np.zeros(5, np.uint32), np.zeros(5, np.float32),
                              np.zeros((5, 3), np.uint8))
    empty = M.pack_panoptic_cloud(np.zeros((0, 3), np.float32), None, np.zeros(0, np.uint16), np.zeros(0, np.uint32),
                                  np.zeros(0, np.float32), np.zeros((0, 3), np.uint8))
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
    np.testing.assert_array_equal(M.image_to_rgb(_image(rgb)), rgb)
    np.testing.assert_array_equal(M.image_to_rgb(_image(rgb, "bgr8")), rgb)
    np.testing.assert_array_equal(M.image_to_rgb(_image(rgb, pad=5)), rgb)  # step padding respected
    np.testing.assert_array_equal(M.image_to_rgb(_image(rgb, "bgr8", pad=3)), rgb)
    mono = M.image_to_rgb(_image(rgb, "mono8", pad=1))
    assert mono.shape == (6, 7, 3)
    np.testing.assert_array_equal(mono[..., 1], rgb[..., 0])


def test_image_errors():
    rgb = RNG.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    bad_enc = _image(rgb)
    bad_enc.encoding = "16UC1"
    with pytest.raises(M.ImageError, match="unsupported image encoding") as e:
        M.image_to_rgb(bad_enc)
    assert e.value.kind == "image_bad_encoding"
    short = _image(rgb)
    short.data = bytes(short.data)[:-1]
    with pytest.raises(M.ImageError, match="step\\*height") as e:
        M.image_to_rgb(short)
    assert e.value.kind == "image_bad_layout"


def _jpeg(rgb, fmt="JPEG"):
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def test_compressed_images_decode():
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 30, 40)
    png = M.compressed_to_rgb(CompressedImage(format="png", data=_jpeg(rgb, "PNG")))
    np.testing.assert_array_equal(png, rgb)
    jpg = M.compressed_to_rgb(CompressedImage(format="bgr8; jpeg compressed bgr8", data=_jpeg(rgb)))
    assert jpg.shape == rgb.shape and np.abs(jpg.astype(int) - rgb).mean() < 6


def test_compressed_errors():
    with pytest.raises(M.ImageError) as e:
        M.compressed_to_rgb(CompressedImage(format="jpeg", data=b"\xff\xd8 definitely not a jpeg"))
    assert e.value.kind == "image_corrupt"
    truncated = _jpeg(RNG.integers(0, 256, (32, 32, 3)).astype(np.uint8))[:60]
    with pytest.raises(M.ImageError) as e:
        M.compressed_to_rgb(CompressedImage(format="jpeg", data=truncated))
    assert e.value.kind == "image_corrupt"
    with pytest.raises(M.ImageError, match="unsupported compressed format") as e:
        M.compressed_to_rgb(CompressedImage(format="16UC1; compressedDepth", data=b"x"))
    assert e.value.kind == "image_bad_encoding"


# ------------------------------------------------------------------------------------------- camera info
EXT = CameraExtrinsics(np.eye(4), 0.02)


def _info(model="plumb_bob", d=(0.1, -0.01, 0.0, 0.0, 0.0), k=(100.0, 0, 50, 0, 100.0, 40, 0, 0, 1)):
    return CameraInfo(width=100, height=80, distortion_model=model, d=list(d), k=list(k))


def test_camera_models_from_info():
    cam = M.camera_model_from_info("front", _info(), EXT)
    assert (cam.width, cam.height, cam.distortion_model, cam.time_offset_s) == (100, 80, "plumb_bob", 0.02)
    assert cam.K[0, 0] == 100.0 and cam.D.size == 5
    rat = M.camera_model_from_info("front", _info("rational_polynomial", d=[0.1] * 8), EXT)
    assert rat.distortion_model == "rational_polynomial" and rat.D.size == 8
    assert M.camera_model_from_info("f", _info(d=()), EXT).D.tolist() == [0.0] * 5  # empty D: undistorted
    assert M.camera_model_from_info("f", _info("", d=()), EXT).distortion_model == "none"


def test_camera_info_errors():
    with pytest.raises(M.CameraInfoError, match="focal") as e:
        M.camera_model_from_info("f", _info(k=[0.0] * 9), EXT)
    assert e.value.kind == "camera_info_bad_k"
    with pytest.raises(M.CameraInfoError, match="unknown distortion model 'equidistant'") as e:
        M.camera_model_from_info("f", _info("equidistant", d=[0.1] * 4), EXT)
    assert e.value.kind == "camera_info_bad_distortion"
    with pytest.raises(M.CameraInfoError, match="needs 5"):
        M.camera_model_from_info("f", _info(d=[0.1] * 4), EXT)
    info = _info()
    info.width = 0
    with pytest.raises(M.CameraInfoError, match="size"):
        M.camera_model_from_info("f", info, EXT)


def test_converters_import_no_rclpy_and_no_message_packages():
    """The bag tools import these without a ROS message runtime."""
    code = ("import sys, ov_panoptic_ros.ros.messages, ov_panoptic_ros.ros.sync;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('rclpy','sensor_msgs','std_msgs','torch')];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
