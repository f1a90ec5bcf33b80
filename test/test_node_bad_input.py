"""Bad input, one test each: a clear throttled log, a counter in /diagnostics, the node keeps going.

After every bad message a good frame must come out normally, labeled through both cameras.
"""
import copy

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from test_node import output_arrays
from test_node_sync import labeled_fraction

from ov_panoptic_ros.ros.diagnostics import ThrottledLog
from ov_panoptic_ros.testing.probe import wait_until
from ov_panoptic_ros.testing.scene_msgs import driver_cloud, scene_messages

NS = 1_000_000_000


def _good_frame_follows(probe, scene, stamp_ns):
    """A good frame after the bad input: processed normally, both cameras used."""
    n = len(probe.clouds())
    probe.publish_scene(scene_messages(scene, stamp_ns=stamp_ns))
    assert wait_until(lambda: len(probe.clouds()) > n, 30.0), "node stopped processing after bad input"
    out = probe.clouds()[-1]
    arr = output_arrays(out)
    assert out.width == scene.frame.num_points
    assert labeled_fraction(arr, behind=True) > 0.05 and labeled_fraction(arr, behind=False) > 0.05


# --------------------------------------------------------------------------------------------- clouds
def _no_xyz(m):
    n = m.cloud.width
    return PointCloud2(header=m.cloud.header, height=1, width=n, point_step=4, row_step=4 * n, data=bytes(4 * n),
                       fields=[PointField(name="intensity", offset=0, datatype=PointField.FLOAT32, count=1)])


def _point_step_vs_data(m):
    c = copy.deepcopy(m.cloud)
    c.point_step, c.row_step = 30, 30 * c.width  # the payload holds 22 bytes per point
    return c


def _row_step_vs_data(m):
    c = copy.deepcopy(m.cloud)
    c.row_step += 8
    return c


def _big_endian(m):
    c = copy.deepcopy(m.cloud)
    c.is_bigendian = True
    return c


CLOUD_CASES = {
    "no_xyz_fields": (_no_xyz, "cloud_missing_xyz"),
    "point_step_inconsistent": (_point_step_vs_data, "cloud_bad_layout"),
    "row_step_inconsistent": (_row_step_vs_data, "cloud_bad_layout"),
    "big_endian": (_big_endian, "cloud_big_endian"),
}


@pytest.mark.parametrize("case", sorted(CLOUD_CASES))
def test_bad_cloud_is_skipped_counted_and_logged_once(case, start_node, scenes, capfd):
    make_bad, counter = CLOUD_CASES[case]
    _, probe = start_node()
    msgs = scene_messages(scenes[0])
    bad = make_bad(msgs)
    for _ in range(3):
        probe.cloud_pub.publish(bad)
    assert probe.wait_for_counter(counter, 3)
    assert probe.clouds() == []  # nothing published for a rejected cloud
    _good_frame_follows(probe, scenes[0], scenes[0].frame.stamp_ns)
    assert probe.counter("frames_processed") >= 1 or wait_until(lambda: probe.counter("frames_processed") >= 1, 3)
    logged = capfd.readouterr().err
    assert logged.count(f"[{counter}]") == 1, logged[-3000:]  # three bad clouds, one line (throttled)


def test_nonfinite_points_dropped_and_counted(start_node, scenes):
    _, probe = start_node()
    scene = scenes[1]
    xyz = scene.frame.points.copy()
    xyz[:50, 0] = np.nan
    xyz[50:60, 2] = -np.inf
    msgs = scene_messages(scene)
    msgs.cloud = driver_cloud(xyz, scene.frame.intensity, scene.frame.stamp_ns, "lidar_top")
    probe.publish_scene(msgs)
    assert wait_until(lambda: probe.clouds(), 30.0)
    assert probe.clouds()[0].width == len(xyz) - 60
    assert np.isfinite(output_arrays(probe.clouds()[0])["x"]).all()
    assert probe.wait_for_counter("nonfinite_points_dropped", 60)
    _good_frame_follows(probe, scene, scene.frame.stamp_ns + NS // 10)


def test_empty_cloud_publishes_empty_labeled_cloud(start_node, scenes):
    _, probe = start_node()
    msgs = scene_messages(scenes[2])
    msgs.cloud = driver_cloud(np.zeros((0, 3), np.float32), None, scenes[2].frame.stamp_ns, "lidar_top")
    probe.publish_scene(msgs)
    assert wait_until(lambda: probe.clouds() and probe.of("instances"), 30.0)
    out = probe.clouds()[0]
    assert out.width == 0 and len(out.data) == 0 and "label" in [f.name for f in out.fields]
    assert out.header.frame_id == "lidar_top"
    assert [m.action for m in probe.of("instances")[0].msg.markers] == [3]  # DELETEALL only
    assert probe.wait_for_counter("empty_clouds", 1)
    _good_frame_follows(probe, scenes[2], scenes[2].frame.stamp_ns + NS // 10)


@pytest.mark.slow
def test_two_million_point_cloud_rejected_before_conversion(start_node, scenes):
    """2M points (44 MB) is above the default max_points (1M): rejected cheaply, counted, node unaffected."""
    _, probe = start_node()
    xyz = np.random.default_rng(0).uniform(-50, 50, (2_000_000, 3)).astype(np.float32)
    probe.cloud_pub.publish(driver_cloud(xyz, None, scenes[0].frame.stamp_ns, "lidar_top"))
    assert probe.wait_for_counter("cloud_too_large", 1, timeout=30.0)
    assert probe.clouds() == []
    _good_frame_follows(probe, scenes[0], scenes[0].frame.stamp_ns + NS // 10)


# --------------------------------------------------------------------------------------------- cameras
def _bad_encoding(m):
    m.images["cam_back"].encoding = "16UC1"


def _size_mismatch(m):
    m.infos["cam_back"].width += 16  # image stays 160 px wide


def _zero_k(m):
    m.infos["cam_back"].k = [0.0] * 9


def _unknown_distortion(m):
    m.infos["cam_back"].distortion_model = "equidistant"
    m.infos["cam_back"].d = [0.1, 0.0, 0.0, 0.0]


def _corrupt_jpeg(m):
    m.images["cam_back"].data = bytes(m.images["cam_back"].data)[:200]  # truncated JPEG


CAMERA_CASES = {
    "unsupported_encoding": (_bad_encoding, "image_bad_encoding", "rgb8"),
    "image_size_not_matching_camera_info": (_size_mismatch, "image_size_mismatch", "rgb8"),
    "camera_info_zero_k": (_zero_k, "camera_info_bad_k", "rgb8"),
    "unknown_distortion_model": (_unknown_distortion, "camera_info_bad_distortion", "rgb8"),
    "corrupt_compressed_image": (_corrupt_jpeg, "image_corrupt", "jpeg"),
}


@pytest.mark.parametrize("case", sorted(CAMERA_CASES))
def test_bad_camera_input_skips_that_camera_not_the_frame(case, start_node, scenes):
    spoil, counter, encoding = CAMERA_CASES[case]
    compressed = encoding == "jpeg"
    # A generous camera timeout: on a loaded machine the spoiled image must still be matched (and so
    # decoded and counted) rather than missed by the synchronizer, which would pass the label checks
    # below for the wrong reason. It costs nothing here: every image arrives.
    params = {"sync.camera_timeout_s": 3.0}
    if compressed:
        params.update({"cam_front.compressed": True, "cam_back.compressed": True})
    _, probe = start_node(params, compressed=compressed)
    scene = scenes[3]
    msgs = scene_messages(scene, encoding=encoding)
    spoil(msgs)
    probe.publish_scene(msgs)
    assert wait_until(lambda: probe.clouds(), 30.0)
    arr = output_arrays(probe.clouds()[0])
    assert probe.clouds()[0].width == scene.frame.num_points  # the frame went out ...
    assert labeled_fraction(arr, behind=True) == 0.0  # ... without cam_back
    assert labeled_fraction(arr, behind=False) > 0.05  # ... with cam_front
    if not probe.wait_for_counter(counter, 1, timeout=5.0):
        # DDS does not order topics: the first cloud may have been processed before the spoiled CameraInfo
        # arrived (then the camera is skipped as camera_info_missing). A second spoiled frame must count.
        again = scene_messages(scene, stamp_ns=scene.frame.stamp_ns + NS // 20, encoding=encoding)
        spoil(again)
        probe.publish_scene(again)
        assert wait_until(lambda: len(probe.clouds()) >= 2, 30.0)  # its output is in before `n` below
    assert probe.wait_for_counter(counter, 1), (
        f"{counter} not counted; sync misses: {probe.counter('sync_misses_cam_back')},"
        f" camera_info_missing: {probe.counter('camera_info_missing')}")
    good = scene_messages(scene, stamp_ns=scene.frame.stamp_ns + NS // 10, encoding=encoding)
    n = len(probe.clouds())
    probe.publish_scene(good)  # a good CameraInfo/image afterwards restores the camera
    assert wait_until(lambda: len(probe.clouds()) > n, 30.0)
    assert labeled_fraction(output_arrays(probe.clouds()[-1]), behind=True) > 0.05


# --------------------------------------------------------------------------------------------- throttling
def test_throttled_log_reports_suppressed_count_per_kind():
    now = [0.0]
    lines = []
    log = ThrottledLog(lines.append, period_s=5.0, clock=lambda: now[0])
    assert log("a", "first") and not log("a", "again") and log("b", "other kind")
    now[0] = 4.9
    assert not log("a", "still quiet")
    now[0] = 5.1
    assert log("a", "later")
    assert lines == ["[a] first", "[b] other kind", "[a] later (2 similar message(s) suppressed)"]
