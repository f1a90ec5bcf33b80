"""Why an input message cannot be used: one vocabulary of problem kinds for the node and the bag tools.

Each kind is the name of the node's /diagnostics counter for it and the reason a replay reports for a
skipped frame or camera, so a problem reads the same wherever it is found.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping

# kind -> what it means (the README's bad-input table says what happens then)
PROBLEMS = {
    "cloud_missing_xyz": "PointCloud2 without x/y/z fields",
    "cloud_bad_layout": "point_step/row_step inconsistent with the data, fields outside point_step, or x/y/z/intensity"
                        " overlapping or declared twice",
    "cloud_big_endian": "big-endian PointCloud2",
    "cloud_bad_field_type": "x/y/z not one float32 each",
    "cloud_too_large": "more points than max_points",
    "cloud_missing_field": "a named field (e.g. a ground-truth label) is missing",
    "cloud_duplicate_stamp": "the same stamp as the cloud accepted before it (a republished message)",
    "image_bad_encoding": "unsupported image encoding or compressed format",
    "image_bad_layout": "image data length, step or size inconsistent",
    "image_corrupt": "compressed image that cannot be decoded",
    "image_size_mismatch": "image size (a compressed image's header) differs from its CameraInfo",
    "camera_info_missing": "no CameraInfo received yet",
    "camera_info_bad_size": "CameraInfo with a zero width or height",
    "camera_info_bad_k": "CameraInfo K not [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with finite values, fx > 0, fy > 0",
    "camera_info_bad_p": "rectified camera: CameraInfo P not [[fx, s, cx, Tx], [0, fy, cy, Ty], [0, 0, 1, 0]]"
                         " with fx, fy > 0, or R not a rotation",
    "camera_info_bad_distortion": "unknown distortion model, wrong coefficient count, or a NaN/inf coefficient",
    "camera_info_unsupported": "binning or region of interest",
    "sync_miss": "no image within sync.max_offset_s of the cloud",
    "tf_missing": "no TF path between the cloud's and the camera's frames (a frame never published, or two trees)",
    "tf_late": "the cloud or image is newer than the newest /tf sample on the path (TF arrives late)",
    "tf_old": "the cloud or image is older than the oldest /tf sample kept (tf.cache_s)",
    "tf_loop": "TF's parent links form a loop",
    "tf_bad": "a /tf or /tf_static transform with a non-finite value, a zero quaternion or a bad frame name",
    "cloud_frame_mismatch": "extrinsics from the calibration file, but the cloud's frame is not its lidar_frame",
}


class InputError(ValueError):
    """A message that cannot be used. `kind`, a PROBLEMS key, names the diagnostics counter it increments;
    an unknown kind is a programming error and raises at once, so every reason reaches a counter."""

    default_kind: str | None = None

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        self.kind = kind or self.default_kind
        if self.kind not in PROBLEMS:
            raise ValueError(f"unknown problem kind {self.kind!r} for: {reason}")


class CloudError(InputError):
    default_kind = "cloud_bad_layout"


class ImageError(InputError):
    pass


class CameraInfoError(InputError):
    pass


@dataclass
class Problem:
    """One input that could not be used: a whole frame (camera None) or one camera of a frame."""

    kind: str  # a PROBLEMS key, or a source-specific kind (e.g. ground_truth_missing in a bag)
    detail: str
    camera: str | None = None
    frame: int | None = None  # the frame's position in its source
    stamp_ns: int | None = None


class ProblemLog:
    """Counts problems by kind (frames) and by 'camera: kind' (cameras), keeping the first examples."""

    def __init__(self, max_examples: int = 50):
        self.max_examples = max_examples
        self.frames: Counter = Counter()
        self.cameras: Counter = Counter()
        self.examples: list[Problem] = []

    def add(self, problem: Problem) -> None:
        if problem.camera is None:
            self.frames[problem.kind] += 1
        else:
            self.cameras[f"{problem.camera}: {problem.kind}"] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(problem)

    def extend(self, frames: Mapping[str, int], cameras: Mapping[str, int], examples: Iterable[Problem]) -> None:
        """Counts and examples another log kept (a shard's, a wrapped source's); the examples stay capped."""
        self.frames.update(frames)
        self.cameras.update(cameras)
        self.examples += list(examples)[:max(self.max_examples - len(self.examples), 0)]

    @property
    def frames_skipped(self) -> int:
        return int(sum(self.frames.values()))
