"""Building the messages a driver or a recorder produces, for either message flavour.

The same functions build rclpy messages (node outputs, test drivers) and rosbags messages (bags), from a
`MessageKit`: the flavour's message classes plus how it stores array fields (rclpy takes lists and
bytes; rosbags takes numpy arrays). So a bag and a live topic carry the same message for the same data.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ov_panoptic_ros.bridge.packing import PackedCloud
from ov_panoptic_ros.bridge.stamps import ns_to_sec_nanosec

JPEG_QUALITY = 95


@dataclass(frozen=True)
class MessageKit:
    """Message classes by ROS type name ('sensor_msgs/msg/Image'), and array-field converters."""

    classes: dict[str, type]
    f64: Callable[[np.ndarray], object]  # float64[] / float64[N] field value
    u8: Callable[[np.ndarray | bytes], object]  # uint8[] field value

    def __getitem__(self, msgtype: str) -> type:
        return self.classes[msgtype]


def header(kit: MessageKit, stamp_ns: int, frame_id: str):
    sec, nanosec = ns_to_sec_nanosec(stamp_ns)
    return kit["std_msgs/msg/Header"](stamp=kit["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                      frame_id=frame_id)


def string(kit: MessageKit, text: str):
    return kit["std_msgs/msg/String"](data=text)


def cloud(kit: MessageKit, packed: PackedCloud, stamp_ns: int, frame_id: str):
    from ov_panoptic_ros.bridge.packing import to_pointcloud2

    return to_pointcloud2(packed, header(kit, stamp_ns, frame_id), kit["sensor_msgs/msg/PointCloud2"],
                          kit["sensor_msgs/msg/PointField"])


def image(kit: MessageKit, rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8"):
    """(H, W, 3) uint8 RGB -> Image in rgb8 or bgr8."""
    px = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
    h, w = rgb.shape[:2]
    return kit["sensor_msgs/msg/Image"](
        header=header(kit, stamp_ns, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0, step=w * 3,
        data=kit.u8(np.ascontiguousarray(px, dtype=np.uint8).reshape(-1)))


def compressed_image(kit: MessageKit, rgb: np.ndarray, stamp_ns: int, frame_id: str, fmt: str = "jpeg"):
    """(H, W, 3) uint8 RGB -> CompressedImage, JPEG (quality 95) or PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG" if fmt == "jpeg" else "PNG", quality=JPEG_QUALITY)
    return encoded_image(kit, buf.getvalue(), fmt, stamp_ns, frame_id)


def encoded_image(kit: MessageKit, data: bytes, fmt: str, stamp_ns: int, frame_id: str):
    """An image file's bytes as they are (jpeg or png) -> CompressedImage: a dataset's own files go into a bag
    unchanged, so a reader decodes exactly the pixels the dataset's loader does."""
    return kit["sensor_msgs/msg/CompressedImage"](header=header(kit, stamp_ns, frame_id), format=fmt,
                                                  data=kit.u8(data))


def tf_message(kit: MessageKit, transforms):
    """(parent, child, 4x4 parent <- child, stamp_ns) tuples -> one tf2_msgs/TFMessage, as a broadcaster sends them:
    each TransformStamped is the pose of `child` in `parent`, the matrix that maps child points into the parent."""
    from ov_panoptic_ros.bridge.transforms import pose_from_matrix

    stamped = []
    for parent, child, matrix, stamp_ns in transforms:
        tx, ty, tz, qx, qy, qz, qw = pose_from_matrix(matrix)
        transform = kit["geometry_msgs/msg/Transform"](
            translation=kit["geometry_msgs/msg/Vector3"](x=tx, y=ty, z=tz),
            rotation=kit["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw))
        stamped.append(kit["geometry_msgs/msg/TransformStamped"](header=header(kit, stamp_ns, parent),
                                                                 child_frame_id=child, transform=transform))
    return kit["tf2_msgs/msg/TFMessage"](transforms=stamped)


def camera_info(kit: MessageKit, info, stamp_ns: int, frame_id: str):
    """CameraInfo of a raw (unrectified) camera from anything with width, height, K, D, distortion_model;
    P is [K | 0], R the identity, no binning, no region of interest."""
    K = np.asarray(info.K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    roi = kit["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return kit["sensor_msgs/msg/CameraInfo"](
        header=header(kit, stamp_ns, frame_id), height=int(info.height), width=int(info.width),
        distortion_model=str(info.distortion_model), d=kit.f64(np.asarray(info.D, dtype=np.float64).reshape(-1)),
        k=kit.f64(K.reshape(-1)), r=kit.f64(np.eye(3).reshape(-1)), p=kit.f64(P.reshape(-1)), binning_x=0,
        binning_y=0, roi=roi)
