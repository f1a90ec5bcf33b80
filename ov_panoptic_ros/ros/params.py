"""The node's parameters in one table: names, defaults, types, descriptions, ranges.

The node declares from this table, the launch-file test checks names against it and the README's
parameter table is generated from it (`markdown_table()`), so the three cannot drift apart.
A default of None is filled in at start-up from the pipeline config (the vocabulary trio).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from ov_panoptic_ros.bridge.clouds import DEFAULT_MAX_POINTS
from ov_panoptic_ros.bridge.sync import (
    DEFAULT_BUFFER_MB,
    DEFAULT_BUFFER_S,
    DEFAULT_CAMERA_TIMEOUT_S,
    DEFAULT_JUMP_THRESHOLD_S,
    DEFAULT_MAX_OFFSET_S,
)

STRING, BOOL, INTEGER, DOUBLE, STRING_ARRAY = (
    ParameterType.PARAMETER_STRING, ParameterType.PARAMETER_BOOL, ParameterType.PARAMETER_INTEGER,
    ParameterType.PARAMETER_DOUBLE, ParameterType.PARAMETER_STRING_ARRAY,
)
_TYPE_NAMES = {STRING: "string", BOOL: "bool", INTEGER: "int", DOUBLE: "double", STRING_ARRAY: "string[]"}

VOCABULARY_PARAMS = ("vocabulary", "stuff_classes", "prompt_templates")  # validated and applied as one unit
QOS_RELIABILITY = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    type: int
    description: str
    read_only: bool = False
    range: tuple[float, float] | None = None
    constraints: str = ""

    def descriptor(self, name: str | None = None) -> ParameterDescriptor:
        d = ParameterDescriptor(name=name or self.name, type=self.type, description=self.description,
                                read_only=self.read_only, additional_constraints=self.constraints)
        if self.range is not None and self.type == DOUBLE:
            lo, hi = (float(v) for v in self.range)
            d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi)]
        elif self.range is not None and self.type == INTEGER:
            d.integer_range = [IntegerRange(from_value=int(self.range[0]), to_value=int(self.range[1]), step=1)]
        return d


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("pipeline.config", "synthetic", STRING,
              "Pipeline preset name (synthetic, tiny, nuscenes, semantickitti) or path to a pipeline YAML", read_only=True),
    ParamSpec("device", "", STRING,
              "Torch device: auto, cpu, cuda or cuda:N; empty keeps the pipeline config's device", read_only=True),
    ParamSpec("calibration_file", "", STRING,
              "Camera extrinsics/time-offset YAML; empty uses the package's config/calibration_demo.yaml (none"
              " with extrinsics_source tf)",
              read_only=True),
    ParamSpec("extrinsics_source", "auto", STRING,
              "Where each camera's LiDAR->camera transform comes from: tf (/tf_static and /tf, from the cloud's"
              " frame to the CameraInfo's), file (calibration_file) or auto (TF for a camera whose frame TF"
              " publishes, the file otherwise)", read_only=True, constraints="auto | tf | file"),
    ParamSpec("tf.fixed_frame", "", STRING,
              "A frame that does not move while driving (odom, map): TF carries the cloud through it from its"
              " stamp to each image's (ego-motion). Empty: one lookup at the cloud's stamp", read_only=True),
    ParamSpec("tf.cache_s", 10.0, DOUBLE, "How long /tf samples are kept for lookups", read_only=True,
              range=(0.1, 600.0)),
    ParamSpec("lidar_topic", "/lidar/points", STRING, "Input sensor_msgs/PointCloud2 topic", read_only=True),
    ParamSpec("cameras", [], STRING_ARRAY,
              "Camera names to use (each configured by NAME.image_topic, NAME.info_topic, NAME.compressed);"
              " empty uses every camera in the calibration file", read_only=True),
    ParamSpec("qos.reliability", "best_effort", STRING,
              "Input subscriptions' reliability: best_effort (sensor data) or reliable", read_only=True,
              constraints="best_effort | reliable"),
    ParamSpec("qos.depth", 5, INTEGER, "Input subscriptions' history depth", read_only=True, range=(1, 1000)),
    ParamSpec("sync.max_offset_s", DEFAULT_MAX_OFFSET_S, DOUBLE,
              "Largest abs(image time - LiDAR time), after the camera's time_offset_s, for an image to match a cloud",
              range=(0.0, 1.0)),
    ParamSpec("sync.camera_timeout_s", DEFAULT_CAMERA_TIMEOUT_S, DOUBLE,
              "How long a cloud waits for its camera images before it is processed with those that arrived",
              range=(0.0, 5.0)),
    ParamSpec("sync.buffer_s", DEFAULT_BUFFER_S, DOUBLE,
              "Per camera, images more than this older than its newest one are dropped from the sync buffer"
              " (a cloud arriving later than that after its images misses them)", range=(0.0, 10.0)),
    ParamSpec("sync.buffer_mb", DEFAULT_BUFFER_MB, DOUBLE,
              "Per camera, the most image data the sync buffer holds (the newest image always stays)",
              range=(1.0, 4096.0)),
    ParamSpec("sync.time_jump_threshold_s", DEFAULT_JUMP_THRESHOLD_S, DOUBLE,
              "A stamp this much older than the newest one seen is a time jump (bag loop): buffers are cleared",
              range=(0.01, 3600.0)),
    ParamSpec("budget_ms", 100.0, DOUBLE,
              "Per-frame processing budget; /diagnostics goes WARN when the mean processing time exceeds it",
              range=(1.0, 60000.0)),
    ParamSpec("max_points", DEFAULT_MAX_POINTS, INTEGER,
              "Clouds with more points are rejected (counted as cloud_too_large) before being converted",
              range=(1, 100_000_000)),
    ParamSpec("autostart", True, BOOL,
              "Configure and activate at start-up; false leaves the lifecycle node unconfigured for"
              " `ros2 lifecycle set` (or a launch file's lifecycle events) to manage", read_only=True),
    ParamSpec("warmup", True, BOOL,
              "Run the pipeline once on a synthetic frame before subscribing, so the first real frame is not"
              " slowed by first-call costs (allocations, caches, CUDA kernels)", read_only=True),
    ParamSpec("vocabulary", None, STRING_ARRAY,
              "Class names; an entry may hold comma-separated synonyms ('pedestrian,person'). Changes at run time"),
    ParamSpec("stuff_classes", None, STRING_ARRAY,
              "Entries of `vocabulary` (first synonym) that are stuff: no instances, no boxes"),
    ParamSpec("prompt_templates", None, STRING_ARRAY,
              "CLIP prompt templates, each with one '{}' for the class name; empty uses the default ensemble"),
)

PER_CAMERA: tuple[ParamSpec, ...] = (
    ParamSpec("image_topic", "", STRING,
              "Image topic; empty: /NAME/image_raw (or /NAME/image_raw/compressed when compressed)",
              read_only=True),
    ParamSpec("info_topic", "", STRING, "CameraInfo topic; empty: /NAME/camera_info", read_only=True),
    ParamSpec("compressed", False, BOOL, "Subscribe to sensor_msgs/CompressedImage (jpeg/png)", read_only=True),
    ParamSpec("rectified", False, BOOL,
              "The image is rectified (image_rect): project with CameraInfo's P and R and no distortion",
              read_only=True),
)

SPECS = {p.name: p for p in PARAMETERS}
DOUBLE_PARAMS = frozenset(p.name for p in PARAMETERS if p.type == DOUBLE)  # integers are accepted for these


def parameter_names(cameras: tuple[str, ...] | list[str] = ()) -> set[str]:
    """Every parameter the node declares for the given camera names."""
    return set(SPECS) | {f"{cam}.{p.name}" for cam in cameras for p in PER_CAMERA}


def markdown_table() -> str:
    """The README's parameter table."""
    rows = ["| Parameter | Type | Default | Run-time | Description |", "|---|---|---|---|---|"]
    for p in PARAMETERS + tuple(ParamSpec(f"NAME.{c.name}", c.default, c.type, c.description, c.read_only)
                                for c in PER_CAMERA):
        default = "from pipeline config" if p.default is None else repr(p.default)
        rng = f" Range [{p.range[0]}, {p.range[1]}]." if p.range else ""
        rows.append(f"| `{p.name}` | {_TYPE_NAMES[p.type]} | `{default}` | {'no' if p.read_only else 'yes'} |"
                    f" {p.description}.{rng} |")
    return "\n".join(rows)
