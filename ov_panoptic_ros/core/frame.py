"""The few types every layer shares: what goes into the pipeline and what comes out.

A type crosses a boundary once: the ROS layer, the bag tools and training all build a `Frame`
and all read a `PanopticResult`. Arrays are numpy; the pipeline moves them to its device.
"""
from __future__ import annotations

import colorsys
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

UNLABELED = 65535  # label value for points the model does not label (uint16 max)
MAX_CLASSES = UNLABELED  # labels 0..65534 are class indices
# CameraInfo distortion models and the number of coefficients each takes (none: any D is ignored); equidistant
# is the fisheye model (OpenCV cv::fisheye). The one table: CameraModel, projection and CameraInfo read it.
COEFF_COUNTS = {"none": 0, "plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
DISTORTION_MODELS = tuple(COEFF_COUNTS)


class VocabularyError(ValueError):
    """A vocabulary that cannot be used; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Vocabulary:
    """Class names the pipeline labels with. `label` values index `classes`.

    An entry may carry comma-separated synonyms ("pedestrian,person"); its score is the max over
    them. `stuff` names the entries (whole entry string or its first synonym) that are stuff classes.
    """

    classes: tuple[str, ...]
    stuff: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()  # empty: the text encoder's default ensemble
    version: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "stuff", tuple(self.stuff))
        object.__setattr__(self, "templates", tuple(self.templates))
        self.validate()

    def validate(self) -> None:
        if not self.classes:
            raise VocabularyError("vocabulary is empty")
        if len(self.classes) > MAX_CLASSES:
            raise VocabularyError(
                f"vocabulary has {len(self.classes)} classes; the uint16 label holds at most {MAX_CLASSES}"
            )
        names = [self._canonical(c) for c in self.classes]
        for entry, syns in zip(self.classes, self.synonyms):
            if not entry.strip() or any(not s for s in syns):
                raise VocabularyError(f"vocabulary has a blank class name: {entry!r}")
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise VocabularyError(f"vocabulary has a duplicate class: {n!r}")
            seen.add(n)
        for s in self.stuff:
            if self._canonical(s) not in seen:
                raise VocabularyError(f"stuff class {s!r} is not in the vocabulary")
        for t in self.templates:
            if "{}" not in t:
                raise VocabularyError(f"prompt template {t!r} has no '{{}}' placeholder")

    @staticmethod
    def _canonical(entry: str) -> str:
        return entry.split(",")[0].strip().lower()

    @property
    def synonyms(self) -> list[list[str]]:
        """Per class, its synonyms (the first is the display name)."""
        return [[s.strip() for s in c.split(",")] for c in self.classes]

    @property
    def names(self) -> list[str]:
        """Display name per class: the first synonym."""
        return [syns[0] for syns in self.synonyms]

    @property
    def is_stuff(self) -> np.ndarray:
        stuff = {self._canonical(s) for s in self.stuff}
        return np.array([self._canonical(c) in stuff for c in self.classes], dtype=bool)

    def colors(self) -> np.ndarray:
        """(C, 3) uint8 RGB per class, stable for a class name whatever the vocabulary order."""
        return np.array([class_color(n) for n in self.names], dtype=np.uint8).reshape(-1, 3)

    def with_version(self, version: int) -> Vocabulary:
        return Vocabulary(self.classes, self.stuff, self.templates, version)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """The inverse of `to_json` (synonyms rejoined, so a consumer sees all of them)."""
        data = json.loads(text)
        entries = [",".join(s) for s in data["synonyms"]] if data.get("synonyms") else data["classes"]
        return cls(tuple(entries), tuple(data.get("stuff", ())), (), int(data.get("version", 0)))

    def to_json(self) -> str:
        """The `~/vocabulary` message payload."""
        return json.dumps(
            {
                "version": self.version,
                "classes": list(self.names),
                "synonyms": self.synonyms,
                "stuff": [n for n, s in zip(self.names, self.is_stuff) if s],
                "colors": [list(map(int, c)) for c in self.colors()],
            }
        )


def class_color(name: str) -> tuple[int, int, int]:
    """A saturated color derived from the class name, so colors survive vocabulary changes."""
    h = int(hashlib.md5(name.strip().lower().encode()).hexdigest()[:8], 16)
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, 0.65 + 0.35 * ((h >> 9) % 2), 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass
class CameraModel:
    """A calibrated camera: intrinsics from CameraInfo, extrinsics and time offset from calibration."""

    name: str
    width: int
    height: int
    K: np.ndarray  # (3, 3) intrinsics
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))  # distortion coefficients
    distortion_model: str = "none"  # one of DISTORTION_MODELS
    T_cam_lidar: np.ndarray = field(default_factory=lambda: np.eye(4))  # LiDAR frame -> camera optical frame
    time_offset_s: float = 0.0  # camera stamp + offset = LiDAR-clock time of the image

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.D = np.asarray(self.D, dtype=np.float64).reshape(-1)
        self.T_cam_lidar = np.asarray(self.T_cam_lidar, dtype=np.float64).reshape(4, 4)
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(
                f"camera {self.name!r}: unknown distortion model {self.distortion_model!r}"
                f" (supported: {', '.join(DISTORTION_MODELS)})"
            )
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera {self.name!r}: image size {self.width}x{self.height} is not positive")
        for what, values in (("intrinsic matrix K", self.K), ("distortion coefficients D", self.D),
                             ("T_cam_lidar", self.T_cam_lidar)):
            if not np.isfinite(values).all():  # NaN would leave projection without a field of view
                raise ValueError(f"camera {self.name!r}: {what} is not all finite: {values.tolist()}")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0 or self.K[2, 2] == 0:
            raise ValueError(f"camera {self.name!r}: intrinsic matrix K has no valid focal length: {self.K.tolist()}")


@dataclass
class Frame:
    """One LiDAR sweep with the camera images synchronized to it. `images[i]` belongs to `cameras[i]`."""

    points: np.ndarray  # (N, 3) float32 x, y, z in the LiDAR frame, all finite
    images: list[np.ndarray] = field(default_factory=list)  # each (H, W, 3) uint8 RGB
    cameras: list[CameraModel] = field(default_factory=list)
    intensity: np.ndarray | None = None  # (N,) float32
    stamp_ns: int = 0
    frame_id: str = "lidar"

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=np.float32).reshape(-1, 3)
        if len(self.images) != len(self.cameras):
            raise ValueError(f"{len(self.images)} images for {len(self.cameras)} cameras")
        for img, cam in zip(self.images, self.cameras):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"camera {cam.name!r}: image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
            if img.shape[:2] != (cam.height, cam.width):
                raise ValueError(
                    f"camera {cam.name!r}: image is {img.shape[1]}x{img.shape[0]}"
                    f" but CameraInfo says {cam.width}x{cam.height}"
                )

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])


@dataclass
class Instance:
    """One thing instance, with its oriented box for markers."""

    instance_id: int
    label: int
    score: float
    center: np.ndarray  # (3,)
    size: np.ndarray  # (3,) length (along yaw), width, height
    yaw: float
    num_points: int


@dataclass
class PanopticResult:
    """Per-point panoptic output, aligned with `Frame.points`."""

    labels: np.ndarray  # (N,) uint16, UNLABELED where no class applies
    instance_ids: np.ndarray  # (N,) uint32, 0 for stuff and unlabeled, unique per thing instance
    scores: np.ndarray  # (N,) float32 in [0, 1]
    instances: list[Instance]
    vocabulary: Vocabulary  # the vocabulary these labels index
    timings_ms: dict[str, float] = field(default_factory=dict)  # per pipeline stage

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        if self.instance_ids.shape[0] != n or self.scores.shape[0] != n:
            raise ValueError("labels, instance_ids and scores must have one entry per point")
        self.labels = self.labels.astype(np.uint16, copy=False)
        self.instance_ids = self.instance_ids.astype(np.uint32, copy=False)
        self.scores = self.scores.astype(np.float32, copy=False)
