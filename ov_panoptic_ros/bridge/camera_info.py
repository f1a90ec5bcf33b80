"""sensor_msgs/CameraInfo (rclpy or rosbags) + calibration extrinsics -> the core's CameraModel."""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.bridge.problems import CameraInfoError
from ov_panoptic_ros.core.frame import CameraModel

_DISTORTION_COEFFS = {"plumb_bob": 5, "rational_polynomial": 8}


def _distortion(info) -> tuple[str, np.ndarray]:
    model = str(info.distortion_model).strip()
    d = np.asarray(info.d, dtype=np.float64).reshape(-1)
    if model in ("", "none"):
        if np.any(d != 0):
            raise CameraInfoError(f"distortion coefficients {d.tolist()} given without a distortion model",
                                  kind="camera_info_bad_distortion")
        return "none", np.zeros(0)
    if model not in _DISTORTION_COEFFS:
        raise CameraInfoError(
            f"unknown distortion model {model!r} (supported: plumb_bob, rational_polynomial)",
            kind="camera_info_bad_distortion",
        )
    need = _DISTORTION_COEFFS[model]
    if d.size == 0:
        return model, np.zeros(need)
    if d.size != need:
        raise CameraInfoError(f"{model} needs {need} coefficients, got {d.size}", kind="camera_info_bad_distortion")
    return model, d


def camera_model_from_info(name: str, info, extrinsics) -> CameraModel:
    """sensor_msgs/CameraInfo + calibration extrinsics -> CameraModel (K and D of the raw image)."""
    k = np.asarray(info.k, dtype=np.float64).reshape(-1)
    if k.size != 9 or not np.isfinite(k).all() or k[0] <= 0 or k[4] <= 0:
        raise CameraInfoError(f"camera {name!r}: CameraInfo K has no valid focal length: {k.tolist()}",
                              kind="camera_info_bad_k")
    if max(int(getattr(info, "binning_x", 0)), int(getattr(info, "binning_y", 0))) > 1:
        raise CameraInfoError(f"camera {name!r}: binning is not supported", kind="camera_info_unsupported")
    roi = getattr(info, "roi", None)
    if roi is not None and int(roi.width) and int(roi.height) and (int(roi.width), int(roi.height)) != (
        int(info.width), int(info.height)
    ):
        raise CameraInfoError(f"camera {name!r}: a region of interest is not supported", kind="camera_info_unsupported")
    model, d = _distortion(info)
    try:
        return CameraModel(
            name=name, width=int(info.width), height=int(info.height), K=k.reshape(3, 3), D=d,
            distortion_model=model, T_cam_lidar=extrinsics.T_cam_lidar, time_offset_s=extrinsics.time_offset_s,
        )
    except ValueError as e:
        raise CameraInfoError(f"camera {name!r}: {e}") from e


def camera_info_key(info) -> tuple:
    """What identifies a CameraInfo's content, to rebuild a CameraModel only when it changes."""
    return (int(info.width), int(info.height), str(info.distortion_model),
            tuple(float(v) for v in info.k), tuple(float(v) for v in info.d))


class CameraModels:
    """The CameraModel of each camera from its latest CameraInfo, rebuilt only when that content changes.

    A CameraInfo that describes no usable camera is remembered as its error, raised afresh each time the
    camera is asked for (re-raising one exception object would grow its traceback frame by frame).
    """

    def __init__(self, extrinsics: dict):
        self.extrinsics = extrinsics  # camera name -> core.calibration.CameraExtrinsics
        self._infos: dict[str, object] = {}
        self._built: dict[str, tuple] = {}  # camera -> (info key, CameraModel or (reason, kind))

    def update(self, camera: str, info) -> bool:
        """Store the camera's latest CameraInfo; True when it is the camera's first."""
        first = camera not in self._infos
        self._infos[camera] = info
        return first

    def has_info(self, camera: str) -> bool:
        return camera in self._infos

    def model(self, camera: str) -> CameraModel:
        info = self._infos.get(camera)
        if info is None:
            raise CameraInfoError("no CameraInfo received yet", kind="camera_info_missing")
        key = camera_info_key(info)
        cached = self._built.get(camera)
        if cached is None or cached[0] != key:
            try:
                cached = (key, camera_model_from_info(camera, info, self.extrinsics[camera]))
            except CameraInfoError as e:
                cached = (key, (str(e), e.kind))
            self._built[camera] = cached
        if isinstance(cached[1], tuple):
            raise CameraInfoError(*cached[1])
        return cached[1]
