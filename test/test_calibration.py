"""Calibration YAML: both transform spellings, and errors that name the file and the problem."""
import numpy as np
import pytest

from ov_panoptic_ros.core.calibration import CalibrationError, load_calibration, parse_calibration


def test_matrix_and_quaternion_forms_agree(tmp_path):
    # 90 degrees about z: quaternion (0, 0, sin45, cos45)
    s = np.sqrt(0.5)
    text = f"""
lidar_frame: lidar_top
cameras:
  a:
    T_cam_lidar: [0, -1, 0, 1,  1, 0, 0, 2,  0, 0, 1, 3,  0, 0, 0, 1]
    time_offset_s: 0.02
  b:
    translation: [1, 2, 3]
    rotation_xyzw: [0, 0, {s}, {s}]
"""
    f = tmp_path / "calib.yaml"
    f.write_text(text)
    calib = load_calibration(f)
    assert calib.lidar_frame == "lidar_top"
    np.testing.assert_allclose(calib.cameras["a"].T_cam_lidar, calib.cameras["b"].T_cam_lidar, atol=1e-12)
    assert calib.cameras["a"].time_offset_s == 0.02
    again = parse_calibration(calib.to_yaml())
    np.testing.assert_allclose(again.cameras["b"].T_cam_lidar, calib.cameras["b"].T_cam_lidar)


@pytest.mark.parametrize(
    "text, message",
    [
        ("cameras: [", "not valid YAML"),
        ("foo: 1", "non-empty 'cameras'"),
        ("cameras: {a: {T_cam_lidar: [1, 2, 3]}}", "needs 16 numbers"),
        ("cameras: {a: {translation: [0, 0, 0]}}", "give T_cam_lidar, or translation and rotation_xyzw"),
        ("cameras: {a: {T_cam_lidar: [2,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1]}}", "not orthonormal"),
        ("cameras: {a: {T_cam_lidar: [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1], offset: 1}}", r"unknown key\(s\) \['offset'\]"),
    ],
)
def test_malformed_calibration_names_file_and_problem(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(CalibrationError, match=message) as err:
        load_calibration(f)
    assert str(f) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CalibrationError, match="nope.yaml"):
        load_calibration(tmp_path / "nope.yaml")
