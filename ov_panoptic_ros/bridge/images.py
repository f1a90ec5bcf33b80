"""sensor_msgs/Image and CompressedImage (rclpy or rosbags) -> (H, W, 3) uint8 RGB."""
from __future__ import annotations

import io

import numpy as np

from ov_panoptic_ros.bridge.buffers import as_uint8
from ov_panoptic_ros.bridge.problems import ImageError

_RAW_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def _check_size(width: int, height: int, size: tuple[int, int] | None) -> None:
    if size is not None and (width, height) != tuple(size):
        raise ImageError(f"image is {width}x{height} but CameraInfo says {size[0]}x{size[1]}",
                         kind="image_size_mismatch")


def image_to_rgb(msg, size: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB (a read-only view into the message for tight rgb8).
    `size` (width, height), when given, is what the camera's CameraInfo says: any other is image_size_mismatch."""
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
    _check_size(w, h, size)
    px = raw.reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if enc == "rgb8":
        return px if px.flags.c_contiguous else np.ascontiguousarray(px)
    if enc == "mono8":
        return np.repeat(px, 3, axis=2)
    if enc == "rgba8":
        return np.ascontiguousarray(px[:, :, :3])
    return np.ascontiguousarray(px[:, :, 2::-1])  # bgr8 / bgra8


_COMPRESSED_FORMATS = ("jpeg", "jpg", "png")
_PIL_FORMATS = ("JPEG", "PNG")  # the only decoders PIL may pick, whatever the payload claims to be


def compressed_to_rgb(msg, size: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png, image_transport format strings too) -> (H, W, 3) uint8 RGB.

    The size in the header is compared with `size` (width, height; the camera's CameraInfo) before any pixel
    is decoded: a 291 KB PNG can claim 10000x10000 pixels, which would cost seconds and hundreds of MB.
    """
    from PIL import Image  # the node imports PIL only when a camera is configured as compressed

    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt or not any(f in fmt for f in _COMPRESSED_FORMATS):
        raise ImageError(f"unsupported compressed format {msg.format!r} (supported: jpeg, png)",
                         kind="image_bad_encoding")
    try:
        with Image.open(io.BytesIO(as_uint8(msg.data).tobytes()), formats=_PIL_FORMATS) as img:
            _check_size(*img.size, size)  # Image.open reads only the header
            return np.array(img.convert("RGB"))  # writable: torch.from_numpy warns on read-only arrays
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"corrupt {fmt} image: {e}", kind="image_corrupt") from e
