"""A bag recorded by other tools: no calibration, cameras found by topic pattern and placed by the bag's TF.

The bag is written with the plain `mcap` + `mcap-ros2-support` writers from .msg definitions written out here,
no code of this package: what a recorder on a vehicle leaves, with Autoware-style topic names, rectified images
whose CameraInfo still carries the raw camera's distortion, a cloud with only x y z intensity, and /tf.
"""
import json

import numpy as np
import pytest
import torch
from mcap_ros2.writer import Writer
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from ov_panoptic_ros.bridge.clouds import read_cloud_fields
from ov_panoptic_ros.cli.replay import app  # the app with replay and play registered on it
from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.data.bag.errors import BagError
from ov_panoptic_ros.data.bag.layout import BagTopics, rectified_by_name
from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.bag.source import BagFrameSource

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * NS
SPEED = 10.0  # m/s along odom's x
IMAGE_DELAY_NS = 30 * MS  # each image is stamped 30 ms after its cloud: the car moved 0.3 m in between
TF_END_NS = T0 + 220 * MS  # the last /tf pose: the third frame's images (230 ms) are newer
LIDAR = "/sensing/lidar/top/pointcloud"
IMAGE = "/sensing/camera/{camera}/image_rect"
INFO = "/sensing/camera/{camera}/camera_info"
TOPICS = BagTopics(lidar=LIDAR, image=IMAGE, camera_info=INFO)
W, H = 64, 48
K_RAW = [50.0, 0.0, 31.0, 0.0, 50.0, 25.0, 0.0, 0.0, 1.0]
P_RECT = [40.0, 0.0, 32.0, 0.0, 0.0, 40.0, 24.0, 0.0, 0.0, 0.0, 1.0, 0.0]
D_RAW = [-0.35, 0.12, 0.001, -0.002, 0.03]  # strong barrel distortion a rectified projection must not apply
OPTICAL = Rotation.from_quat([-0.5, 0.5, -0.5, 0.5])  # z forward, x right, y down for a body looking along +x
GROUPS = ("ahead", "left", "behind")

# ------------------------------------------------------------------------------------------------
# .msg definitions as a recorder stores them (ros2msg, dependencies after a line of '=')
# ------------------------------------------------------------------------------------------------
SEP = "=" * 80 + "\n"
HEADER = "builtin_interfaces/Time stamp\nstring frame_id\n"
TIME = "int32 sec\nuint32 nanosec\n"


def _msgdef(text: str, *deps: tuple[str, str]) -> str:
    return text + "".join(f"{SEP}MSG: {name}\n{body}" for name, body in deps)


HEADER_DEPS = (("std_msgs/Header", HEADER), ("builtin_interfaces/Time", TIME))
MSGDEFS = {
    "tf2_msgs/msg/TFMessage": _msgdef(
        "geometry_msgs/TransformStamped[] transforms\n",
        ("geometry_msgs/TransformStamped", "std_msgs/Header header\nstring child_frame_id\n"
                                           "geometry_msgs/Transform transform\n"),
        *HEADER_DEPS,
        ("geometry_msgs/Transform", "geometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation\n"),
        ("geometry_msgs/Vector3", "float64 x\nfloat64 y\nfloat64 z\n"),
        ("geometry_msgs/Quaternion", "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n")),
    "sensor_msgs/msg/PointCloud2": _msgdef(
        "std_msgs/Header header\nuint32 height\nuint32 width\nsensor_msgs/PointField[] fields\nbool is_bigendian\n"
        "uint32 point_step\nuint32 row_step\nuint8[] data\nbool is_dense\n",
        *HEADER_DEPS,
        ("sensor_msgs/PointField", "uint8 INT8 = 1\nuint8 UINT8 = 2\nuint8 INT16 = 3\nuint8 UINT16 = 4\n"
                                   "uint8 INT32 = 5\nuint8 UINT32 = 6\nuint8 FLOAT32 = 7\nuint8 FLOAT64 = 8\n"
                                   "string name\nuint32 offset\nuint8 datatype\nuint32 count\n")),
    "sensor_msgs/msg/Image": _msgdef(
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\n"
        "uint8[] data\n", *HEADER_DEPS),
    "sensor_msgs/msg/CameraInfo": _msgdef(
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\nfloat64[] d\nfloat64[9] k\n"
        "float64[9] r\nfloat64[12] p\nuint32 binning_x\nuint32 binning_y\nsensor_msgs/RegionOfInterest roi\n",
        *HEADER_DEPS,
        ("sensor_msgs/RegionOfInterest", "uint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\n"
                                         "bool do_rectify\n")),
}


# ------------------------------------------------------------------------------------------------
# The drive: base_link with a LiDAR, a front camera (rgb8) and a left camera (mono8), moving along odom's x
# ------------------------------------------------------------------------------------------------
def _header(stamp_ns: int, frame_id: str) -> dict:
    return {"stamp": {"sec": stamp_ns // NS, "nanosec": stamp_ns % NS}, "frame_id": frame_id}


def _tf(parent: str, child: str, xyz, rotation: Rotation = Rotation.identity(), stamp_ns: int = 0) -> dict:
    x, y, z, w = rotation.as_quat()
    return {"header": _header(stamp_ns, parent), "child_frame_id": child,
            "transform": {"translation": dict(zip("xyz", map(float, xyz))),
                          "rotation": {"x": x, "y": y, "z": z, "w": w}}}


CAMERAS = {  # name -> (pose of its optical frame in base_link, image encoding)
    "front": (((1.5, 0.0, 1.5)), OPTICAL, "rgb8"),
    "left": (((0.0, 0.5, 1.5)), Rotation.from_euler("z", 90, degrees=True) * OPTICAL, "mono8"),
}
LIDAR_IN_BASE = (0.0, 0.0, 1.8)


def _points(rng) -> tuple[np.ndarray, np.ndarray]:
    """100 points per group in the LiDAR frame: ahead of the front camera, left of the left one, behind both."""
    near, far = rng.uniform(8, 15, 100), rng.uniform(-1, 1, (2, 100))
    ahead = np.stack([near, far[0], 0.5 * far[1]], 1)
    left = np.stack([far[0], near, 0.5 * far[1]], 1)
    behind = np.stack([-near, far[0], 0.5 * far[1]], 1)
    return np.concatenate([ahead, left, behind]).astype(np.float32), np.repeat(np.arange(3), 100)


def _cloud(xyz: np.ndarray, intensity: np.ndarray, stamp_ns: int) -> dict:
    data = np.zeros(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    data["x"], data["y"], data["z"], data["intensity"] = xyz[:, 0], xyz[:, 1], xyz[:, 2], intensity
    fields = [{"name": n, "offset": 4 * i, "datatype": 7, "count": 1} for i, n in enumerate("x y z intensity".split())]
    return {"header": _header(stamp_ns, "lidar_top"), "height": 1, "width": len(xyz), "fields": fields,
            "is_bigendian": False, "point_step": 16, "row_step": 16 * len(xyz), "data": data.tobytes(),
            "is_dense": True}


def _image(pixels: np.ndarray, encoding: str, stamp_ns: int, frame: str) -> dict:
    channels = 1 if pixels.ndim == 2 else 3
    return {"header": _header(stamp_ns, frame), "height": H, "width": W, "encoding": encoding, "is_bigendian": 0,
            "step": W * channels, "data": pixels.tobytes()}


def _info(stamp_ns: int, frame: str) -> dict:
    return {"header": _header(stamp_ns, frame), "height": H, "width": W, "distortion_model": "plumb_bob",
            "d": D_RAW, "k": K_RAW, "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "p": P_RECT, "binning_x": 0,
            "binning_y": 0, "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}}


class Drive:
    """What the bag holds, to check against."""

    def __init__(self, n_frames: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.stamps = [T0 + k * 100 * MS for k in range(n_frames)]
        self.points = []
        for _ in self.stamps:
            xyz, self.groups = _points(rng)
            self.points.append((xyz, rng.uniform(0, 1, len(xyz)).astype(np.float32)))
        self.images = [{"front": rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                        "left": rng.integers(0, 256, (H, W), dtype=np.uint8)} for _ in self.stamps]


def write_foreign_bag(path, drive: Drive, static_cameras: bool = True, image: str = IMAGE) -> None:
    """The recording, each message at its log time: /tf_static from two broadcasters (the cameras' one caught
    only after the first frame), /tf at 50 Hz logged 15 ms after its stamps, clouds, CameraInfo and images."""
    messages = [("/tf_static", T0 - 50 * MS, "tf2_msgs/msg/TFMessage",
                 {"transforms": [_tf("base_link", "lidar_top", LIDAR_IN_BASE)]})]
    if static_cameras:
        cams = [_tf("base_link", f"{name}_optical", xyz, rot) for name, (xyz, rot, _) in CAMERAS.items()]
        messages.append(("/tf_static", T0 + 150 * MS, "tf2_msgs/msg/TFMessage", {"transforms": cams}))
    for stamp in range(T0 - 100 * MS, TF_END_NS + 1, 20 * MS):
        pose = _tf("odom", "base_link", (SPEED * (stamp - T0) / NS, 0.0, 0.0), stamp_ns=stamp)
        messages.append(("/tf", stamp + 15 * MS, "tf2_msgs/msg/TFMessage", {"transforms": [pose]}))
    for stamp, (xyz, intensity), images in zip(drive.stamps, drive.points, drive.images):
        messages.append((LIDAR, stamp + 5 * MS, "sensor_msgs/msg/PointCloud2", _cloud(xyz, intensity, stamp)))
        for name, (_, _, encoding) in CAMERAS.items():
            at, frame = stamp + IMAGE_DELAY_NS, f"{name}_optical"
            messages.append((INFO.format(camera=name), at + 8 * MS, "sensor_msgs/msg/CameraInfo", _info(at, frame)))
            messages.append((image.format(camera=name), at + 10 * MS, "sensor_msgs/msg/Image",
                             _image(images[name], encoding, at, frame)))
    with open(path, "wb") as f:
        writer = Writer(f)
        schemas = {name: writer.register_msgdef(name, text) for name, text in MSGDEFS.items()}
        for topic, log_ns, msgtype, msg in sorted(messages, key=lambda m: m[1]):
            writer.write_message(topic, schemas[msgtype], msg, log_time=log_ns)
        writer.finish()


@pytest.fixture(scope="module")
def drive():
    return Drive()


@pytest.fixture(scope="module")
def bag(tmp_path_factory, drive):
    path = tmp_path_factory.mktemp("foreign") / "vehicle.mcap"
    write_foreign_bag(path, drive)
    return path


def _frames(bag, topics: BagTopics = TOPICS, **options):
    source = BagFrameSource.open(bag, topics, need_ground_truth=False, **options)
    try:
        return [frame for frame, _ in source], source
    finally:
        source.close()


def _seen_by(frame) -> dict[str, np.ndarray]:
    """camera name -> (N,) bool: the camera sees the point (the pipeline's own projection, no occlusion)."""
    proj = project_points(torch.from_numpy(frame.points), frame.cameras, ProjectionConfig(occlusion=False))
    return {cam.name: proj.visible[i].numpy() for i, cam in enumerate(frame.cameras)}


# ------------------------------------------------------------------------------------------------
# Frames from the bag
# ------------------------------------------------------------------------------------------------
def test_cameras_found_by_pattern_are_placed_by_tf_static(bag, drive):
    frames, source = _frames(bag, extrinsics="tf")
    assert source.layout.calibration is None and source.layout.camera_names == ["front", "left"]
    assert all(c.rectified for c in source.layout.cameras)  # image_rect: rectified by name
    assert len(frames) == 3 and not source.problems.cameras and not source.problems.frames
    groups = np.array(GROUPS)[drive.groups]
    for frame, (xyz, intensity), images in zip(frames, drive.points, drive.images):
        np.testing.assert_array_equal(frame.points, xyz)  # x y z intensity float32 decode as they are
        np.testing.assert_array_equal(frame.intensity, intensity)
        assert [c.name for c in frame.cameras] == ["front", "left"]
        np.testing.assert_array_equal(frame.images[0], images["front"])  # rgb8
        np.testing.assert_array_equal(frame.images[1], np.repeat(images["left"][..., None], 3, axis=2))  # mono8
        for cam in frame.cameras:  # rectified: P's intrinsics, the raw camera's K and D ignored
            np.testing.assert_allclose(cam.K, np.reshape(P_RECT, (3, 4))[:, :3])
            assert cam.distortion_model == "none" and cam.D.size == 0
        seen = _seen_by(frame)
        assert seen["front"][groups == "ahead"].all() and not seen["front"][groups != "ahead"].any()
        assert seen["left"][groups == "left"].all() and not seen["left"][groups != "left"].any()


def test_the_projection_follows_the_transforms(bag):
    """A point 10 m ahead of the LiDAR at its height: 8.5 m in front of the front camera, 0.3 m above it."""
    frames, _ = _frames(bag, extrinsics="tf")
    T = frames[0].cameras[0].T_cam_lidar
    np.testing.assert_allclose((T @ [10.0, 0.0, 0.0, 1.0])[:3], [0.0, -0.3, 8.5], atol=1e-9)


def test_ego_motion_through_the_fixed_frame_and_late_tf(bag):
    """With odom as fixed frame each image sees the cloud 0.3 m closer (30 ms at 10 m/s). /tf is logged 15 ms after
    its stamps and the images are released before it: the frame waits for it. The last frame's images are newer
    than the newest pose: its cameras are tf_late, counted per camera, and the cloud still comes out."""
    still, _ = _frames(bag, extrinsics="tf")
    moving, source = _frames(bag, extrinsics="tf", fixed_frame="odom")
    assert len(moving) == 3
    for a, b in zip(still[:2], moving[:2]):
        for cam_a, cam_b in zip(a.cameras, b.cameras):
            shift = cam_b.T_cam_lidar @ np.linalg.inv(cam_a.T_cam_lidar)
            np.testing.assert_allclose(shift[:3, :3], np.eye(3), atol=1e-9)
            np.testing.assert_allclose(shift[:3, 3], cam_a.T_cam_lidar[:3, :3] @ [-SPEED * IMAGE_DELAY_NS / NS, 0, 0],
                                       atol=1e-6)
    assert moving[2].cameras == [] and moving[2].num_points == 300
    assert dict(source.problems.cameras) == {"front: tf_late": 1, "left: tf_late": 1}
    assert not source.problems.frames


def test_a_camera_tf_does_not_know_is_tf_missing(drive, tmp_path):
    path = tmp_path / "no_cams.mcap"
    write_foreign_bag(path, drive, static_cameras=False)
    frames, source = _frames(path, extrinsics="tf")
    assert len(frames) == 3 and all(f.cameras == [] for f in frames)
    assert dict(source.problems.cameras) == {"front: tf_missing": 3, "left: tf_missing": 3}


def test_without_calibration_or_matching_topics_the_error_says_what_to_do(bag):
    with pytest.raises(BagError, match="no calibration.*--calibration FILE"):
        BagFrameSource.open(bag, TOPICS, need_ground_truth=False, extrinsics="file")
    with pytest.raises(BagError, match=r"no image topic matches '/cam/\{camera\}/image'.*image_rect \[Image\]"):
        BagFrameSource.open(bag, BagTopics(lidar=LIDAR, image="/cam/{camera}/image"), need_ground_truth=False)
    with pytest.raises(BagError, match=r"--rectified names \['rear'\]"):
        BagFrameSource.open(bag, TOPICS, need_ground_truth=False, rectified=["rear"])


def test_camera_patterns_and_the_rectified_rule():
    types = {"/sensing/camera/front/image_rect_color": "sensor_msgs/msg/Image",
             "/sensing/camera/rear/image_rect_color/compressed": "sensor_msgs/msg/CompressedImage",
             "/sensing/camera/front/camera_info": "sensor_msgs/msg/CameraInfo",
             "/sensing/camera/a/b/image_rect_color": "sensor_msgs/msg/Image"}
    assert BagTopics(image="/sensing/camera/{camera}/image_rect_color").cameras_in(types) == ["front", "rear"]
    assert BagTopics(image="/sensing/camera/{camera}/image_rect_color/compressed").cameras_in(types) == ["rear"]
    assert BagTopics(image="/{camera}/x/{camera}").cameras_in({"/a/x/a": "sensor_msgs/msg/Image",
                                                               "/a/x/b": "sensor_msgs/msg/Image"}) == ["a"]
    assert BagTopics(image="/sensing/camera/front/image_rect_color").cameras_in(types) == []
    assert rectified_by_name("/cam/image_rect") and rectified_by_name("/cam/image_rect_color/compressed")
    assert not rectified_by_name("/cam/image_raw") and not rectified_by_name("/image_rect/raw")


def test_rectified_by_option_for_another_topic_name(drive, tmp_path):
    """A raw-named topic is projected with K and D unless --rectified names its camera."""
    path, raw = tmp_path / "raw.mcap", "/sensing/camera/{camera}/image_raw"
    write_foreign_bag(path, drive, image=raw)
    topics = BagTopics(lidar=LIDAR, image=raw, camera_info=INFO)
    frames, source = _frames(path, topics, extrinsics="tf")
    assert not any(c.rectified for c in source.layout.cameras)
    assert [c.distortion_model for c in frames[0].cameras] == ["plumb_bob", "plumb_bob"]
    frames, _ = _frames(path, topics, extrinsics="tf", rectified=["front"])
    assert [c.distortion_model for c in frames[0].cameras] == ["none", "plumb_bob"]


# ------------------------------------------------------------------------------------------------
# The commands
# ------------------------------------------------------------------------------------------------
def test_cli_replays_it_with_topic_patterns_and_tf(bag, drive, tmp_path):
    """`ov-panoptic replay` with patterns on the command line and no calibration: the tiny pipeline labels the
    points a camera sees and leaves the points behind both cameras unlabeled."""
    out, pred = tmp_path / "r", tmp_path / "pred.mcap"
    result = CliRunner().invoke(app, ["replay", str(bag), "--no-ground-truth", "--lidar-topic", LIDAR,
                                      "--image-topic", IMAGE, "--info-topic", INFO, "--extrinsics", "tf",
                                      "--out", str(out), "--output-bag", str(pred), "--figure-frames", "0",
                                      "--no-progress"])
    assert result.exit_code == 0, (result.output, result.exception)
    frames = json.loads((out / "metrics.json").read_text())["frames"]
    assert frames["processed"] == 3 and frames["without_cameras"] == 0 and frames["camera_issues"] == {}, frames
    with open_bag(pred) as reader:
        labels = [read_cloud_fields(m.decode(), ["label"])["label"]
                  for m in reader.messages(["/ov_panoptic/panoptic_points"])]
    assert len(labels) == 3
    for frame_labels in labels:
        labeled = frame_labels != UNLABELED
        for group, name in enumerate(GROUPS):
            share = labeled[drive.groups == group].mean()
            assert share == 0.0 if name == "behind" else share > 0.05, (name, share)  # as test_node_tf


def test_play_latches_every_tf_static_message(ros, spin, bag):
    """/tf_static goes out latched though the recorder wrote no QoS, and a listener that joins after the playback
    still gets both broadcasters' transforms (the first message alone would lose the cameras)."""
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage

    from ov_panoptic_ros.ros.player import Player
    from ov_panoptic_ros.testing.probe import wait_until

    node = spin.add(Node("foreign_bag_player"))
    with open_bag(bag) as reader:
        assert "/tf_static" in reader.latched_topics
        stats = Player(node, reader, ["/tf_static", "/tf"], rate=100.0).play()
    assert stats.per_topic["/tf_static"] == 2 and stats.per_topic["/tf"] == 17
    received = []
    listener = spin.add(Node("late_tf_static_listener"))
    latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    listener.create_subscription(TFMessage, "/tf_static", received.append, latched)
    assert wait_until(lambda: len(received) == 2, 10.0), len(received)
    assert sorted(t.child_frame_id for m in received for t in m.transforms) == ["front_optical", "left_optical",
                                                                               "lidar_top"]


def test_cli_keeps_the_camera_options_offline(bag, tmp_path):
    result = CliRunner().invoke(app, ["replay", str(bag), "--live", "--extrinsics", "tf", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "offline options" in result.output, result.output
