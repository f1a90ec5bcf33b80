"""The TF buffer and the extrinsics policy, on hand-made transforms with known answers."""
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from ov_panoptic_ros.bridge.extrinsics import Extrinsics
from ov_panoptic_ros.bridge.problems import InputError
from ov_panoptic_ros.bridge.transforms import TransformBuffer, TransformError
from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
# the optical frame convention: z forward, x right, y down, for a camera looking along the parent's +x
OPTICAL_IN_BODY = (-0.5, 0.5, -0.5, 0.5)


def tf(parent, child, xyz=(0, 0, 0), q=(0, 0, 0, 1), stamp_ns=0):
    return TransformStamped(header=Header(stamp=Time(sec=stamp_ns // NS, nanosec=stamp_ns % NS), frame_id=parent),
                            child_frame_id=child,
                            transform=Transform(translation=Vector3(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2])),
                                                rotation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]),
                                                                    w=float(q[3]))))


def yaw_q(yaw):
    return 0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)


def apply(T, p):
    return (T @ np.append(p, 1.0))[:3]


@pytest.fixture
def rig():
    """base_link with a LiDAR 1.8 m up and a front camera 1.5 m forward, both static; odom -> base_link moving
    at 20 m/s along x."""
    buf = TransformBuffer()
    buf.add_message(TFMessage(transforms=[tf("base_link", "lidar_top", (0, 0, 1.8)),
                                          tf("base_link", "cam_front", (1.5, 0, 1.5)),
                                          tf("cam_front", "cam_front_optical", q=OPTICAL_IN_BODY)]), static=True)
    for k in range(11):  # 10 ms apart
        buf.add(tf("odom", "base_link", (20.0 * 0.01 * k, 0, 0), stamp_ns=T0 + k * 10_000_000), static=False)
    return buf


def test_static_chain_maps_points_as_the_rig_is_built(rig):
    T = rig.lookup("cam_front_optical", "lidar_top")
    # a point 10 m ahead of the LiDAR, at its height: 8.5 m in front of the camera, 0.3 m above it (y down)
    np.testing.assert_allclose(apply(T, [10.0, 0.0, 0.0]), [0.0, -0.3, 8.5], atol=1e-9)
    np.testing.assert_allclose(apply(rig.lookup("lidar_top", "cam_front_optical"), [0.0, -0.3, 8.5]), [10, 0, 0],
                               atol=1e-9)
    np.testing.assert_allclose(rig.lookup("lidar_top", "lidar_top"), np.eye(4))


def test_dynamic_links_interpolate_and_never_extrapolate(rig):
    T = rig.lookup("odom", "base_link", T0 + 25_000_000)  # between the 20 and 30 ms samples
    np.testing.assert_allclose(T[:3, 3], [0.5, 0, 0], atol=1e-9)
    with pytest.raises(TransformError) as late:
        rig.lookup("odom", "base_link", T0 + 101_000_000)
    assert late.value.kind == "tf_late" and "'odom' -> 'base_link'" in str(late.value)
    with pytest.raises(TransformError) as old:
        rig.lookup("odom", "base_link", T0 - 1)
    assert old.value.kind == "tf_old"


def test_slerp_takes_the_short_way_and_stays_a_rotation():
    buf = TransformBuffer()
    buf.add(tf("odom", "base_link", q=yaw_q(math.radians(170)), stamp_ns=T0), static=False)
    buf.add(tf("odom", "base_link", q=yaw_q(math.radians(-170)), stamp_ns=T0 + 2), static=False)
    R = buf.lookup("odom", "base_link", T0 + 1)[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert math.degrees(math.atan2(R[1, 0], R[0, 0])) == pytest.approx(180.0, abs=1e-6)  # not 0 (the long way)


def test_ego_motion_through_the_fixed_frame(rig):
    """The camera exposes 30 ms after the LiDAR at 20 m/s: the car moved 0.6 m, so a static point 10 m ahead of
    the LiDAR at the cloud's stamp is 0.6 m closer to the camera when the image is taken."""
    cloud_ns, image_ns = T0 + 20_000_000, T0 + 50_000_000
    static = rig.lookup("cam_front_optical", "lidar_top", cloud_ns)
    moving = rig.lookup_through("cam_front_optical", image_ns, "lidar_top", cloud_ns, "odom")
    p = [10.0, 0.0, 0.0]
    assert apply(static, p)[2] == pytest.approx(8.5)
    assert apply(moving, p)[2] == pytest.approx(8.5 - 0.6)
    ext = Extrinsics("tf", tf=rig, fixed_frame="odom")
    np.testing.assert_allclose(ext.camera_from_lidar("front", "cam_front_optical", "lidar_top", cloud_ns, image_ns),
                               moving)
    with pytest.raises(TransformError) as late:  # the image is newer than the newest pose
        ext.camera_from_lidar("front", "cam_front_optical", "lidar_top", cloud_ns, T0 + 200_000_000)
    assert late.value.kind == "tf_late"


def test_unknown_frames_disconnected_trees_and_loops_are_named(rig):
    with pytest.raises(TransformError) as e:
        rig.lookup("cam_back_optical", "lidar_top")
    assert e.value.kind == "tf_missing" and "'cam_back_optical' is unknown" in str(e.value)
    rig.add(tf("map", "gps"), static=True)
    with pytest.raises(TransformError) as e:
        rig.lookup("gps", "lidar_top")
    assert e.value.kind == "tf_missing" and "not connected" in str(e.value) and "'map'" in str(e.value)
    loop = TransformBuffer()
    loop.add_message(TFMessage(transforms=[tf("a", "b"), tf("b", "c"), tf("c", "a")]), static=True)
    with pytest.raises(TransformError) as e:
        loop.lookup("a", "x_unknown")
    assert e.value.kind == "tf_loop"


def test_bad_transforms_are_returned_not_stored():
    buf = TransformBuffer()
    errors = buf.add_message(TFMessage(transforms=[tf("a", "b", (math.nan, 0, 0)), tf("a", "c", q=(0, 0, 0, 0)),
                                                   tf("a", "a"), tf("", "d"), tf("a", "e")]), static=True)
    assert [e.kind for e in errors] == ["tf_bad"] * 4
    assert buf.has_frame("e") and not buf.has_frame("b") and not buf.has_frame("c")


def test_a_jump_back_in_time_starts_the_link_afresh():
    buf = TransformBuffer(cache_s=1.0)
    for k in range(5):
        buf.add(tf("odom", "base_link", (k, 0, 0), stamp_ns=T0 + k * NS), static=False)
    with pytest.raises(TransformError):
        buf.lookup("odom", "base_link", T0 + NS)  # pruned: older than the 1 s cache behind the newest
    buf.add(tf("odom", "base_link", (7, 0, 0), stamp_ns=T0 - 100 * NS), static=False)  # the bag looped
    np.testing.assert_allclose(buf.lookup("odom", "base_link", T0 - 100 * NS)[:3, 3], [7, 0, 0])


def test_extrinsics_sources():
    T_file = np.eye(4)
    T_file[0, 3] = 5.0
    calibration = Calibration("lidar_top", {"front": CameraExtrinsics(T_file, 0.01)})
    buf = TransformBuffer()
    buf.add(tf("lidar_top", "front_optical", (1, 2, 3)), static=True)
    file_only = Extrinsics("file", calibration, buf)
    np.testing.assert_allclose(file_only.camera_from_lidar("front", "front_optical", "lidar_top", T0, T0), T_file)
    with pytest.raises(InputError) as e:  # the file's extrinsics are from lidar_top, not this cloud's frame
        file_only.camera_from_lidar("front", "front_optical", "velodyne", T0, T0)
    assert e.value.kind == "cloud_frame_mismatch" and "'velodyne'" in str(e.value)
    auto = Extrinsics("auto", calibration, buf)
    np.testing.assert_allclose(auto.camera_from_lidar("front", "front_optical", "lidar_top", T0, T0)[:3, 3],
                               [-1, -2, -3])  # TF publishes the camera's frame: TF wins
    np.testing.assert_allclose(auto.camera_from_lidar("front", "other_optical", "lidar_top", T0, T0), T_file)
    with pytest.raises(TransformError):  # neither the file nor TF knows this camera
        auto.camera_from_lidar("side", "side_optical", "lidar_top", T0, T0)
    assert auto.time_offset_s("front") == 0.01 and auto.time_offset_s("side") == 0.0
    with pytest.raises(ValueError, match="extrinsics_source"):
        Extrinsics("yaml", calibration)
