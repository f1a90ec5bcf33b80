"""One nuScenes scene -> an evaluation bag with TF as the vehicle publishes it.

- /tf_static: base_link -> LIDAR_TOP and base_link -> each CAM_* (the calibrated sensors). A camera's frame is
  its channel name, the optical frame nuScenes calibrates, and the frame_id of its images and CameraInfo.
- /tf: map -> base_link, the ego pose at the LiDAR's and at each camera's timestamp (nuScenes' global frame is
  the map's).
- The cloud and its ground truth are stamped at the LiDAR's timestamp, each image at its camera's own, and the
  images are the dataset's JPEG files as they are (CompressedImage: small, and decoded to the source's pixels).

`replay BAG --fixed-frame map` then places each camera exactly as the source does, inv(cs_cam) inv(ego_cam)
ego_lidar cs_lidar (geometry.py): TF is looked up at the very stamps of its /tf samples, nothing interpolated.
The calibration (topic and attachment) is the rig's, inv(cs_cam) cs_lidar, which is also what TF gives without a
fixed frame: right for a parked car, off by the car's motion between the LiDAR and camera stamps while it
drives (0.5 m at 50 km/h and 36 ms). No one calibration can hold the source's per-frame compensation, and
frame 0's would be wrong for every other frame; the rig's keeps `--extrinsics file` and `auto` consistent.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ov_panoptic_ros.bridge.sync import DEFAULT_MAX_OFFSET_S
from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics, invert_rigid
from ov_panoptic_ros.data.bag.recording import EncodedImage, FrameExtras, StampedTransform, record_drive
from ov_panoptic_ros.data.convert.staging import Conversion, check_out, record_staged
from ov_panoptic_ros.data.nuscenes.source import LIDAR, NuScenesSource

MAP, BASE_LINK = "map", "base_link"


def rig_calibration(rig: dict[str, np.ndarray], cameras: list[str]) -> Calibration:
    """LIDAR_TOP -> each camera through the car, no ego motion: the calibration file of this rig."""
    return Calibration(LIDAR, {c: CameraExtrinsics(invert_rigid(rig[c]) @ rig[LIDAR]) for c in cameras if c in rig})


def convert_nuscenes(out: str | Path, dataroot: str | Path, scene: str, version: str = "v1.0-mini",
                     every: int = 1, max_frames: int | None = None, storage: str | None = None) -> Conversion:
    """Write `scene`'s keyframes (every `every`-th, at most `max_frames`) to the bag `out` (see the module
    docstring). NuScenesError / BagError before anything is written; nothing is left at `out` on failure."""
    out = Path(out)
    check_out(out)
    source = NuScenesSource(dataroot, version, scenes=[scene], every=every, max_frames=max_frames)
    rig = source.rig()
    static = [StampedTransform(BASE_LINK, channel, mount) for channel, mount in rig.items()]
    calibration = rig_calibration(rig, source.cameras) if LIDAR in rig else None
    far = [0]
    drive = record_staged(out, lambda path: record_drive(path, _frames(source, far), source.classes, storage,
                                                         calibration=calibration, static_transforms=static))
    return Conversion(drive, source.problems, far[0])


def _frames(source: NuScenesSource, far: list[int]) -> Iterator[tuple]:
    """The source's frames with what a vehicle records beside them; `far[0]` counts images the synchronizer
    would not pair with their cloud."""
    limit_ns = DEFAULT_MAX_OFFSET_S * 1e9
    for frame, truth in source:
        cameras = [c.name for c in frame.cameras]
        sensors = source.sensors(source.position, [LIDAR, *cameras])
        poses = {s.stamp_ns: s.ego for s in sensors.values()}  # one pose per stamp, however many sensors share it
        extras = FrameExtras(
            camera_stamps_ns={c: sensors[c].stamp_ns for c in cameras},
            transforms=[StampedTransform(MAP, BASE_LINK, ego, stamp) for stamp, ego in sorted(poses.items())],
            encoded_images={c: EncodedImage("jpeg", sensors[c].file.read_bytes()) for c in cameras})
        far[0] += sum(abs(sensors[c].stamp_ns - frame.stamp_ns) > limit_ns for c in cameras)
        yield frame, truth, extras
