"""`ov-panoptic convert`: a tiny nuScenes scene and a tiny SemanticKITTI sequence become evaluation bags with TF
as a vehicle publishes it (the rig on /tf_static, the ego poses on /tf, images at their cameras' stamps), which
replay reads back into the sources' own frames, and which `replay` scores as `evaluate` scores the sources.
Expected transforms are computed here with scipy from the dataset files, not with the package's geometry."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.data.bag.errors import BagError
from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.bag.source import BagFrameSource
from ov_panoptic_ros.data.convert.staging import record_staged
from ov_panoptic_ros.data.nuscenes import NuScenesSource
from ov_panoptic_ros.data.semantickitti import SemanticKittiSource
from ov_panoptic_ros.testing import nuscenes_tiny as tiny
from ov_panoptic_ros.testing.semantickitti_tiny import P2_TEXT, TR_TEXT, write_sequence
from cli_run import cli

SCENE = "scene-0061"  # the tiny dataroot's first scene: samples 0, 1, 2


@pytest.fixture(scope="module")
def nuscenes(tmp_path_factory):
    return tiny.build(tmp_path_factory.mktemp("nuscenes") / "data")


@pytest.fixture(scope="module")
def kitti(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti")
    write_sequence(root, "08")
    return root


@pytest.fixture(scope="module")
def nuscenes_bag(nuscenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("bags") / "scene.mcap"
    proc = cli("convert", "nuscenes", "--dataroot", nuscenes.root, "--version", tiny.VERSION, "--scene", SCENE,
                "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"{out}: 3 frames of v1.0-mini {SCENE} (6 cameras" in proc.stdout and "--fixed-frame map" in proc.stdout
    return out


@pytest.fixture(scope="module")
def kitti_bag(kitti, tmp_path_factory):
    out = tmp_path_factory.mktemp("bags") / "sequence08"  # a rosbag2 directory
    proc = cli("convert", "semantickitti", "--root", kitti, "--sequence", "8", "--out", out, "--storage", "sqlite3")
    assert proc.returncode == 0, proc.stderr
    return out


def _matrix(translation, rotation: Rotation) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation.as_matrix(), translation
    return T


def _record_matrix(record: dict) -> np.ndarray:
    """A calibrated_sensor / ego_pose record as 4x4 child -> parent."""
    return _matrix(record["translation"], tiny.rotation_of(record))


def _tf_matrix(transform) -> np.ndarray:
    t, q = transform.transform.translation, transform.transform.rotation
    return _matrix([t.x, t.y, t.z], Rotation.from_quat([q.x, q.y, q.z, q.w]))


def _messages(bag: Path, topic: str) -> list:
    with open_bag(bag) as reader:
        return [msg.decode() for msg in reader.messages([topic])]


def test_nuscenes_bag_holds_the_rig_on_tf_static_and_the_ego_poses_on_tf(nuscenes, nuscenes_bag):
    ego_pose = {r["token"]: r for r in nuscenes.tables["ego_pose"]}
    channels = ["LIDAR_TOP"] + [c for c, _, _ in tiny.CAMERAS]
    (static,) = _messages(nuscenes_bag, "/tf_static")
    assert {(t.header.frame_id, t.child_frame_id) for t in static.transforms} == {("base_link", c) for c in channels}
    for t in static.transforms:
        np.testing.assert_allclose(_tf_matrix(t), _record_matrix(nuscenes.calibrated_sensor(t.child_frame_id)),
                                   atol=1e-12)
    poses = {}
    for msg in _messages(nuscenes_bag, "/tf"):
        for t in msg.transforms:
            assert (t.header.frame_id, t.child_frame_id) == ("map", "base_link")
            poses[stamp_to_ns(t.header.stamp)] = _tf_matrix(t)
    expected = {}
    for k in range(3):
        for channel in channels:
            record = nuscenes.sample_data(k, channel)
            expected[record["timestamp"] * 1000] = _record_matrix(ego_pose[record["ego_pose_token"]])
    assert sorted(poses) == sorted(expected)  # one pose at each sensor's timestamp, nothing else
    for stamp, pose in expected.items():
        np.testing.assert_allclose(poses[stamp], pose, atol=1e-9)
    for channel in channels[1:]:  # images at their cameras' own timestamps, the dataset's JPEG files as they are
        images = _messages(nuscenes_bag, f"/{channel}/image_raw/compressed")
        infos = _messages(nuscenes_bag, f"/{channel}/camera_info")
        records = [nuscenes.sample_data(k, channel) for k in range(3)]
        assert [stamp_to_ns(m.header.stamp) for m in images] == [stamp_to_ns(m.header.stamp) for m in infos] == \
               [r["timestamp"] * 1000 for r in records]
        assert {m.header.frame_id for m in images + infos} == {channel} and images[0].format == "jpeg"
        assert bytes(images[1].data) == (nuscenes.root / records[1]["filename"]).read_bytes()
    clouds = _messages(nuscenes_bag, "/lidar/points")
    assert [(stamp_to_ns(c.header.stamp), c.header.frame_id) for c in clouds] == \
           [(nuscenes.lidar[k]["timestamp"] * 1000, "LIDAR_TOP") for k in range(3)]


def test_nuscenes_bag_calibration_is_the_rig_without_ego_motion(nuscenes, nuscenes_bag):
    with open_bag(nuscenes_bag) as reader:
        attached = yaml.safe_load(reader.attachments()["calibration.yaml"])
        topic = yaml.safe_load(reader.first_message("/ov_panoptic/calibration").decode().data)
    assert attached == topic and attached["lidar_frame"] == "LIDAR_TOP"
    assert list(attached["cameras"]) == [c for c, _, _ in tiny.CAMERAS]  # the source's camera order
    lidar = _record_matrix(nuscenes.calibrated_sensor("LIDAR_TOP"))
    for name, entry in attached["cameras"].items():
        expected = np.linalg.inv(_record_matrix(nuscenes.calibrated_sensor(name))) @ lidar
        np.testing.assert_allclose(np.reshape(entry["T_cam_lidar"], (4, 4)), expected, atol=1e-12)
        assert entry["time_offset_s"] == 0.0


def test_replay_through_the_map_frame_gives_the_sources_frames(nuscenes, nuscenes_bag):
    """--fixed-frame map places every camera as the source's ego-motion chain does; without it, TF's rig alone
    is off by the car's motion between the LiDAR and camera stamps (~0.5 m here: 12 m/s, up to 45 ms)."""
    source = list(NuScenesSource(nuscenes.root, tiny.VERSION, scenes=[SCENE]))
    exact = BagFrameSource.open(nuscenes_bag, extrinsics="tf", fixed_frame="map")
    rig = BagFrameSource.open(nuscenes_bag)
    try:
        for (frame, truth), (bag_frame, bag_truth), (rig_frame, _) in zip(source, exact, rig, strict=True):
            assert bag_frame.stamp_ns == frame.stamp_ns and bag_frame.frame_id == frame.frame_id
            np.testing.assert_array_equal(bag_frame.points, frame.points)
            np.testing.assert_array_equal(bag_frame.intensity, frame.intensity)
            np.testing.assert_array_equal(bag_truth.labels, truth.labels)
            np.testing.assert_array_equal(bag_truth.instance_ids, truth.instance_ids)
            names = [c for c, _, _ in tiny.CAMERAS]
            assert [c.name for c in bag_frame.cameras] == [c.name for c in frame.cameras] == names
            for cam, bag_cam, rig_cam, image, bag_image in zip(frame.cameras, bag_frame.cameras, rig_frame.cameras,
                                                               frame.images, bag_frame.images, strict=True):
                np.testing.assert_array_equal(bag_image, image)  # the JPEG decoded as the source decodes it
                np.testing.assert_array_equal(bag_cam.K, cam.K)
                np.testing.assert_allclose(bag_cam.T_cam_lidar, cam.T_cam_lidar, atol=1e-9)
                assert np.abs(rig_cam.T_cam_lidar - cam.T_cam_lidar)[:3, 3].max() > 0.05
        assert not exact.problems.frames and not exact.problems.cameras
    finally:
        exact.close()
        rig.close()


def _kitti_T_cam_lidar() -> np.ndarray:
    """KITTI's P2 @ Tr as K [I | t] Tr: image_2's optical frame <- Velodyne."""
    P2 = np.array(P2_TEXT.split(), dtype=float).reshape(3, 4)
    offset = np.eye(4)
    offset[:3, 3] = np.linalg.solve(P2[:, :3], P2[:, 3])
    return offset @ np.vstack([np.array(TR_TEXT.split(), dtype=float).reshape(3, 4), [0, 0, 0, 1]])


def test_semantickitti_bag_holds_the_static_rig_and_replays_the_sources_frames(kitti, kitti_bag):
    assert kitti_bag.is_dir() and list(kitti_bag.glob("*.db3"))
    (static,) = _messages(kitti_bag, "/tf_static")
    (t,) = static.transforms
    assert (t.header.frame_id, t.child_frame_id) == ("velodyne", "image_2")
    np.testing.assert_allclose(_tf_matrix(t), np.linalg.inv(_kitti_T_cam_lidar()), atol=1e-6)
    with open_bag(kitti_bag) as reader:
        assert "/tf" not in reader.topic_types  # a static rig: no pose needed
    images = _messages(kitti_bag, "/image_2/image_raw/compressed")
    assert images[2].format == "png" and bytes(images[2].data) == \
           (kitti / "sequences" / "08" / "image_2" / "000002.png").read_bytes()
    source = list(SemanticKittiSource(kitti, sequences="08"))
    for extrinsics, atol in (("file", 0.0), ("auto", 1e-6)):  # TF holds Tr's nearest rotation (Tr: ~1e-7 off)
        bag = BagFrameSource.open(kitti_bag, extrinsics=extrinsics)
        try:
            for (frame, truth), (bag_frame, bag_truth) in zip(source, bag, strict=True):
                assert (bag_frame.stamp_ns, bag_frame.frame_id) == (frame.stamp_ns, "velodyne")
                np.testing.assert_array_equal(bag_frame.points, frame.points)
                np.testing.assert_array_equal(bag_truth.labels, truth.labels)
                np.testing.assert_array_equal(bag_frame.images[0], frame.images[0])
                np.testing.assert_allclose(bag_frame.cameras[0].T_cam_lidar, frame.cameras[0].T_cam_lidar, atol=atol)
        finally:
            bag.close()


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["nuscenes", "semantickitti"])
def test_replay_of_the_bag_scores_as_evaluate_scores_the_source(dataset, request, tmp_path):
    if dataset == "nuscenes":
        bag, flags = request.getfixturevalue("nuscenes_bag"), ["--fixed-frame", "map"]
        spec = [f"nuscenes:{request.getfixturevalue('nuscenes').root}", "--option", f"version={tiny.VERSION}",
                "--option", f"scenes={SCENE}"]
    else:
        bag, flags = request.getfixturevalue("kitti_bag"), []
        spec = [f"semantickitti:{request.getfixturevalue('kitti')}", "--option", "sequences=08"]
    replayed = cli("replay", bag, *flags, "--config", "tiny", "--out", tmp_path / "replay", "--no-progress",
                    "--figure-frames", "0")
    assert replayed.returncode == 0, replayed.stderr
    evaluated = cli("evaluate", *spec, "--config", "tiny", "--out", tmp_path / "evaluate", "--no-progress")
    assert evaluated.returncode == 0, evaluated.stderr
    replay, evaluate = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("replay", "evaluate"))
    assert replay["frames"]["processed"] == evaluate["frames"]["processed"] == 3
    assert replay["frames"]["camera_issues"] == {}
    for key in ("metrics", "points", "gt_classes", "mapping", "vocabulary", "config"):
        assert replay[key] == evaluate[key], key
    assert (tmp_path / "replay" / "confusion.csv").read_text() == (tmp_path / "evaluate" / "confusion.csv").read_text()


def test_bad_input_is_one_line_and_leaves_nothing(nuscenes, kitti, tmp_path):
    out = tmp_path / "bag.mcap"
    for args, message in [
        (["nuscenes", "--dataroot", tmp_path / "nowhere", "--scene", SCENE], "nuScenes dataroot"),
        (["nuscenes", "--dataroot", nuscenes.root, "--version", "v1.0-trainval", "--scene", SCENE], "not found"),
        (["nuscenes", "--dataroot", nuscenes.root, "--scene", "scene-9999"], "scene-9999"),
        (["semantickitti", "--root", nuscenes.root, "--sequence", "08"], "not a SemanticKITTI root"),
        (["semantickitti", "--root", kitti, "--sequence", "05"], "no such sequence"),
    ]:
        proc = cli("convert", *args, "--out", out)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = cli("convert", "nuscenes", "--dataroot", nuscenes.root, "--scene", SCENE, "--out", out.with_suffix(".db3"),
                "--storage", "mcap")
    assert proc.returncode == 2 and "suffix of sqlite3" in proc.stderr
    assert list(tmp_path.iterdir()) == [], "a failed conversion left something behind"
    out.write_bytes(b"mine")
    proc = cli("convert", "semantickitti", "--root", kitti, "--sequence", "08", "--out", out)
    assert proc.returncode == 2 and "exists already" in proc.stderr and out.read_bytes() == b"mine"


def test_a_conversion_that_stops_leaves_no_partial_bag(kitti, tmp_path):
    """Errors while recording (a file gone, Ctrl-C, no frame at all) remove what was written; a complete one is
    renamed into place."""
    from ov_panoptic_ros.data.bag.recording import record_drive
    from ov_panoptic_ros.data.convert import convert_semantickitti

    source = SemanticKittiSource(kitti, sequences="08")

    def cut(error):
        def frames():
            yield from list(source)[:2]
            raise error
        return lambda path: record_drive(path, frames(), source.classes)

    for error in (OSError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            record_staged(tmp_path / "cut.mcap", cut(error))
        assert list(tmp_path.iterdir()) == []
    broken = tmp_path / "broken"
    write_sequence(broken, "08", scans=2)
    for scan in (broken / "sequences" / "08" / "velodyne").iterdir():
        scan.write_bytes(b"\0" * 6)  # no whole point: every frame is left out
    out = tmp_path / "empty.mcap"
    with pytest.raises(BagError, match=re.escape(f"no frame to record into {out}")):
        convert_semantickitti(out, broken, "08")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_a_sensor_recalibrated_within_the_scene_is_an_error(nuscenes, tmp_path):
    """One bag holds one rig on /tf_static: a camera whose calibrated_sensor moves between samples cannot be."""
    import shutil

    from ov_panoptic_ros.data.convert import convert_nuscenes
    from ov_panoptic_ros.data.nuscenes import NuScenesError

    root = Path(shutil.copytree(nuscenes.root, tmp_path / "data"))
    tables = root / tiny.VERSION
    sensors = json.loads((tables / "calibrated_sensor.json").read_text())
    moved = dict(nuscenes.calibrated_sensor("CAM_FRONT"), token="moved")
    moved["translation"] = [t + 0.01 for t in moved["translation"]]
    (tables / "calibrated_sensor.json").write_text(json.dumps(sensors + [moved]))
    records = json.loads((tables / "sample_data.json").read_text())
    for r in records:
        if r["token"] == nuscenes.sample_data(2, "CAM_FRONT")["token"]:
            r["calibrated_sensor_token"] = "moved"
    (tables / "sample_data.json").write_text(json.dumps(records))
    out = tmp_path / "scene.mcap"
    with pytest.raises(NuScenesError, match="CAM_FRONT's calibrated_sensor changes within the selected samples"):
        convert_nuscenes(out, root, SCENE)
    assert not out.exists()
    convert_nuscenes(out, root, SCENE, max_frames=2)  # the samples before the change are one rig
    assert len(_messages(out, "/lidar/points")) == 2
