"""sensor_msgs/Image and CompressedImage (rclpy or rosbags) -> (H, W, 3) uint8 RGB."""
from __future__ import annotations

import io

import numpy as np

from ov_panoptic_ros.bridge.buffers import as_uint8
from ov_panoptic_ros.bridge.problems import ImageError

_RAW_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB (a read-only view into the message for tight rgb8)."""
    enc = str(msg.encoding).lower()
    if enc not in _RAW_ENCODINGS:
        raise ImageError(
            f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(_RAW_ENCODINGS)})",
            kind="image_bad_encoding",
        )
    channels = _RAW_ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    raw = as_uint8(msg.data)
    if h <= 0 or w <= 0:
        raise ImageError(f"image size {w}x{h} is empty", kind="image_bad_layout")
    if step < w * channels:
        raise ImageError(f"step {step} is smaller than width*channels = {w}*{channels}", kind="image_bad_layout")
    if raw.size != step * h:
        raise ImageError(f"image data has {raw.size} bytes but step*height = {step}*{h} = {step * h}",
                         kind="image_bad_layout")
    px = raw.reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if enc == "rgb8":
        return px if px.flags.c_contiguous else np.ascontiguousarray(px)
    if enc == "mono8":
        return np.repeat(px, 3, axis=2)
    if enc == "rgba8":
        return np.ascontiguousarray(px[:, :, :3])
    return np.ascontiguousarray(px[:, :, 2::-1])  # bgr8 / bgra8


_COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png, image_transport format strings too) -> (H, W, 3) uint8 RGB."""
    from PIL import Image  # the node imports PIL only when a camera is configured as compressed

    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt or not any(f in fmt for f in _COMPRESSED_FORMATS):
        raise ImageError(f"unsupported compressed format {msg.format!r} (supported: jpeg, png)",
                         kind="image_bad_encoding")
    try:
        with Image.open(io.BytesIO(as_uint8(msg.data).tobytes())) as img:
            return np.array(img.convert("RGB"))  # writable: torch.from_numpy warns on read-only arrays
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"corrupt {fmt} image: {e}", kind="image_corrupt") from e
