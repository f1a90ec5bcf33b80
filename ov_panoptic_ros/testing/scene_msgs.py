"""rclpy messages of a synthetic scene: what a LiDAR driver and camera drivers would publish.

Used by the node tests, the ROS benchmark and anyone who wants to feed the node without a bag.
The input cloud has the common driver layout x, y, z, intensity (float32), ring (uint16), time
(float32): 22 bytes per point, like the Velodyne/Ouster drivers' clouds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from tf2_msgs.msg import TFMessage

from ov_panoptic_ros.bridge import builders
from ov_panoptic_ros.bridge.clouds import FLOAT32, UINT16
from ov_panoptic_ros.ros.message_kit import RCLPY_KIT

DRIVER_FIELDS = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1), ("intensity", 12, FLOAT32, 1),
                 ("ring", 16, UINT16, 1), ("time", 18, FLOAT32, 1)]
DRIVER_POINT_STEP = 22


def header(stamp_ns: int, frame_id: str):
    return builders.header(RCLPY_KIT, stamp_ns, frame_id)


def driver_cloud(xyz: np.ndarray, intensity: np.ndarray | None, stamp_ns: int, frame_id: str) -> PointCloud2:
    """A 22-byte-per-point PointCloud2 (x, y, z, intensity, ring, time), little-endian, one row."""
    n = len(xyz)
    dt = np.dtype({"names": [f[0] for f in DRIVER_FIELDS], "formats": ["<f4"] * 4 + ["<u2", "<f4"],
                   "offsets": [f[1] for f in DRIVER_FIELDS], "itemsize": DRIVER_POINT_STEP})
    arr = np.zeros(n, dt)
    arr["x"], arr["y"], arr["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    arr["intensity"] = 0.0 if intensity is None else intensity
    arr["ring"] = np.arange(n) % 32
    arr["time"] = np.linspace(0.0, 0.1, n, dtype=np.float32) if n else 0.0
    return PointCloud2(header=header(stamp_ns, frame_id), height=1, width=n,
                       fields=[PointField(name=a, offset=o, datatype=d, count=c) for a, o, d, c in DRIVER_FIELDS],
                       is_bigendian=False, point_step=DRIVER_POINT_STEP, row_step=DRIVER_POINT_STEP * n,
                       data=arr.tobytes(), is_dense=bool(np.isfinite(xyz).all()))


def tf_message(transforms) -> TFMessage:
    """(parent, child, 4x4 parent <- child, stamp_ns) tuples -> TFMessage, as a broadcaster sends them."""
    return builders.tf_message(RCLPY_KIT, transforms)


def rgb_image(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8") -> Image:
    """(H, W, 3) uint8 RGB -> Image in rgb8 or bgr8."""
    return builders.image(RCLPY_KIT, rgb, stamp_ns, frame_id, encoding)


def compressed_image(rgb: np.ndarray, stamp_ns: int, frame_id: str, fmt: str = "jpeg") -> CompressedImage:
    return builders.compressed_image(RCLPY_KIT, rgb, stamp_ns, frame_id, fmt)


def camera_info(info, stamp_ns: int) -> CameraInfo:
    """data.synthetic.CameraInfoData -> CameraInfo (K, D and the image size; P from K)."""
    return builders.camera_info(RCLPY_KIT, info, stamp_ns, f"{info.name}_optical")


@dataclass
class SceneMessages:
    cloud: PointCloud2
    images: dict[str, Image]
    infos: dict[str, CameraInfo]


def scene_messages(scene, stamp_ns: int | None = None, encoding: str = "rgb8") -> SceneMessages:
    """A SyntheticScene as driver messages, all stamped `stamp_ns` (default: the scene's stamp)."""
    frame = scene.frame
    stamp = frame.stamp_ns if stamp_ns is None else stamp_ns
    cloud = driver_cloud(frame.points, frame.intensity, stamp, frame.frame_id)
    images, infos = {}, {}
    for img, cam, info in zip(frame.images, frame.cameras, scene.camera_infos):
        if encoding in ("jpeg", "png"):
            images[cam.name] = compressed_image(img, stamp, f"{cam.name}_optical", encoding)
        else:
            images[cam.name] = rgb_image(img, stamp, f"{cam.name}_optical", encoding)
        infos[cam.name] = camera_info(info, stamp)
    return SceneMessages(cloud, images, infos)
