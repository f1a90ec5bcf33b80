"""Matched messages -> Frame: the one place a cloud and its cameras' images become the pipeline's input.

The node (live DDS), the offline replay (bags) and anything else that holds a synchronized cloud calls
`assemble_frame`, so a camera is left out for the same reasons, with the same problem kinds, everywhere.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.bridge.camera_info import CameraModels
from ov_panoptic_ros.bridge.clouds import CloudArrays
from ov_panoptic_ros.bridge.extrinsics import Extrinsics
from ov_panoptic_ros.bridge.images import compressed_to_rgb, image_to_rgb
from ov_panoptic_ros.bridge.problems import InputError, Problem
from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.core.frame import CameraModel, Frame


@dataclass(frozen=True)
class CameraStream:
    """A configured camera: its name and whether its images arrive as CompressedImage."""

    name: str
    compressed: bool = False


def camera_image(stream: CameraStream, msg, models: CameraModels, extrinsics: Extrinsics, cloud_frame: str,
                 cloud_ns: int) -> tuple[np.ndarray, CameraModel]:
    """One camera's decoded RGB image and model placed for this cloud; InputError (with its problem kind) when
    it cannot be used."""
    offset_s = extrinsics.time_offset_s(stream.name)
    image_ns = stamp_to_ns(msg.header.stamp) + round(offset_s * 1e9)
    T = extrinsics.camera_from_lidar(stream.name, models.frame_id(stream.name), cloud_frame, cloud_ns, image_ns)
    model = models.model(stream.name, T, offset_s)
    decode = compressed_to_rgb if stream.compressed else image_to_rgb
    return decode(msg, size=(model.width, model.height)), model  # the size is checked before decoding


def assemble_frame(cloud: CloudArrays, stamp_ns: int, frame_id: str, matched: Mapping[str, object | None],
                   streams: Sequence[CameraStream], models: CameraModels,
                   extrinsics: Extrinsics) -> tuple[Frame, list[Problem]]:
    """The Frame of a cloud and its matched image messages (camera name -> message, None when unmatched),
    each camera placed by `extrinsics` (the calibration file's, or TF's at the cloud's and image's stamps).

    Only finite points enter the frame. A camera whose image or CameraInfo cannot be used is left out and
    reported as a Problem; an unmatched camera is the synchronizer's to count and is left out silently.
    """
    images, cameras, problems = [], [], []
    for stream in streams:
        msg = matched.get(stream.name)
        if msg is None:
            continue
        try:
            rgb, model = camera_image(stream, msg, models, extrinsics, frame_id, stamp_ns)
        except InputError as e:
            problems.append(Problem(e.kind, str(e), camera=stream.name, stamp_ns=stamp_ns))
            continue
        images.append(rgb)
        cameras.append(model)
    xyz, intensity = cloud.finite_points()
    frame = Frame(points=xyz, images=images, cameras=cameras, intensity=intensity, stamp_ns=stamp_ns,
                  frame_id=frame_id)
    return frame, problems
