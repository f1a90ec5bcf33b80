"""The nuScenes FrameSource (data/nuscenes/) on a tiny dataroot in the real on-disk format
(ov_panoptic_ros/testing/nuscenes_tiny.py).

What nuscenes-devkit says about the same dataroot is the oracle: it runs in .venv-oracle (numpy < 2) as a
subprocess (nuscenes_oracle.py), opens the tiny dataroot with its own NuScenes class (so the tables are in the
real format) and answers with its class mapping, its labels per point, map_pointcloud_to_image's pixels (the
ego-motion chain), its mini_val samples and its scene splits. As in test_metrics.py, a missing oracle venv
fails these tests with the command that builds it; it does not skip them.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import itertools

import numpy as np
import pytest
import torch
from random_access import (check_indexed_as_iterated, check_shards_build_only_their_frames,
                           check_training_order_shuffles)

from ov_panoptic_ros.core.classes import nuscenes_classes
from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.data.nuscenes import CAMERAS, NuScenesError, NuScenesSource
from ov_panoptic_ros.data.nuscenes.labels import GENERAL_TO_CHALLENGE
from ov_panoptic_ros.data.nuscenes.splits import SPLITS_FILE
from ov_panoptic_ros.data.source import FrameUnavailable
from ov_panoptic_ros.eval.devkit_oracle import oracle_python
from ov_panoptic_ros.eval.strided import StridedSource
from ov_panoptic_ros.train.data import FrameOrder
from ov_panoptic_ros.testing import nuscenes_tiny as tiny

HERE = Path(__file__).resolve().parent
MAKE_SPLITS = HERE.parent / "ov_panoptic_ros" / "data" / "nuscenes" / "make_splits.py"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny.build(tmp_path_factory.mktemp("nuscenes") / "data")


@pytest.fixture(scope="module")
def devkit(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle") / "devkit.json"
    proc = subprocess.run([str(oracle_python()), str(HERE / "nuscenes_oracle.py"), str(dataset.root), tiny.VERSION,
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"nuscenes-devkit could not read the tiny dataroot:\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text())


@pytest.fixture
def copy(dataset, tmp_path):
    """A copy of the tiny dataroot to damage."""
    return Path(shutil.copytree(dataset.root, tmp_path / "data"))


def test_frames_carry_the_sweeps_images_and_stamps(dataset):
    source = open_source(f"nuscenes:{dataset.root}")
    assert isinstance(source, NuScenesSource)
    items = list(source)
    assert len(items) == len(source) == 7 and source.position == 6
    assert source.problems.frames_skipped == 0 and not source.problems.cameras
    for k, (frame, truth) in enumerate(items):
        np.testing.assert_array_equal(frame.points, dataset.points[k][:, :3])
        np.testing.assert_array_equal(frame.intensity, dataset.points[k][:, 3])
        assert frame.stamp_ns == dataset.lidar[k]["timestamp"] * 1000 and frame.frame_id == "LIDAR_TOP"
        assert [c.name for c in frame.cameras] == list(CAMERAS)
        for camera, image in zip(frame.cameras, frame.images):
            written = dataset.images[(k, camera.name)]
            assert image.shape == written.shape and np.abs(image.astype(int) - written).mean() < 3  # JPEG q95
            assert camera.distortion_model == "none" and camera.time_offset_s == 0
            np.testing.assert_allclose(camera.K, dataset.calibrated_sensor(camera.name)["camera_intrinsic"])
        assert truth.labels.shape == truth.instance_ids.shape == (frame.num_points,)
    assert source.classes == nuscenes_classes()


def test_the_general_classes_fold_as_the_devkits_mapper_folds_them(devkit):
    classes = nuscenes_classes()
    ours = {name: 0 if target is None else classes.index(target) for name, target in GENERAL_TO_CHALLENGE.items()}
    assert ours == devkit["general_to_challenge"] and len(ours) == 32
    assert classes.ignore == (0,) and classes.names[0] == "noise"


def test_labels_are_the_devkits_and_instances_are_unique_per_thing(dataset, devkit):
    classes = nuscenes_classes()
    for k, (frame, truth) in enumerate(NuScenesSource(dataset.root)):
        np.testing.assert_array_equal(truth.labels, devkit["labels"][dataset.lidar[k]["token"]])
        panoptic = dataset.panoptic[k].astype(np.uint32)
        thing = np.asarray(classes.is_thing)[truth.labels]
        assert (truth.instance_ids[~thing] == 0).all()  # stuff and ignored points
        np.testing.assert_array_equal(truth.instance_ids[thing], panoptic[thing])  # instance part > 0 here
        for instance in np.unique(truth.instance_ids[thing]):  # one class per instance
            assert np.unique(truth.labels[truth.instance_ids == instance]).size == 1
        assert thing.any() and (~thing).any() and (truth.labels == 0).any()


def _devkit_view(frame, camera):
    """Our camera model's pixels and depths under map_pointcloud_to_image's masks, in point order."""
    p = camera.T_cam_lidar[:3, :3] @ frame.points.T.astype(np.float64) + camera.T_cam_lidar[:3, 3:]
    uv = (camera.K @ p)[:2] / p[2]
    keep = (p[2] > 1) & (uv[0] > 1) & (uv[0] < camera.width - 1) & (uv[1] > 1) & (uv[1] < camera.height - 1)
    return np.concatenate([uv[:, keep].T, p[2, keep, None]], 1)


def test_every_point_lands_where_the_devkits_ego_motion_chain_puts_it(dataset, devkit):
    for k, (frame, _) in enumerate(NuScenesSource(dataset.root)):
        for camera in frame.cameras:
            expected = np.asarray(devkit["projections"][f"{dataset.samples[k]}/{camera.name}"])
            ours = _devkit_view(frame, camera)
            assert ours.shape == expected.shape and len(ours) > 10
            # the devkit moves float32 points through global coordinates (~1 km: 0.1 mm steps), so compare in
            # metres at the point's depth: a millimetre, where the car's motion between the stamps is ~0.5 m
            lateral_m = np.abs(ours[:, :2] - expected[:, :2]).max(axis=1) * expected[:, 2] / camera.K[0, 0]
            assert lateral_m.max() < 1e-3 and np.abs(ours[:, 2] - expected[:, 2]).max() < 1e-3


def test_a_planted_point_projects_into_its_pixel_through_the_moving_car(dataset):
    k, index, channel, uv = dataset.planted
    frame, _ = list(NuScenesSource(dataset.root, cameras=[channel]))[k]
    proj = project_points(torch.from_numpy(frame.points), frame.cameras, ProjectionConfig(occlusion=False))
    hit = proj.point == index
    assert hit.sum() == 1
    np.testing.assert_allclose(proj.uv[hit][0].numpy(), uv, atol=1e-3)
    np.testing.assert_allclose(proj.depth[hit][0].item(), 9.0, atol=1e-4)
    # without the ego motion (the camera's pose taken at the LiDAR's stamp) the point lands pixels away
    at_lidar_time = dict(dataset.sample_data(k, channel), ego_pose_token=dataset.lidar[k]["ego_pose_token"])
    still = tiny.plant_point(dataset.tables, dataset.lidar[k], at_lidar_time, uv, 9.0)
    assert np.linalg.norm(still - frame.points[index]) > 0.3


def test_the_shipped_splits_are_the_devkits(devkit):
    proc = subprocess.run([str(oracle_python()), str(MAKE_SPLITS), "--print"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == SPLITS_FILE.read_text(), f"regenerate: .venv-oracle/bin/python {MAKE_SPLITS}"
    assert json.loads(SPLITS_FILE.read_text())["splits"] == devkit["splits"]


def test_splits_scenes_every_and_max_frames_select_samples(dataset, devkit):
    stamp_of = {s: r["timestamp"] * 1000 for s, r in zip(dataset.samples, dataset.lidar)}
    val = list(NuScenesSource(dataset.root, split="mini_val"))
    assert [f.stamp_ns for f, _ in val] == [stamp_of[s] for s in devkit["mini_val"]]
    assert len(list(NuScenesSource(dataset.root, split="mini_train"))) == 3  # scene-0061: the only one here
    one = NuScenesSource(dataset.root, scenes=["scene-0916"])
    assert [f.stamp_ns for f, _ in one] == [stamp_of[s] for s in dataset.samples[5:]] and one.position == 1
    every = NuScenesSource(dataset.root, every=2)
    assert len(every) == 4 and [f.stamp_ns for f, _ in every] == [stamp_of[s] for s in dataset.samples[::2]]
    assert every.position == 6
    assert len(list(NuScenesSource(dataset.root, every=3, max_frames=2))) == 2
    assert len(list(NuScenesSource(dataset.root, scenes="scene-0103, scene-0916"))) == 4  # as a command line
    two = next(iter(NuScenesSource(dataset.root, cameras="CAM_BACK,CAM_FRONT")))[0]
    assert [c.name for c in two.cameras] == ["CAM_BACK", "CAM_FRONT"]
    lidar_only = next(iter(NuScenesSource(dataset.root, cameras=[])))[0]
    assert lidar_only.cameras == [] and lidar_only.num_points == 300
    for options, message in [(dict(split="train"), "not a split of v1.0-mini.*mini_train, mini_val"),
                             (dict(split="everything"), "unknown nuScenes split 'everything'"),
                             (dict(scenes=["scene-9999"]), "scene-9999.*not in v1.0-mini"),
                             (dict(split="mini_train", scenes=["scene-0103"]), "not in split 'mini_train'"),
                             (dict(cameras=["CAM_TOP"]), "unknown nuScenes camera"),
                             (dict(every=0), "every >= 1")]:
        with pytest.raises(NuScenesError, match=message):
            NuScenesSource(dataset.root, **options)


def test_an_index_gives_the_frame_iteration_gives(dataset):
    iterated = check_indexed_as_iterated(lambda: NuScenesSource(dataset.root))
    assert len(iterated) == 7
    source = NuScenesSource(dataset.root, scenes=["scene-0103"], cameras=["CAM_BACK"])
    assert len(source) == 2 and source[1][0].stamp_ns == dataset.lidar[4]["timestamp"] * 1000
    with pytest.raises(IndexError, match="frame 2 of a 2-frame nuScenes source"):
        source[2]


def test_every_and_max_frames_make_the_index_space_as_they_select_frames(dataset):
    stamps = [r["timestamp"] * 1000 for r in dataset.lidar]
    every = check_indexed_as_iterated(lambda: NuScenesSource(dataset.root, every=2, cameras=["CAM_FRONT"]))
    assert [f.stamp_ns for f, _ in every] == stamps[::2]
    source = NuScenesSource(dataset.root, every=2, cameras=[])
    assert len(source) == 4 and source[3][0].stamp_ns == stamps[6] and source.position == 6
    capped = check_indexed_as_iterated(lambda: NuScenesSource(dataset.root, every=3, max_frames=2, cameras=[]))
    assert [f.stamp_ns for f, _ in capped] == [stamps[0], stamps[3]]


def test_a_training_order_shuffles_the_samples_and_shards_build_only_their_own(dataset):
    iterated = list(NuScenesSource(dataset.root))
    check_training_order_shuffles(lambda: NuScenesSource(dataset.root), iterated)
    check_shards_build_only_their_frames(lambda: NuScenesSource(dataset.root), iterated)


def test_an_index_of_a_sample_that_cannot_be_used_raises_and_counts_it(dataset, copy):
    sweep = copy / dataset.lidar[5]["filename"]
    sweep.unlink()
    source = NuScenesSource(copy, cameras=[])
    source[4]
    with pytest.raises(FrameUnavailable, match=re.escape(str(sweep))) as raised:
        source[5]
    assert raised.value.index == 5 and raised.value.problem.kind == "cloud_missing"
    assert source.position == 4 and dict(source.problems.frames) == {"cloud_missing": 1}
    assert [p.frame for p in source.problems.examples] == [5]
    assert len(list(NuScenesSource(copy, cameras=[]))) == 6  # iteration skips it
    # sharded replay skips it too, counted once, by the shard it fell to
    shards = [StridedSource(NuScenesSource(copy, cameras=[]), rank, 2) for rank in (0, 1)]
    assert [[s.ordinal for _ in s] for s in shards] == [[0, 2, 4, 6], [1, 3]]
    assert [dict(s.problems.frames) for s in shards] == [{}, {"cloud_missing": 1}]
    # a training order needs every index: it stops on the sample, naming its file
    with pytest.raises(FrameUnavailable, match=re.escape(str(sweep))):
        list(itertools.islice(FrameOrder(NuScenesSource(copy, cameras=[])).frames(0), 7))


def test_a_dataroot_version_or_table_that_is_not_there_is_named(copy, tmp_path):
    with pytest.raises(NuScenesError, match=re.escape(f"dataroot {tmp_path / 'nowhere'} is not a directory")):
        open_source(f"nuscenes:{tmp_path / 'nowhere'}")
    with pytest.raises(NuScenesError, match="expected nuscenes:DATAROOT"):
        open_source("nuscenes:")
    with pytest.raises(NuScenesError, match=re.escape(f"{copy / 'v1.0-trainval'} not found") + ".*v1.0-mini"):
        NuScenesSource(copy, version="v1.0-trainval")
    tables = copy / "v1.0-mini"
    for table, text, message in [
        ("ego_pose", None, f"table {tables / 'ego_pose.json'} is missing"),
        ("ego_pose", "[{", f"table {tables / 'ego_pose.json'} cannot be read"),
        ("ego_pose", "[]", f"table {tables / 'ego_pose.json'} lacks ego pose"),
        ("sensor", '[{"token": "x"}]', f"table {tables / 'sensor.json'}: a record lacks the field 'channel'"),
        ("calibrated_sensor", "[]", f"table {tables / 'sample_data.json'} refers to calibrated_sensor"),
        ("sample", "[]", f"table {tables / 'sample.json'}: scene scene-0061's chain of samples"),
        ("category", '[{"token": "x", "name": "vehicle.car"}]', f"{tables / 'category.json'}: category "
                                                                 "'vehicle.car' has no usable `index`"),
        ("panoptic", None, f"table {tables / 'panoptic.json'} is missing: the Panoptic nuScenes labels are not "
                           "installed (ground_truth=False reads without them)"),
    ]:
        original = (tables / f"{table}.json").read_text()
        (tables / f"{table}.json").unlink()
        if text is not None:
            (tables / f"{table}.json").write_text(text)
        with pytest.raises(NuScenesError, match=re.escape(message)):
            NuScenesSource(copy)
        (tables / f"{table}.json").write_text(original)
    assert len(list(NuScenesSource(copy))) == 7  # restored


def test_a_bad_sweep_or_label_file_costs_its_frame_only(dataset, copy):
    label_file = {k: copy / dataset.tables["panoptic"][k]["filename"] for k in range(7)}
    np.savez_compressed(label_file[2], data=dataset.panoptic[2][:-1])  # one label short
    label_file[3].unlink()
    label_file[4].write_bytes(b"PK not a zip")
    (copy / dataset.lidar[5]["filename"]).unlink()
    (copy / dataset.lidar[6]["filename"]).write_bytes(dataset.points[6].tobytes()[:-4])
    source = NuScenesSource(copy)
    frames = [f for f, _ in source]
    assert [f.stamp_ns for f in frames] == [r["timestamp"] * 1000 for r in dataset.lidar[:2]]
    assert source.problems.frames == {"ground_truth_point_count": 1, "ground_truth_missing": 1,
                                      "ground_truth_bad_layout": 1, "cloud_missing": 1, "cloud_bad_layout": 1}
    assert [p.frame for p in source.problems.examples] == [2, 3, 4, 5, 6]
    assert all(p.camera is None for p in source.problems.examples)
    assert str(label_file[2]) in source.problems.examples[0].detail
    assert str(copy / dataset.lidar[5]["filename"]) in source.problems.examples[3].detail


def test_a_missing_or_broken_image_costs_its_camera_only(dataset, copy):
    (copy / dataset.sample_data(4, "CAM_BACK")["filename"]).unlink()
    broken = copy / dataset.sample_data(5, "CAM_FRONT")["filename"]
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    source = NuScenesSource(copy)
    frames = [f for f, _ in source]
    assert len(frames) == 7 and source.problems.frames_skipped == 0
    assert source.problems.cameras == {"CAM_BACK: image_missing": 1, "CAM_FRONT: image_corrupt": 1}
    assert [c.name for c in frames[4].cameras] == [c for c in CAMERAS if c != "CAM_BACK"]
    assert "CAM_FRONT" not in [c.name for c in frames[5].cameras] and len(frames[6].cameras) == 6
    assert any("CAM_BACK" in str(p.detail) and p.frame == 4 for p in source.problems.examples)


def test_non_finite_points_leave_with_their_labels(dataset, copy):
    clean, clean_truth = next(iter(NuScenesSource(dataset.root, cameras=[])))
    # point 3's label differs from its neighbours': a source that dropped any other point's label would differ
    assert clean_truth.labels[2] != clean_truth.labels[3] != clean_truth.labels[4]
    points = dataset.points[0].copy()
    points[3, 1] = np.nan
    points.tofile(copy / dataset.lidar[0]["filename"])
    frame, truth = next(iter(NuScenesSource(copy, cameras=[])))
    assert frame.num_points == 299 and truth.labels.shape == (299,)
    np.testing.assert_array_equal(frame.points, np.delete(dataset.points[0][:, :3], 3, axis=0))
    np.testing.assert_array_equal(frame.intensity, np.delete(clean.intensity, 3))
    np.testing.assert_array_equal(truth.labels, np.delete(clean_truth.labels, 3))
    np.testing.assert_array_equal(truth.instance_ids, np.delete(clean_truth.instance_ids, 3))


def test_the_test_version_has_no_ground_truth(copy):
    (copy / "v1.0-mini").rename(copy / "v1.0-test")
    (copy / "v1.0-test" / "panoptic.json").unlink()
    source = open_source(f"nuscenes:{copy}", version="v1.0-test")
    items = list(source)
    assert source.classes is None and len(items) == 7 and all(t is None for _, t in items)
    with pytest.raises(NuScenesError, match="split 'mini_val' is not a split of v1.0-test"):
        NuScenesSource(copy, version="v1.0-test", split="mini_val")
