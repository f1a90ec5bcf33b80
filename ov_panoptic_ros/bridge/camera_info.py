"""sensor_msgs/CameraInfo (rclpy or rosbags) + calibration extrinsics -> the core's CameraModel."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ov_panoptic_ros.bridge.problems import CameraInfoError
from ov_panoptic_ros.core.calibration import CameraExtrinsics
from ov_panoptic_ros.core.frame import COEFF_COUNTS, CameraModel

# The models a CameraInfo may name besides none (or ""), which _distortion handles first.
_DISTORTION_COEFFS = {model: n for model, n in COEFF_COUNTS.items() if model != "none"}


_AT_ORIGIN = CameraExtrinsics(np.eye(4))  # intrinsic models are built here, placed per frame


def _distortion(info) -> tuple[str, np.ndarray]:
    model = str(info.distortion_model).strip()
    d = np.asarray(info.d, dtype=np.float64).reshape(-1)
    if not np.isfinite(d).all():
        raise CameraInfoError(f"distortion coefficients {d.tolist()} are not all finite",
                              kind="camera_info_bad_distortion")
    if model in ("", "none"):
        if np.any(d != 0):
            raise CameraInfoError(f"distortion coefficients {d.tolist()} given without a distortion model",
                                  kind="camera_info_bad_distortion")
        return "none", np.zeros(0)
    if model not in _DISTORTION_COEFFS:
        raise CameraInfoError(
            f"unknown distortion model {model!r} (supported: {', '.join(_DISTORTION_COEFFS)})",
            kind="camera_info_bad_distortion",
        )
    need = _DISTORTION_COEFFS[model]
    if d.size == 0:
        return model, np.zeros(need)
    if d.size != need:
        raise CameraInfoError(f"{model} needs {need} coefficients, got {d.size}", kind="camera_info_bad_distortion")
    return model, d


def _intrinsics(info) -> np.ndarray:
    """K as the projection reads it: fx, fy, cx, cy and skew, nothing else (so the rest must be 0 0 0 1)."""
    k = np.asarray(info.k, dtype=np.float64).reshape(-1)
    if (k.size != 9 or not np.isfinite(k).all() or not (k[0] > 0 and k[4] > 0)
            or (k[3], k[6], k[7], k[8]) != (0.0, 0.0, 0.0, 1.0)):
        raise CameraInfoError(f"CameraInfo K is not [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with finite values and"
                              f" fx, fy > 0: {k.tolist()}", kind="camera_info_bad_k")
    return k.reshape(3, 3)


def _rectified_projection(info, T_cam_lidar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K', T_rect_lidar) for a rectified image: P = K' [I | t] projects points of the rectified frame, which R
    rotates the camera frame into (an all-zero R is an unset one: identity). t is non-zero for the right camera of
    a stereo pair."""
    p = np.asarray(info.p, dtype=np.float64).reshape(-1)
    if (p.size != 12 or not np.isfinite(p).all() or not (p[0] > 0 and p[5] > 0)
            or (p[4], p[8], p[9], p[10]) != (0.0, 0.0, 0.0, 1.0)):
        raise CameraInfoError(f"a rectified camera needs CameraInfo P = [[fx', s, cx', Tx], [0, fy', cy', Ty],"
                              f" [0, 0, 1, 0]] with fx', fy' > 0: {p.tolist()}", kind="camera_info_bad_p")
    p = p.reshape(3, 4)
    r = np.asarray(info.r, dtype=np.float64).reshape(-1)
    r = np.eye(3) if r.size == 0 or not r.any() else r.reshape(3, 3) if r.size == 9 else r
    if r.shape != (3, 3) or not np.isfinite(r).all() or not np.allclose(r @ r.T, np.eye(3), atol=1e-4) \
            or np.linalg.det(r) <= 0:
        raise CameraInfoError(f"CameraInfo R is not a rotation: {np.asarray(info.r).tolist()}",
                              kind="camera_info_bad_p")
    k = p[:, :3].copy()
    rect_cam = np.eye(4)
    rect_cam[:3, :3], rect_cam[:3, 3] = r, np.linalg.solve(k, p[:, 3])
    return k, rect_cam @ np.asarray(T_cam_lidar, dtype=np.float64)


def _roi_used(info) -> bool:
    """Whether the CameraInfo describes a region of interest: anything but all zeros or the full image."""
    roi = getattr(info, "roi", None)
    if roi is None:
        return False
    box = (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
    return box not in ((0, 0, 0, 0), (0, 0, int(info.width), int(info.height)))


def camera_model_from_info(name: str, info, extrinsics, rectified: bool = False) -> CameraModel:
    """sensor_msgs/CameraInfo + calibration extrinsics -> CameraModel: K and D for a raw image, or P and R
    without distortion for a rectified one (image_rect).

    Checks everything CameraModel would, so a CameraInfo is either a model or a CameraInfoError with its
    problem kind. Messages leave the camera out: every caller reports the camera with the problem.
    """
    width, height = int(info.width), int(info.height)
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"CameraInfo image size {width}x{height} is empty", kind="camera_info_bad_size")
    k = _intrinsics(info)
    if max(int(getattr(info, "binning_x", 0)), int(getattr(info, "binning_y", 0))) > 1:
        raise CameraInfoError("binning is not supported", kind="camera_info_unsupported")
    if _roi_used(info):
        raise CameraInfoError("a region of interest is not supported", kind="camera_info_unsupported")
    if rectified:
        k, T_cam_lidar = _rectified_projection(info, extrinsics.T_cam_lidar)
        return CameraModel(name=name, width=width, height=height, K=k, D=np.zeros(0), distortion_model="none",
                           T_cam_lidar=T_cam_lidar, time_offset_s=extrinsics.time_offset_s)
    model, d = _distortion(info)
    return CameraModel(name=name, width=width, height=height, K=k, D=d, distortion_model=model,
                       T_cam_lidar=extrinsics.T_cam_lidar, time_offset_s=extrinsics.time_offset_s)


def camera_info_key(info) -> tuple:
    """Every CameraInfo field `camera_model_from_info` reads, to rebuild a CameraModel only when one changes."""
    roi = getattr(info, "roi", None)
    return (int(info.width), int(info.height), str(info.distortion_model),
            tuple(float(v) for v in info.k), tuple(float(v) for v in info.d),
            tuple(float(v) for v in getattr(info, "p", ())), tuple(float(v) for v in getattr(info, "r", ())),
            int(getattr(info, "binning_x", 0)), int(getattr(info, "binning_y", 0)),
            None if roi is None else (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)))


class CameraModels:
    """The intrinsic CameraModel of each camera from its latest CameraInfo, rebuilt only when that content
    changes; `model` places it with the frame's extrinsics (bridge.extrinsics: the file's, or TF's at the
    frame's stamps), so only a matrix product is paid per frame.

    A CameraInfo that describes no usable camera is remembered as its error, raised afresh each time the
    camera is asked for (re-raising one exception object would grow its traceback frame by frame).
    """

    def __init__(self, rectified=frozenset()):
        self.rectified = frozenset(rectified)  # the cameras whose images are rectified: projected with P and R
        self._infos: dict[str, object] = {}
        self._built: dict[str, tuple] = {}  # camera -> (info key, CameraModel placed at identity, or (reason, kind))

    def update(self, camera: str, info) -> bool:
        """Store the camera's latest CameraInfo; True when it is the camera's first."""
        first = camera not in self._infos
        self._infos[camera] = info
        return first

    def has_info(self, camera: str) -> bool:
        return camera in self._infos

    def frame_id(self, camera: str) -> str:
        """The camera's optical frame as its CameraInfo names it (what TF is asked for)."""
        return str(self._info(camera).header.frame_id).lstrip("/")

    def _info(self, camera: str):
        info = self._infos.get(camera)
        if info is None:
            raise CameraInfoError("no CameraInfo received yet", kind="camera_info_missing")
        return info

    def model(self, camera: str, T_cam_lidar: np.ndarray, time_offset_s: float = 0.0) -> CameraModel:
        info = self._info(camera)
        key = camera_info_key(info)
        cached = self._built.get(camera)
        if cached is None or cached[0] != key:
            try:
                cached = (key, camera_model_from_info(camera, info, _AT_ORIGIN, camera in self.rectified))
            except CameraInfoError as e:
                cached = (key, (str(e), e.kind))
            self._built[camera] = cached
        if isinstance(cached[1], tuple):
            raise CameraInfoError(*cached[1])
        placed = cached[1]  # its T_cam_lidar is the rectification (identity for a raw image)
        return replace(placed, T_cam_lidar=placed.T_cam_lidar @ np.asarray(T_cam_lidar, dtype=np.float64),
                       time_offset_s=time_offset_s)
