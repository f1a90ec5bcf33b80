"""SemanticKITTI .label files -> ground truth in the 19 learning classes (+ unlabeled, ignored).

A .label file holds one uint32 per point: the raw semantic id in the lower 16 bits, the instance id in the
upper 16. The raw ids (28 classes, moving objects apart) are folded into the 19 classes every SemanticKITTI
benchmark scores, as semantic-kitti-api's `learning_map` (config/semantic-kitti.yaml) folds them: moving
objects join their static class, bus / on-rails join other-vehicle, lane-marking joins road, and outlier,
other-structure and other-object become unlabeled. A raw id outside that table is unlabeled too (the api's
lookup table does the same), so a newer label file never crashes a run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.classes import SEMANTICKITTI_NAMES, ClassInfo
from ov_panoptic_ros.data.source import GroundTruth

LEARNING_MAP = {  # raw semantic id -> learning class name (core.classes.SEMANTICKITTI_NAMES)
    0: "unlabeled", 1: "unlabeled",  # outlier
    10: "car", 11: "bicycle", 13: "other-vehicle", 15: "motorcycle", 16: "other-vehicle", 18: "truck",
    20: "other-vehicle", 30: "person", 31: "bicyclist", 32: "motorcyclist",
    40: "road", 44: "parking", 48: "sidewalk", 49: "other-ground", 50: "building", 51: "fence",
    52: "unlabeled", 60: "road", 70: "vegetation", 71: "trunk", 72: "terrain", 80: "pole", 81: "traffic-sign",
    99: "unlabeled",
    252: "car", 253: "bicyclist", 254: "person", 255: "motorcyclist", 256: "other-vehicle",
    257: "other-vehicle", 258: "truck", 259: "other-vehicle",
}
INSTANCE_STRIDE = 1 << 16  # instance id = learning class * stride + the raw instance id


def learning_lut() -> np.ndarray:
    """(65536,) uint16: raw semantic id -> learning class index; every id not in LEARNING_MAP -> 0 (unlabeled)."""
    lut = np.zeros(1 << 16, dtype=np.uint16)
    for raw, name in LEARNING_MAP.items():
        lut[raw] = SEMANTICKITTI_NAMES.index(name)
    return lut


_LUT = learning_lut()


def read_label_file(path: Path) -> np.ndarray:
    """The raw uint32 words of a .label file; a length that is not whole words is read as one word short, so the
    point-count check catches it (a truncated file is a bad frame, not a bad dataset)."""
    data = path.read_bytes()
    return np.frombuffer(data[: len(data) - len(data) % 4], dtype="<u4")


def decode_labels(raw: np.ndarray, classes: ClassInfo) -> GroundTruth:
    """Raw uint32 words -> GroundTruth indexing `classes` (SEMANTICKITTI_NAMES order).

    Instance ids are `class * 65536 + raw instance id` on thing points and 0 on stuff and unlabeled points: unique
    per frame even where two classes reuse a raw instance id, stable along the sequence (the raw id is, too), and
    never 0 for a thing point, whose raw instance id is 0 when the annotators gave it none."""
    raw = np.asarray(raw, dtype=np.uint32)
    labels = _LUT[raw & 0xFFFF]
    thing = np.asarray(classes.is_thing, dtype=bool)[labels]
    instance = (labels.astype(np.uint32) * np.uint32(INSTANCE_STRIDE)) | (raw >> np.uint32(16))
    return GroundTruth(labels, np.where(thing, instance, np.uint32(0)).astype(np.uint32))
