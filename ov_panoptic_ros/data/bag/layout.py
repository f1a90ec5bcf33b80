"""Topic names of the evaluation layout, resolved against one bag, and the ground-truth class list JSON."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ov_panoptic_ros.core.calibration import Calibration
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.data.bag.errors import BagError

CALIBRATION_ATTACHMENT = "calibration.yaml"
GT_CLASSES_FORMAT = "ov_panoptic/gt_classes"


@dataclass
class BagTopics:
    """Topic names of the layout. `{camera}` stands for each camera name: those the calibration names, or,
    in a bag without one, those found by matching `image` against the bag's topics (`cameras_in`)."""

    lidar: str = "/lidar/points"
    image: str = "/{camera}/image_raw"  # a CompressedImage may sit here or at this + "/compressed"
    camera_info: str = "/{camera}/camera_info"
    calibration: str = "/ov_panoptic/calibration"
    ground_truth: str = "/ov_panoptic/ground_truth"
    gt_classes: str = "/ov_panoptic/gt_classes"
    tf: str = "/tf"
    tf_static: str = "/tf_static"

    def image_topic(self, camera: str, compressed: bool = False) -> str:
        topic = self.image.format(camera=camera)
        return topic + "/compressed" if compressed and not topic.endswith("/compressed") else topic

    def info_topic(self, camera: str) -> str:
        return self.camera_info.format(camera=camera)

    def cameras_in(self, topic_types: dict[str, str]) -> list[str]:
        """Camera names, sorted, of the image topics (raw or compressed) that match the `image` pattern: how a
        bag recorded by other tools, with no calibration to name its cameras, says which it has. A name is one
        topic segment (`/sensing/camera/{camera}/image_rect_color` finds `front` in
        `/sensing/camera/front/image_rect_color`); a pattern without `{camera}` finds none."""
        if "{camera}" not in self.image:
            return []
        parts = [re.escape(part) for part in self.image.split("{camera}")]
        names = ["(?P<camera>[^/]+)"] + ["(?P=camera)"] * (len(parts) - 2)  # a second {camera}: the same name
        body = parts[0] + "".join(name + part for name, part in zip(names, parts[1:]))
        pattern = re.compile(body + "(?:/compressed)?")
        found = {m["camera"] for topic, kind in topic_types.items()
                 if kind.endswith(("/Image", "/CompressedImage")) and (m := pattern.fullmatch(topic))}
        return sorted(found)

    @classmethod
    def from_mapping(cls, data: dict | None) -> BagTopics:
        """From a YAML/CLI mapping; unknown keys are errors so a typo does not silently use a default."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise BagError(f"unknown topic key(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: str(v) for k, v in data.items()})


def rectified_by_name(image_topic: str) -> bool:
    """image_proc's naming: `image_rect` and `image_rect_color` (and their /compressed) carry rectified images,
    which are projected with CameraInfo's P and R and no distortion; any other name is a raw image."""
    name = image_topic.removesuffix("/compressed").rpartition("/")[2]
    return name.startswith("image_rect")


@dataclass
class CameraTopics:
    name: str
    image_topic: str
    compressed: bool
    info_topic: str
    rectified: bool = False


@dataclass
class BagLayout:
    """What the evaluation needs, resolved against one bag. `calibration` is None in a bag without one whose
    cameras were found by topic pattern (their extrinsics come from the bag's TF)."""

    lidar_topic: str
    cameras: list[CameraTopics]
    calibration: Calibration | None
    calibration_text: str | None
    calibration_source: str
    ground_truth_topic: str | None = None
    classes: ClassInfo | None = None

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]


def gt_classes_to_json(classes: ClassInfo) -> str:
    """The `/ov_panoptic/gt_classes` payload: one entry per ground-truth label index."""
    ignored = set(classes.ignore)
    entries = [
        {"name": n, "thing": t, "novel": nv, "ignore": i in ignored}
        for i, (n, t, nv) in enumerate(zip(classes.names, classes.is_thing, classes.is_novel))
    ]
    return json.dumps({"format": GT_CLASSES_FORMAT, "version": 1, "classes": entries})


def gt_classes_from_json(text: str, source: str = "gt_classes") -> ClassInfo:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BagError(f"{source}: not valid JSON: {e}") from e
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BagError(f"{source}: expected a JSON object with a non-empty 'classes' list")
    names, thing, novel, ignore = [], [], [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise BagError(f"{source}: class {i} needs a non-empty string 'name', got {entry!r}")
        names.append(entry["name"].strip())
        thing.append(bool(entry.get("thing", False)))
        novel.append(bool(entry.get("novel", False)))
        if entry.get("ignore", False):
            ignore.append(i)
    try:
        return ClassInfo(tuple(names), tuple(thing), tuple(novel), tuple(ignore))
    except ValueError as e:
        raise BagError(f"{source}: {e}") from e
