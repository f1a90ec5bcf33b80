"""Fuzzing the bridge (issue 10): whatever a driver sends, a clear counted reason or a correct frame.

hypothesis generates PointCloud2 layouts (field sets, offsets, datatypes, counts, point_step, row_step,
height/width, endianness, data lengths, NaN/inf values), raw and compressed images (encodings, steps,
sizes, data lengths, corrupt or oversized payloads) and camera infos (K, D, models, binning, ROI, sizes,
non-finite values). The messages are SimpleNamespaces: the bridge reads messages by their fields. Every
example must give an InputError whose kind is a /diagnostics counter (bridge.problems.PROBLEMS), or
exactly what the message describes: the finite x/y/z it holds, images of its camera's size. Messages built
to be valid must be accepted. The references read bytes one value at a time with `struct`, not the way
the bridge does.

Deterministic (derandomized, no example database) and bounded for CI: 150 examples per property, about
10 s of CPU for the file. OV_PANOPTIC_FUZZ_EXAMPLES=5000 fuzzes deeper by hand.
"""
import io
import os
import struct
import zlib
from types import SimpleNamespace as Msg
from unittest import mock

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from ov_panoptic_ros.bridge.assemble import CameraStream, assemble_frame
from ov_panoptic_ros.bridge.camera_info import CameraModels, camera_model_from_info
from ov_panoptic_ros.bridge.clouds import FLOAT32, POINTFIELD_DTYPES, read_cloud
from ov_panoptic_ros.bridge.extrinsics import Extrinsics
from ov_panoptic_ros.bridge.images import compressed_to_rgb, image_to_rgb
from ov_panoptic_ros.bridge.problems import PROBLEMS, InputError
from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics

FUZZ_EXAMPLES = int(os.environ.get("OV_PANOPTIC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=FUZZ_EXAMPLES)
EXT = CameraExtrinsics(np.eye(4), 0.0)
HEADER = Msg(stamp=Msg(sec=0, nanosec=7), frame_id="cam")  # every message has one; its content is not fuzzed
READ = ("x", "y", "z", "intensity")
# a float64 intensity beyond float32's range becomes inf, as numpy casts it
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def assert_counted(error: InputError) -> None:
    assert isinstance(error, InputError) and error.kind in PROBLEMS and str(error), repr(error)
    event(error.kind)  # what was covered: pytest --hypothesis-show-statistics


def _bytes(seed: int, n: int) -> bytearray:
    return bytearray(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())


# --------------------------------------------------------------------------------------------- clouds
# any float32 bit pattern (NaN payloads, +-inf, subnormals), with the special values often
any_f32 = st.one_of(st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0]),
                    st.integers(0, 2**32 - 1).map(lambda bits: struct.unpack("<f", struct.pack("<I", bits))[0]))
field = st.builds(lambda name, dt, count: Msg(name=name, offset=0, datatype=dt, count=count),
                  st.sampled_from(["intensity", "ring", "t", "_", "_", "normal"]), st.integers(1, 8),
                  st.integers(1, 3))


@st.composite
def valid_clouds(draw):
    """A little-endian cloud with x, y, z float32, optional extra fields of any type and count, packed in
    any order with gaps, padded points and rows, and its x/y/z values (NaN/inf too) written in."""
    fields = [Msg(name=a, offset=0, datatype=FLOAT32, count=1) for a in "xyz"]
    extras = draw(st.lists(field, max_size=4))
    fields += [f for i, f in enumerate(extras) if f.name != "intensity" or i == 0]  # read fields appear once
    order = draw(st.permutations(fields))
    offset = 0
    for f in order:
        offset += draw(st.integers(0, 3))
        f.offset = offset
        offset += POINTFIELD_DTYPES[f.datatype].itemsize * f.count
    step = offset + draw(st.integers(0, 4))
    width, height = draw(st.integers(0, 6)), draw(st.integers(0, 3))
    row_step = width * step + draw(st.integers(0, 5))
    data = _bytes(draw(st.integers(0, 2**32 - 1)), row_step * height)
    values = draw(st.lists(any_f32, min_size=3 * width * height, max_size=3 * width * height))
    offsets = {f.name: f.offset for f in order}
    for i, v in enumerate(values):
        point, axis = divmod(i, 3)
        base = (point // width) * row_step + (point % width) * step
        struct.pack_into("<f", data, base + offsets["xyz"[axis]], v)
    return Msg(fields=order, width=width, height=height, point_step=step, row_step=row_step,
               is_bigendian=False, data=bytes(data))


def _mutate(msg, change: str, value: int):
    """One way a driver gets a PointCloud2 wrong."""
    fields = [Msg(**vars(f)) for f in msg.fields]
    out = Msg(**{**vars(msg), "fields": fields})
    pick = fields[value % len(fields)]
    if change == "drop_field":
        fields.remove(pick)
    elif change == "datatype":
        pick.datatype = value % 11
    elif change == "count":
        pick.count = value % 4
    elif change == "offset":
        pick.offset = value % (msg.point_step + 6)
    elif change == "twice":
        fields.append(Msg(name=READ[value % 4], offset=(value // 4) % (msg.point_step + 1), datatype=FLOAT32,
                          count=1))
    elif change == "onto":  # a read field moved onto (part of) another one
        others = [f for f in fields if f.name in READ and f is not pick]
        if pick.name in READ and others:
            pick.offset = others[value % len(others)].offset + value % 3
    elif change == "point_step":
        out.point_step = max(0, msg.point_step + value % 9 - 4)
    elif change == "row_step":
        out.row_step = max(0, msg.row_step + value % 17 - 8)
    elif change == "data":
        out.data = msg.data[: value % (len(msg.data) + 1)] if value % 2 else msg.data + bytes(value % 7 + 1)
    elif change == "size":
        out.width, out.height = value % 7, (value // 7) % 4
    elif change == "big_endian":
        out.is_bigendian = True
    return out


MUTATIONS = ["drop_field", "datatype", "count", "offset", "twice", "onto", "point_step", "row_step", "data",
             "size", "big_endian"]


@st.composite
def any_clouds(draw):
    msg = draw(valid_clouds())
    for change in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        msg = _mutate(msg, change, draw(st.integers(0, 2**16)))
    return msg


def reference_cloud(msg):
    """(xyz, intensity or None) of every point, read one value at a time at the declared offsets."""
    by_name = {f.name: f for f in msg.fields}
    xyz, intensity = [], []
    for i in range(msg.width * msg.height):
        base = (i // msg.width) * msg.row_step + (i % msg.width) * msg.point_step
        xyz.append([struct.unpack_from("<f", msg.data, base + by_name[a].offset)[0] for a in "xyz"])
        if "intensity" in by_name:
            f = by_name["intensity"]
            intensity.append(np.frombuffer(msg.data, POINTFIELD_DTYPES[f.datatype], 1, base + f.offset)[0])
    xyz = np.array(xyz, np.float32).reshape(-1, 3)
    return xyz, np.array(intensity).astype(np.float32) if "intensity" in by_name else None


def assert_exact(cloud, msg) -> None:
    """The cloud holds exactly the message's points, and a Frame gets exactly its finite ones."""
    xyz, intensity = reference_cloud(msg)
    finite = np.isfinite(xyz).all(axis=1)
    assert cloud.num_points == len(xyz)
    np.testing.assert_array_equal(cloud.xyz, xyz)
    np.testing.assert_array_equal(cloud.finite, finite)
    points, inten = cloud.finite_points()
    np.testing.assert_array_equal(points, xyz[finite])
    if intensity is None:
        assert cloud.intensity is None and inten is None
    else:
        np.testing.assert_array_equal(inten, intensity[finite])


def _ambiguous(msg) -> bool:
    """A read field declared twice, or two read fields sharing a byte: the points would be a guess."""
    spans = []
    for f in msg.fields:
        if f.name in READ and f.datatype in POINTFIELD_DTYPES:
            size = POINTFIELD_DTYPES[f.datatype].itemsize * max(f.count, 1)
            spans.append((f.name, set(range(f.offset, f.offset + size))))
    names = [n for n, _ in spans]
    return len(set(names)) < len(names) or any(a & b for i, (_, a) in enumerate(spans) for _, b in spans[i + 1:])


@FUZZ
@given(valid_clouds())
def test_valid_clouds_read_exactly(msg):
    assert_exact(read_cloud(msg), msg)


@FUZZ
@given(any_clouds(), st.sampled_from([1_000_000, 5]))
def test_any_cloud_is_a_counted_reason_or_exact(msg, max_points):
    try:
        cloud = read_cloud(msg, max_points=max_points)
    except InputError as e:
        assert_counted(e)
        return
    assert not _ambiguous(msg), "a cloud with a field declared twice or overlapping fields was accepted"
    event("accepted")
    assert_exact(cloud, msg)


# --------------------------------------------------------------------------------------------- raw images
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc3": 3, "mono16": 2, "16uc1": 2,
            "yuv422": 2, "yuv422_yuy2": 2, "bayer_rggb8": 1, "bayer_gbrg8": 1}  # bytes per pixel
SHAPE_ONLY = ("yuv422", "yuv422_yuy2", "bayer_rggb8", "bayer_gbrg8")  # exact values: test_messages.py


def _size(draw, size, largest: int) -> tuple[int, int]:
    """`size` (the camera's) two times in three when given, else any, empty included."""
    if size is not None and draw(st.sampled_from([True, True, False])):
        return size
    return draw(st.integers(0, largest)), draw(st.integers(0, largest))


@st.composite
def raw_images(draw, size=None):
    """An Image: a known encoding (or not), a size, and a step and data length that agree (or not)."""
    encoding = draw(st.sampled_from([*CHANNELS, *CHANNELS, "RGB8", "16UC1", "32FC1", "bayer_bggr16", ""]))
    channels = CHANNELS.get(encoding.lower(), 2)
    width, height = _size(draw, size, 5)
    if draw(st.sampled_from([True, True, True, False])):  # step and data length agree with the size
        step = width * channels + draw(st.integers(0, 3))
        length = step * height
    else:
        step, length = draw(st.integers(0, 24)), draw(st.integers(0, 100))
    return Msg(header=HEADER, encoding=encoding, width=width, height=height, step=step,
               is_bigendian=draw(st.sampled_from([0, 1])), data=bytes(_bytes(draw(st.integers(0, 2**32 - 1)), length)))


def reference_rgb(msg) -> np.ndarray:
    enc = msg.encoding.lower()
    c = CHANNELS[enc]
    px = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * c]
    px = px.reshape(msg.height, msg.width, c)
    high = px[..., :1] if msg.is_bigendian else px[..., 1:2]  # 16-bit grey: its most significant byte
    return {"rgb8": px, "bgr8": px[..., ::-1], "8uc3": px[..., ::-1], "rgba8": px[..., :3], "bgra8": px[..., 2::-1],
            "mono8": np.repeat(px, 3, axis=2), "mono16": np.repeat(high, 3, axis=2),
            "16uc1": np.repeat(high, 3, axis=2)}[enc]


def _raw_valid(msg, size) -> bool:
    c = CHANNELS.get(msg.encoding.lower())
    return (c is not None and msg.width > 0 and msg.height > 0 and msg.step >= msg.width * c
            and len(msg.data) == msg.step * msg.height and (msg.width, msg.height) == size
            and not (msg.encoding.lower().startswith("yuv422") and msg.width % 2))


@FUZZ
@given(st.tuples(st.integers(1, 5), st.integers(1, 4)).flatmap(lambda size: st.tuples(raw_images(size), st.just(size))))
def test_raw_image_is_a_counted_reason_or_exact(msg_size):
    msg, size = msg_size
    try:
        rgb = image_to_rgb(msg, size=size)
    except InputError as e:
        assert_counted(e)
        assert not _raw_valid(msg, size), f"a valid image was refused: {e}"
        return
    assert _raw_valid(msg, size), "an image that does not describe its pixels was accepted"
    event("accepted")
    assert rgb.dtype == np.uint8 and rgb.shape == (size[1], size[0], 3)
    if msg.encoding.lower() not in SHAPE_ONLY:
        np.testing.assert_array_equal(rgb, reference_rgb(msg))


# --------------------------------------------------------------------------------------------- compressed images
SPOILS = ["none", "none", "none", "none", "truncate", "flip", "claim_size", "garbage", "empty"]
FORMATS = ["png", "jpeg", "jpg", "bgr8; jpeg compressed bgr8", "rgb8; png compressed rgb8", "PNG"]


def _encode(rgb: np.ndarray, mode: str, codec: str) -> bytes:
    from PIL import Image

    img = Image.fromarray(rgb).convert(mode)
    if codec == "JPEG" and mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format=codec)
    return buf.getvalue()


def _claim_size(payload: bytes, width: int, height: int) -> bytes:
    """The payload with another size in its header: PNG IHDR (with its CRC) or JPEG SOF0."""
    data = bytearray(payload)
    if data[:4] == b"\x89PNG":
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    else:
        sof = data.find(b"\xff\xc0")
        data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@st.composite
def compressed_images(draw, size=None):
    """(CompressedImage, the source image as PIL decodes it when the payload is intact, or None)."""
    width, height = _size(draw, size if size is None or min(size) > 0 else None, 12)
    width, height = max(width, 1), max(height, 1)  # PIL encodes no empty image
    rgb = np.frombuffer(_bytes(draw(st.integers(0, 2**32 - 1)), width * height * 3), np.uint8)
    codec = draw(st.sampled_from(["PNG", "JPEG"]))
    mode = draw(st.sampled_from(["RGB", "L", "LA", "RGBA", "P", "1", "I;16"] if codec == "PNG" else
                                ["RGB", "L", "CMYK"]))
    payload = _encode(rgb.reshape(height, width, 3), mode, codec)
    spoil = draw(st.sampled_from(SPOILS))
    value = draw(st.integers(0, 2**16))
    if spoil == "truncate":
        payload = payload[: value % len(payload)]
    elif spoil == "flip":
        data = bytearray(payload)
        data[value % len(data)] ^= 1 << (value % 8)
        payload = bytes(data)
    elif spoil == "claim_size":
        payload = _claim_size(payload, 1 + value % 20000, 1 + (value * 7) % 20000)
    elif spoil == "garbage":
        payload = bytes(_bytes(value, value % 64))
    elif spoil == "empty":
        payload = b""
    fmt = draw(st.sampled_from(FORMATS + FORMATS + ["bmp", "16UC1; compressedDepth png", ""]))
    return Msg(header=HEADER, format=fmt, data=payload), (width, height) if spoil == "none" and fmt in FORMATS else None


def _header_size(payload: bytes):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(payload), formats=("JPEG", "PNG")) as img:
            return img.size
    except Exception:  # no header PIL can read: no size to compare
        return None


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # sizes headers claim, never decoded
@FUZZ
@example(msg_intact_size=((Msg(format="png", data=_claim_size(_encode(np.zeros((4, 4, 3), np.uint8), "RGB", "PNG"),
                                                              10000, 10000)), None), (12, 12)))
@given(st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda size: st.tuples(compressed_images(size), st.just(size))))
def test_compressed_image_is_a_counted_reason_or_its_camera_size(msg_intact_size):
    """...and the size is compared before a pixel is decoded (issue 10: a 10000x10000 PNG was decoded)."""
    from PIL import ImageFile

    (msg, intact), size = msg_intact_size
    header = _header_size(msg.data)
    decode = ImageFile.ImageFile.load
    with mock.patch.object(ImageFile.ImageFile, "load", autospec=True, side_effect=decode) as load:
        try:
            rgb = compressed_to_rgb(msg, size=size)
        except InputError as e:
            assert_counted(e)
            assert intact != size, f"a valid image was refused: {e}"
            if header is not None and header != size and msg.format in FORMATS:
                assert e.kind == "image_size_mismatch" and load.call_count == 0, "decoded before the size check"
            return
    event("accepted")
    assert rgb.dtype == np.uint8 and rgb.shape == (size[1], size[0], 3)
    if intact == size and msg.data[:4] == b"\x89PNG":  # lossless: exactly the source
        from PIL import Image

        np.testing.assert_array_equal(rgb, np.array(Image.open(io.BytesIO(msg.data)).convert("RGB")))


# --------------------------------------------------------------------------------------------- camera infos
any_float = st.floats(allow_subnormal=True)  # NaN, +-inf, huge, tiny
INFO_PARTS = ["width", "height", "k", "d", "distortion_model", "binning_x", "binning_y", "roi"]


@st.composite
def camera_infos(draw, sizes=(1, 7, 16)):
    """A plausible CameraInfo of one of `sizes`, mostly with one part drawn from anything: a zero size, a K
    entry (NaN, inf, 0, subnormal, huge) or K's length, D's values or count, the distortion model, binning,
    a region of interest."""
    width, height = draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes))
    fx, fy = draw(st.floats(1.0, 2000.0)), draw(st.floats(1.0, 2000.0))
    cx, cy, skew = draw(st.floats(-50.0, 50.0)), draw(st.floats(-50.0, 50.0)), draw(st.sampled_from([0.0, 0.5]))
    k = [fx, skew, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    model = draw(st.sampled_from(["plumb_bob", "rational_polynomial", "equidistant", "none", "", " plumb_bob "]))
    n = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}.get(model.strip(), 0)
    d = draw(st.lists(st.floats(-0.5, 0.5), min_size=n, max_size=n))
    binning, roi = draw(st.sampled_from([(0, 0), (1, 1)])), draw(st.sampled_from(["zero", "full"]))
    part = draw(st.sampled_from([None, "size", "k", "d", "model", "binning", "roi"]))
    if part == "size":
        width, height = draw(st.sampled_from([0, *sizes])), draw(st.sampled_from([0, *sizes]))
    elif part == "k":
        k[draw(st.integers(0, 8))] = draw(st.one_of(st.sampled_from([0.0, 1.0, 2.0, -1.0, 1e-320]), any_float))
        k = k[: draw(st.sampled_from([9, 9, 9, 8, 0]))]
    elif part == "d":
        d = draw(st.lists(st.one_of(st.floats(-0.5, 0.5), any_float), min_size=0, max_size=9))
    elif part == "model":
        model = draw(st.sampled_from(["equidistant", "fisheye", "plumb bob", "PLUMB_BOB", "rational_polynomial"]))
    elif part == "binning":
        binning = (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    elif part == "roi":
        roi = draw(st.sampled_from(["part", "offset"]))
    box = {"zero": (0, 0, 0, 0), "full": (0, 0, width, height), "part": (0, 0, max(width - 1, 0), height),
           "offset": (1, 0, width, height)}[roi]
    return Msg(header=HEADER, width=width, height=height, k=k, d=d, distortion_model=model, binning_x=binning[0],
               binning_y=binning[1], roi=Msg(x_offset=box[0], y_offset=box[1], width=box[2], height=box[3],
                                             do_rectify=False))


def _model_or_error(info):
    try:
        return camera_model_from_info("cam", info, EXT)
    except InputError as e:
        assert_counted(e)
        return e


@FUZZ
@given(camera_infos())
def test_camera_info_is_a_counted_reason_or_its_model(info):
    model = _model_or_error(info)
    if isinstance(model, InputError):
        return
    event("accepted")
    assert (model.width, model.height) == (info.width, info.height)
    np.testing.assert_array_equal(model.K.ravel(), info.k)
    assert np.isfinite(model.D).all() and (model.D.size == 0 or model.D.size in (4, 5, 8))


# A CameraInfo the bridge accepts whose corners overflow (80 / 1e-320 = inf, times a zero skew = NaN): the
# core's field-of-view search found no radius in view and failed every frame.
TINY_FY = Msg(width=16, height=16, k=[100.0, 0.0, 8.0, 0.0, 1e-320, 0.0, 0.0, 0.0, 1.0], d=[0.0] * 5,
              distortion_model="plumb_bob", binning_x=0, binning_y=0,
              roi=Msg(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False))
NAN_D = Msg(**{**vars(TINY_FY), "k": [100.0, 0.0, 8.0, 0.0, 100.0, 8.0, 0.0, 0.0, 1.0],
               "d": [0.1, float("nan"), 0.0, 0.0, 0.0]})


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in the lens model of absurd coefficients
@FUZZ
@example(info=TINY_FY)
@example(info=NAN_D)
@given(camera_infos())
def test_a_camera_the_bridge_accepts_can_be_projected(info):
    """Issue 10: a NaN coefficient reached the core and lost every frame; nothing the bridge accepts may."""
    import torch

    from ov_panoptic_ros.core.config import ProjectionConfig
    from ov_panoptic_ros.core.geometry import project_points

    model = _model_or_error(info)
    if isinstance(model, InputError):
        return
    points = torch.from_numpy(np.random.default_rng(0).normal(0.0, 5.0, (64, 3)).astype(np.float32))
    points[:, 2] = points[:, 2].abs() + 0.5
    for occlusion in (False, True):
        pairs = project_points(points, [model], ProjectionConfig(occlusion=occlusion))
        u, v = pairs.uv[:, 0].numpy(), pairs.uv[:, 1].numpy()
        assert ((u >= -0.5) & (u < model.width - 0.5) & (v >= -0.5) & (v < model.height - 0.5)).all()


@st.composite
def camera_info_updates(draw):
    """A camera's CameraInfos over time: each one the one before with one part changed."""
    infos = [draw(camera_infos())]
    for part in draw(st.lists(st.sampled_from(INFO_PARTS), max_size=4)):
        infos.append(Msg(**{**vars(infos[-1]), part: getattr(draw(camera_infos()), part)}))
    return infos


@FUZZ
@given(camera_info_updates())
def test_camera_models_answer_as_a_fresh_build(infos):
    """The cache never answers for an older CameraInfo (issue 10: a binning or ROI change went unseen)."""
    models = CameraModels()
    for info in infos:
        models.update("cam", info)
        try:
            got = models.model("cam", EXT.T_cam_lidar)
        except InputError as e:
            got = e
        fresh = _model_or_error(info)
        if isinstance(fresh, InputError):
            assert isinstance(got, InputError) and (got.kind, str(got)) == (fresh.kind, str(fresh))
        else:
            assert not isinstance(got, InputError), str(got)
            assert (got.width, got.height, got.distortion_model) == (fresh.width, fresh.height,
                                                                     fresh.distortion_model)
            np.testing.assert_array_equal(got.K, fresh.K)
            np.testing.assert_array_equal(got.D, fresh.D)


# --------------------------------------------------------------------------------------------- assemble_frame
@st.composite
def camera_inputs(draw):
    """(compressed, CameraInfo or None, image message or None) for one camera; images mostly of the info's
    size."""
    info = None if draw(st.integers(0, 4)) == 0 else draw(camera_infos(sizes=(4, 9)))
    size = None if info is None else (info.width, info.height)
    compressed = draw(st.booleans())
    images = compressed_images(size=size).map(lambda m: m[0]) if compressed else raw_images(size=size)
    return compressed, info, None if draw(st.integers(0, 4)) == 0 else draw(images)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@FUZZ
@given(st.one_of(valid_clouds(), valid_clouds(), valid_clouds(), any_clouds()),
       st.lists(camera_inputs(), min_size=1, max_size=3))
def test_assemble_frame_gives_a_correct_frame_and_a_reason_per_camera(msg, cameras):
    try:
        cloud = read_cloud(msg)
    except InputError as e:
        assert_counted(e)
        return
    names = [f"cam{i}" for i in range(len(cameras))]
    streams = [CameraStream(n, compressed) for n, (compressed, _, _) in zip(names, cameras)]
    models = CameraModels()
    for n, (_, info, _) in zip(names, cameras):
        if info is not None:
            models.update(n, info)
    matched = {n: image for n, (_, _, image) in zip(names, cameras)}

    frame, problems = assemble_frame(cloud, 7, "lidar", matched, streams, models,
                                     Extrinsics.from_file(Calibration("lidar", {n: EXT for n in names})))

    xyz, intensity = reference_cloud(msg)
    finite = np.isfinite(xyz).all(axis=1)
    np.testing.assert_array_equal(frame.points, xyz[finite])
    if intensity is not None:
        np.testing.assert_array_equal(frame.intensity, intensity[finite])
    used = {cam.name: img for cam, img in zip(frame.cameras, frame.images)}
    for name, (_, info, image) in zip(names, cameras):
        reasons = [p for p in problems if p.camera == name]
        assert all(p.kind in PROBLEMS and p.detail and p.stamp_ns == 7 for p in reasons)
        if image is None:  # unmatched: the synchronizer's to count
            assert name not in used and not reasons
        elif name in used:
            event("camera used")
            assert not reasons and used[name].shape == (info.height, info.width, 3)
        else:
            assert len(reasons) == 1, reasons
            if info is None:
                assert reasons[0].kind == "camera_info_missing"
