"""Frame sources: the synthetic street and a bag recorded from it give the same frames and ground truth."""
import numpy as np
import pytest

from ov_panoptic_ros.data.bag.recording import record_drive
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.data.synthetic_drive import SyntheticSource

OPTIONS = dict(frames=3, num_points=1500, image_size=(64, 48))


def _blocks(img):
    h, w = img.shape[0] // 8, img.shape[1] // 8
    return img[: h * 8, : w * 8].astype(float).reshape(h, 8, w, 8, 3).mean(axis=(1, 3))


def test_synthetic_source_yields_frames_with_aligned_ground_truth():
    source = open_source("synthetic:5", **OPTIONS)
    items = list(source)
    assert len(items) == len(source) == 3 and source.position == 2
    for frame, truth in items:
        assert truth.labels.shape == truth.instance_ids.shape == (frame.num_points,)
        assert truth.labels.max() < source.classes.n_classes
        assert [c.name for c in frame.cameras] == ["cam_front", "cam_back"]
    assert items[0][0].stamp_ns < items[1][0].stamp_ns
    again = [f.points for f, _ in open_source("synthetic:5", **OPTIONS)]
    other = [f.points for f, _ in open_source("synthetic:6", **OPTIONS)]
    assert all(np.array_equal(a, f.points) for a, (f, _) in zip(again, items))
    assert not np.array_equal(other[0], items[0][0].points)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_recorded_drive_replays_as_the_same_frames(tmp_path, compressed):
    """Recording, the bag source's synchronization and assemble_frame lose nothing: points, intensity, ground
    truth, camera models and (lossless) images come back as the in-memory source made them."""
    original = list(SyntheticSource(seed=2, **OPTIONS))
    record_drive(tmp_path / "d.mcap", original, SyntheticSource(seed=2, **OPTIONS).classes, compressed=compressed)
    source = open_source(tmp_path / "d.mcap")
    try:
        replayed = list(source)
        assert source.problems.frames_skipped == 0 and not source.problems.cameras
    finally:
        source.close()
    assert len(replayed) == len(original)
    for (f0, t0), (f1, t1) in zip(original, replayed):
        assert f1.stamp_ns == f0.stamp_ns and f1.frame_id == f0.frame_id
        np.testing.assert_array_equal(f1.points, f0.points)
        np.testing.assert_array_equal(f1.intensity, f0.intensity)
        np.testing.assert_array_equal(t1.labels, t0.labels)
        np.testing.assert_array_equal(t1.instance_ids, t0.instance_ids)
        for c0, c1, i0, i1 in zip(f0.cameras, f1.cameras, f0.images, f1.images):
            np.testing.assert_allclose(c1.K, c0.K)
            np.testing.assert_allclose(c1.D, c0.D)
            np.testing.assert_allclose(c1.T_cam_lidar, c0.T_cam_lidar, atol=1e-12)
            if compressed:  # JPEG: 8x8 block means (what survives the quantization) close to its own image's
                other = f0.images[1 - f0.cameras.index(c0)]
                err = np.abs(_blocks(i1) - _blocks(i0)).mean()
                assert err < 2 and err < 0.5 * np.abs(_blocks(i1) - _blocks(other)).mean()
            else:
                np.testing.assert_array_equal(i1, i0)


def test_a_camera_with_a_bad_camera_info_is_left_out_with_its_problem_kind(tmp_path):
    original = list(SyntheticSource(seed=4, **OPTIONS))
    for frame, _ in original:
        frame.cameras[1].K = frame.cameras[1].K.copy()  # the rig shares one K between its cameras
        frame.cameras[1].K[0, 0] = -1.0  # recorded as a CameraInfo whose K has no valid focal length
    record_drive(tmp_path / "bad.mcap", original, SyntheticSource(seed=4, **OPTIONS).classes)
    source = open_source(tmp_path / "bad.mcap")
    try:
        frames = [f for f, _ in source]
    finally:
        source.close()
    assert [[c.name for c in f.cameras] for f in frames] == [["cam_front"]] * 3
    assert dict(source.problems.cameras) == {"cam_back: camera_info_bad_k": 3}


def test_the_world_by_name_and_recorded_by_the_synth_command(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    source = open_source("world:3", frames=2)
    items = list(source)
    assert len(items) == 2 and source.classes.n_classes == 16 and "bus" in source.classes.names
    with pytest.raises(ValueError, match="expected world, world:SEED or world:FIRST:STOP"):
        open_source("world:three")

    bag = tmp_path / "w.mcap"
    cli = str(Path(sys.executable).parent / "ov-panoptic")
    made = subprocess.run([cli, "synth", "--out", str(bag), "--frames", "2", "--seed", "3"], capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0 and "2 frames of world seed 3" in made.stdout, made.stderr
    replayed = open_source(bag)
    try:
        for (f0, t0), (f1, t1) in zip(items, replayed):  # the bag holds exactly the world's frames
            np.testing.assert_array_equal(f1.points, f0.points)
            np.testing.assert_array_equal(t1.labels, t0.labels)
    finally:
        replayed.close()
    again = subprocess.run([cli, "synth", "--out", str(bag), "--frames", "2"], capture_output=True, text=True)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_a_range_of_world_seeds_is_one_source_with_random_access():
    source = open_source("world:3:5", frames=2, every=50, image_size=(96, 64))
    assert len(source) == 4 and source.seeds == [3, 4]
    assert source.frames_per_seed == 2 and source.config.image_size == (96, 64)
    frame, truth = source[3]  # seed 4, frame 50
    again, _ = open_source("world:4", frames=2, every=50, image_size=(96, 64))[1]
    np.testing.assert_array_equal(frame.points, again.points)
    assert frame.stamp_ns == again.stamp_ns and frame.images[0].shape == (64, 96, 3)
    with pytest.raises(IndexError):
        source[4]
    with pytest.raises(ValueError, match="not in the drive"):
        open_source("world:3", frames=5, every=50)
