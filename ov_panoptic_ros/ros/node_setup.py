"""What the node reads before it can run: its parameters (declared from ros/params.py), the pipeline config,
the cameras and their calibration. A mixin of PanopticNode, so a wrong value is a one-line StartupError at
construction, before any model is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.parameter import Parameter

from ov_panoptic_ros.bridge.extrinsics import SOURCES, Extrinsics
from ov_panoptic_ros.bridge.transforms import TransformBuffer
from ov_panoptic_ros.core.assets import package_file
from ov_panoptic_ros.core.calibration import CalibrationError, load_calibration
from ov_panoptic_ros.core.config import ConfigError, PipelineConfig, load_config
from ov_panoptic_ros.core.frame import Vocabulary, VocabularyError
from ov_panoptic_ros.ros import params as P


class StartupError(RuntimeError):
    """A configuration problem found at start-up; the message names the parameter or file."""


@dataclass
class CameraSetup:
    name: str
    image_topic: str
    info_topic: str
    compressed: bool
    rectified: bool
    time_offset_s: float


def default_calibration_file() -> Path:
    """The packaged demo calibration (core.assets finds it in an install or the source tree)."""
    return package_file("config/calibration_demo.yaml")


def _check_files_exist(config: PipelineConfig, source: str) -> None:
    for key, path in (("checkpoint", config.checkpoint), ("clip.checkpoint", config.clip.checkpoint)):
        if path and not Path(path).exists():
            raise StartupError(f"{key} file not found: {path} (from pipeline.config {source!r})")



class NodeSetup:
    """Parameter declaration and start-up checks of PanopticNode (see the module docstring)."""

    def _p(self, name: str):
        return self.get_parameter(name).value

    def _p_list(self, name: str) -> list:
        """A string-array parameter; one declared empty holds no value until it is set."""
        try:
            return list(self._p(name) or [])
        except ParameterUninitializedException:
            return []

    def _declare(self, spec: P.ParamSpec, name: str | None = None, default=None) -> None:
        """Declare one parameter; a params-file value of the wrong type is a one-line start-up error."""
        name = name or spec.name
        value = spec.default if default is None else default
        descriptor = spec.descriptor(name)
        try:
            if isinstance(value, list) and not value:  # [] would be declared as a byte array: declare the type
                self.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
            elif spec.type == P.DOUBLE:
                descriptor.dynamic_typing = True  # `budget_ms: 50` (an integer) is stored as 50.0, see _as_double
                self._as_double(self.declare_parameter(name, value, descriptor))
            else:
                self.declare_parameter(name, value, descriptor)
        except ParameterException as e:
            raise StartupError(f"parameter {name}: {e}") from e

    def _as_double(self, declared: Parameter) -> None:
        if declared.type_ == Parameter.Type.DOUBLE:
            return
        if declared.type_ != Parameter.Type.INTEGER:
            raise StartupError(f"parameter {declared.name} must be a number, got {declared.value!r}")
        result = self.set_parameters([Parameter(declared.name, Parameter.Type.DOUBLE, float(declared.value))])[0]
        if not result.successful:
            raise StartupError(f"parameter {declared.name}: {result.reason}")

    def _declare_static(self) -> None:
        for spec in P.PARAMETERS:
            if spec.default is not None:
                self._declare(spec)
        if self._p("qos.reliability") not in P.QOS_RELIABILITY:
            raise StartupError(
                f"qos.reliability must be one of {P.QOS_RELIABILITY}, got {self._p('qos.reliability')!r}")

    def _undeclared(self, names) -> list[str]:
        """The names no parameter of the node has; qos_overrides.* are rclpy's, read when a topic is made."""
        return [n for n in names if not self.has_parameter(n) and not n.startswith("qos_overrides.")]

    def _warn_unknown_overrides(self, given: set[str]) -> None:
        """rclpy silently ignores overrides nobody declares: a typo in a params file would go unnoticed."""
        unknown = sorted(self._undeclared(given))
        if unknown:
            self.get_logger().warning(f"ignoring unknown parameter(s) {unknown}; see the README's parameter table")

    def _load_config(self) -> PipelineConfig:
        source = self._p("pipeline.config")
        overrides = {"device": self._p("device")} if self._p("device") else None
        try:
            config = load_config(source, overrides)
        except ConfigError as e:
            raise StartupError(f"pipeline.config: {e}") from e
        _check_files_exist(config, source)
        return config

    def _load_cameras(self) -> list[CameraSetup]:
        """The cameras and their calibration: `cameras` names them, else the calibration file does. With
        extrinsics_source tf the file is optional (time offsets only); with auto a camera the file lacks
        takes its extrinsics from TF alone."""
        source = self._p("extrinsics_source")
        if source not in SOURCES:
            raise StartupError(f"extrinsics_source must be one of {', '.join(SOURCES)}, got {source!r}")
        path = self._p("calibration_file") or (str(default_calibration_file()) if source != "tf" else "")
        try:
            self.calibration = load_calibration(path) if path else None
        except CalibrationError as e:
            raise StartupError(str(e)) from e
        known = list(self.calibration.cameras) if self.calibration is not None else []
        names = self._p_list("cameras") or known
        if not names:
            raise StartupError("extrinsics_source tf with no calibration_file: name the cameras in `cameras`")
        unknown = [n for n in names if n not in known]
        if unknown and source == "file":
            raise StartupError(f"cameras {unknown} are not in calibration file {path} (it has {known})")
        if unknown and path:
            self.get_logger().info(f"cameras {unknown} are not in {path}: their extrinsics come from TF only")
        self.calibration_file = path
        self.extrinsics = Extrinsics(source, self.calibration, TransformBuffer(self._p("tf.cache_s")),
                                     self._p("tf.fixed_frame"))
        return [self._camera_setup(n) for n in names]

    def _camera_setup(self, name: str) -> CameraSetup:
        for spec in P.PER_CAMERA:
            self._declare(spec, f"{name}.{spec.name}")
        compressed = bool(self._p(f"{name}.compressed"))
        image = self._p(f"{name}.image_topic") or f"/{name}/image_raw" + ("/compressed" if compressed else "")
        info = self._p(f"{name}.info_topic") or f"/{name}/camera_info"
        rectified = bool(self._p(f"{name}.rectified"))
        return CameraSetup(name, image, info, compressed, rectified, self.extrinsics.time_offset_s(name))

    def _declare_vocabulary(self, config: PipelineConfig) -> None:
        v = config.vocabulary
        for name, default in zip(P.VOCABULARY_PARAMS, (v.classes, v.stuff, v.templates)):
            self._declare(P.SPECS[name], default=list(default))

    def _current_vocab_values(self) -> dict[str, list[str]]:
        return {n: self._p_list(n) for n in P.VOCABULARY_PARAMS}

    def _vocabulary_from(self, values: dict[str, list[str]], version: int) -> Vocabulary:
        try:
            return Vocabulary(tuple(values["vocabulary"]), tuple(values["stuff_classes"]),
                              tuple(values["prompt_templates"]), version)
        except VocabularyError as e:
            if version == 0:
                raise StartupError(f"vocabulary parameters: {e}") from e
            raise

