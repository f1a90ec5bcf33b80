"""A sample's sensors as a vehicle's TF tree holds them, for tools that write what a vehicle would (convert).

nuScenes keeps each sensor's mounting (calibrated_sensor: sensor -> ego, what /tf_static holds as base_link ->
sensor) and the vehicle's pose at each sensor's own timestamp (ego_pose: ego -> global, what /tf holds as
map -> base_link). These are the records geometry.py composes into T_cam_lidar, as matrices by the same
`pose_matrix`, so a TF buffer fed with them at the sensors' stamps gives the source's placement back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ov_panoptic_ros.data.nuscenes.errors import NuScenesError
from ov_panoptic_ros.data.nuscenes.geometry import pose_matrix
from ov_panoptic_ros.data.nuscenes.tables import NuScenesTables


@dataclass(frozen=True)
class SensorSample:
    """One sensor's keyframe of a sample: when it fired, where it is mounted, where the car was, its file."""

    channel: str
    stamp_ns: int  # the sample_data timestamp (microseconds in the tables)
    mount: np.ndarray  # (4, 4) ego <- sensor: calibrated_sensor
    ego: np.ndarray  # (4, 4) global <- ego at stamp_ns: ego_pose
    file: Path


def sensor_sample(tables: NuScenesTables, channel: str, record: dict) -> SensorSample:
    """The SensorSample of a keyframe sample_data record; NuScenesError naming it when its records are unusable."""
    try:
        return SensorSample(channel, int(record["timestamp"]) * 1000,
                            pose_matrix(tables.calibrated[record["calibrated_sensor_token"]]),
                            pose_matrix(tables.ego_pose[record["ego_pose_token"]]), tables.file(record["filename"]))
    except (KeyError, TypeError, ValueError) as e:
        raise NuScenesError(f"{channel} sample_data {record.get('token')!r}: calibrated_sensor or ego_pose record "
                            f"cannot be used: {e}") from None


def same_mount(a: np.ndarray, b: np.ndarray) -> bool:
    """Two mountings of one sensor are one rig when they agree to a micrometre (recalibrations move millimetres)."""
    return bool(np.allclose(a, b, rtol=0.0, atol=1e-6))
