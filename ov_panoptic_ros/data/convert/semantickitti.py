"""One SemanticKITTI sequence -> an evaluation bag with its rig on /tf_static.

The rig is static and the LiDAR its root: /tf_static holds velodyne -> image_2, the pose of image_2's
(rectified) optical frame in the Velodyne frame, the inverse of the source's T_cam_lidar (calib.py: P2's offset
and Tr). Frame names are the source's: the cloud's frame_id `velodyne`, the camera's name `image_2`, which is
its images' and CameraInfo's frame_id. Scan and image share the scan's times.txt stamp (the camera is triggered
by the LiDAR), and the images are the dataset's PNG files as they are. There is no /tf: KITTI odometry's poses
are not part of SemanticKITTI's input, and nothing needs them with a static rig.

The calibration (topic and attachment) holds T_cam_lidar exactly; TF holds it as a quaternion, and KITTI's Tr
is a rotation to ~1e-7 only, so `--extrinsics file` reproduces the source to the last bit and the default
(TF, whose nearest rotation moves a point by < 1e-4 px) to within that.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics
from ov_panoptic_ros.data.bag.recording import EncodedImage, FrameExtras, StampedTransform, record_drive
from ov_panoptic_ros.data.convert.staging import Conversion, check_out, record_staged
from ov_panoptic_ros.data.semantickitti.calib import CAMERA
from ov_panoptic_ros.data.semantickitti.source import FRAME_ID, SemanticKittiSource


def convert_semantickitti(out: str | Path, root: str | Path, sequence: str, every: int = 1,
                          max_frames: int | None = None, storage: str | None = None) -> Conversion:
    """Write `sequence`'s scans (every `every`-th, at most `max_frames`) to the bag `out` (see the module
    docstring). SemanticKittiError / BagError before anything is written; nothing is left at `out` on failure."""
    out = Path(out)
    check_out(out)
    source = SemanticKittiSource(root, sequences=[sequence], every=every, max_frames=max_frames)
    T_cam_lidar = source.sequences[0].calibration.T_cam_lidar
    calibration = Calibration(FRAME_ID, {CAMERA: CameraExtrinsics(T_cam_lidar.copy())})
    static = [StampedTransform(FRAME_ID, CAMERA, np.linalg.inv(T_cam_lidar))]
    drive = record_staged(out, lambda path: record_drive(path, _frames(source), source.classes, storage,
                                                         calibration=calibration, static_transforms=static))
    return Conversion(drive, source.problems)


def _frames(source: SemanticKittiSource) -> Iterator[tuple]:
    for frame, truth in source:
        encoded = {c.name: EncodedImage("png", source.image_file(source.position).read_bytes())
                   for c in frame.cameras}
        yield frame, truth, FrameExtras({c.name: frame.stamp_ns for c in frame.cameras}, [], encoded)
