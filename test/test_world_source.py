"""A world drive is a FrameSource: recorded in the evaluation bag layout, it reads back exactly."""
import numpy as np
import pytest

from ov_panoptic_ros.data.bag.recording import record_drive
from ov_panoptic_ros.data.bag.source import BagFrameSource
from ov_panoptic_ros.data.world.generator import WorldConfig
from ov_panoptic_ros.data.world.source import WorldSource

SMALL = WorldConfig(duration_s=1.0, image_size=(96, 64))


def test_a_world_drive_records_and_reads_back(tmp_path):
    source = WorldSource(seed=3, frames=2, config=SMALL, start=4)
    made = list(source)
    assert source.position == 1 and len(source) == 2
    record_drive(tmp_path / "world.mcap", made, source.classes)
    back = BagFrameSource.open(tmp_path / "world.mcap")
    assert back.classes == source.classes
    read = list(back)
    assert len(read) == 2
    for (frame, truth), (frame_back, truth_back) in zip(made, read):
        assert frame_back.stamp_ns == frame.stamp_ns
        np.testing.assert_array_equal(frame_back.points, frame.points)
        np.testing.assert_array_equal(frame_back.intensity, frame.intensity)
        np.testing.assert_array_equal(truth_back.labels, truth.labels)
        np.testing.assert_array_equal(truth_back.instance_ids, truth.instance_ids)
        for cam, cam_back, image, image_back in zip(frame.cameras, frame_back.cameras, frame.images, frame_back.images):
            assert cam_back.name == cam.name and cam_back.distortion_model == "plumb_bob"
            np.testing.assert_allclose(cam_back.K, cam.K)
            np.testing.assert_allclose(cam_back.D, cam.D)
            np.testing.assert_allclose(cam_back.T_cam_lidar, cam.T_cam_lidar, atol=1e-12)
            np.testing.assert_array_equal(image_back, image)


def test_frames_outside_the_drive_are_refused():
    with pytest.raises(ValueError, match="not in the drive's 10 frames"):
        WorldSource(seed=0, frames=5, config=SMALL, start=8)
    assert len(WorldSource(seed=0, config=SMALL, start=7)) == 3
    assert next(iter(WorldSource(seed=0, config=SMALL, ground_truth=False)))[1] is None


def test_the_packaged_demo_calibration_is_the_world_rig():
    """`ros2 run` with no arguments must label the demo drive: its default calibration is the world car's rig."""
    from ov_panoptic_ros.core.assets import package_file
    from ov_panoptic_ros.core.calibration import load_calibration
    from ov_panoptic_ros.data.world.generator import World

    shipped = load_calibration(package_file("config/calibration_demo.yaml"))
    rig = World(9000, SMALL).calibration
    assert shipped.lidar_frame == rig.lidar_frame and set(shipped.cameras) == set(rig.cameras)
    for name, cam in rig.cameras.items():
        np.testing.assert_allclose(shipped.cameras[name].T_cam_lidar, cam.T_cam_lidar, atol=1e-8)
        assert shipped.cameras[name].time_offset_s == cam.time_offset_s
