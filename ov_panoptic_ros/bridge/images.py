"""sensor_msgs/Image and CompressedImage (rclpy or rosbags) -> (H, W, 3) uint8 RGB."""
from __future__ import annotations

import io

import numpy as np

from ov_panoptic_ros.bridge.buffers import as_uint8
from ov_panoptic_ros.bridge.problems import ImageError

# Bytes per pixel of each raw encoding, named as sensor_msgs/image_encodings and cv_bridge name them.
_BYTES_PER_PIXEL = {
    "rgb8": 3, "bgr8": 3, "8uc3": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2, "16uc1": 2,
    "yuv422": 2, "yuv422_yuy2": 2,
    "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1, "bayer_grbg8": 1,
}
# Where red sits in each 2x2 Bayer tile (row, col); blue is diagonally opposite, green fills the other two.
_BAYER_RED = {"bayer_rggb8": (0, 0), "bayer_bggr8": (1, 1), "bayer_gbrg8": (1, 0), "bayer_grbg8": (0, 1)}


def _check_size(width: int, height: int, size: tuple[int, int] | None) -> None:
    if size is not None and (width, height) != tuple(size):
        raise ImageError(f"image is {width}x{height} but CameraInfo says {size[0]}x{size[1]}",
                         kind="image_size_mismatch")


def _pixel_rows(msg, enc: str) -> np.ndarray:
    """(H, W * bytes per pixel) uint8 view of the pixels, the row padding dropped, after checking the layout."""
    bpp = _BYTES_PER_PIXEL[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    raw = as_uint8(msg.data)
    if h <= 0 or w <= 0:
        raise ImageError(f"image size {w}x{h} is empty", kind="image_bad_layout")
    if step < w * bpp:
        raise ImageError(f"step {step} is smaller than width*bytes per pixel = {w}*{bpp}", kind="image_bad_layout")
    if raw.size != step * h:
        raise ImageError(f"image data has {raw.size} bytes but step*height = {step}*{h} = {step * h}",
                         kind="image_bad_layout")
    if enc.startswith("yuv422") and w % 2:
        raise ImageError(f"{enc} packs pixel pairs but the width {w} is odd", kind="image_bad_layout")
    return raw.reshape(h, step)[:, : w * bpp]


def _mono16_to_rgb(rows: np.ndarray, big_endian: bool) -> np.ndarray:
    """16-bit grey (mono16, 16UC1) scaled to 8 bits by its high byte, as cv_bridge converts mono16 to mono8."""
    high = rows.reshape(rows.shape[0], -1, 2)[:, :, 0 if big_endian else 1]
    return np.repeat(high[:, :, None], 3, axis=2)


def _yuv422_to_rgb(rows: np.ndarray, enc: str) -> np.ndarray:
    """Packed 4:2:2 (yuv422 = UYVY, yuv422_yuy2 = YUYV) to RGB with the BT.601 video-range matrix."""
    quads = rows.reshape(rows.shape[0], -1, 4).astype(np.float32)
    if enc == "yuv422":
        u, y0, v, y1 = np.moveaxis(quads, 2, 0)
    else:
        y0, u, y1, v = np.moveaxis(quads, 2, 0)
    y = (np.stack([y0, y1], axis=2).reshape(rows.shape[0], -1) - 16.0) * 1.164
    u, v = np.repeat(u - 128.0, 2, axis=1), np.repeat(v - 128.0, 2, axis=1)
    rgb = np.stack([y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u], axis=2)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _bayer_to_rgb(px: np.ndarray, enc: str) -> np.ndarray:
    """Demosaic by 2x2 tiles: each tile's red, mean green and blue fill its four pixels (CLIP's input is far
    coarser than a tile). An odd last row or column reuses the tile before it."""
    h, w = px.shape
    even = np.pad(px, ((0, h % 2), (0, w % 2)), mode="edge").astype(np.float32)
    r0, c0 = _BAYER_RED[enc]
    red, blue = even[r0::2, c0::2], even[1 - r0::2, 1 - c0::2]
    green = (even[r0::2, 1 - c0::2] + even[1 - r0::2, c0::2]) / 2
    tiles = np.clip(np.rint(np.stack([red, green, blue], axis=2)), 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(tiles, 2, axis=0), 2, axis=1)[:h, :w]


def image_to_rgb(msg, size: tuple[int, int] | None = None) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB (a read-only view into the message for tight rgb8).
    `size` (width, height), when given, is what the camera's CameraInfo says: any other is image_size_mismatch.
    8UC3 carries no colour order; it is read as BGR, OpenCV's order, as cv_bridge's users expect."""
    enc = str(msg.encoding).lower()
    if enc not in _BYTES_PER_PIXEL:
        raise ImageError(
            f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(_BYTES_PER_PIXEL)})",
            kind="image_bad_encoding",
        )
    rows = _pixel_rows(msg, enc)
    h, w = rows.shape[0], int(msg.width)
    _check_size(w, h, size)
    if enc in ("mono16", "16uc1"):
        return _mono16_to_rgb(rows, bool(msg.is_bigendian))
    if enc.startswith("yuv422"):
        return _yuv422_to_rgb(rows, enc)
    if enc in _BAYER_RED:
        return _bayer_to_rgb(rows, enc)
    px = rows.reshape(h, w, _BYTES_PER_PIXEL[enc])
    if enc == "rgb8":
        return px if px.flags.c_contiguous else np.ascontiguousarray(px)
    if enc == "mono8":
        return np.repeat(px, 3, axis=2)
    if enc == "rgba8":
        return np.ascontiguousarray(px[:, :, :3])
    return np.ascontiguousarray(px[:, :, 2::-1])  # bgr8 / bgra8 / 8UC3


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
