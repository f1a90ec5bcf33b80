"""Panoptic nuScenes labels -> GroundTruth over the 16 challenge classes (core.classes.nuscenes_classes).

A label file (panoptic/<version>/<token>_panoptic.npz, key 'data') holds one uint16 per point:
general class index * 1000 + instance id, the general index being category.json's `index`. The 32 general
classes fold into the 16 challenge classes plus ignore exactly as the devkit's LidarsegClassMapper
(eval/lidarseg/utils.py, which PanopticClassMapper and the panoptic evaluation use) folds them, by name, so a
category.json with other indices still maps right. Ignored points get the class list's ignore index 0
("noise", the devkit's "ignore").

A thing point's instance id is its whole panoptic label: instance ids count per scene over all general classes,
so the label is unique in its frame even where two general classes fold into one challenge class (adult and
child -> pedestrian), and it is what the devkit scores as the ground-truth instance. Stuff and ignored points
get 0.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.data.nuscenes.errors import NuScenesError
from ov_panoptic_ros.data.source import FrameProblem, GroundTruth

IGNORE = None  # a general class the challenge does not score
GENERAL_TO_CHALLENGE = {
    "noise": IGNORE, "animal": IGNORE, "vehicle.ego": IGNORE, "static.other": IGNORE,
    "human.pedestrian.adult": "pedestrian", "human.pedestrian.child": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian", "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.wheelchair": IGNORE, "human.pedestrian.stroller": IGNORE,
    "human.pedestrian.personal_mobility": IGNORE,
    "vehicle.car": "car", "vehicle.motorcycle": "motorcycle", "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus", "vehicle.bus.rigid": "bus", "vehicle.truck": "truck",
    "vehicle.construction": "construction_vehicle", "vehicle.trailer": "trailer",
    "vehicle.emergency.ambulance": IGNORE, "vehicle.emergency.police": IGNORE,
    "movable_object.barrier": "barrier", "movable_object.trafficcone": "traffic_cone",
    "movable_object.pushable_pullable": IGNORE, "movable_object.debris": IGNORE,
    "static_object.bicycle_rack": IGNORE,
    "flat.driveable_surface": "driveable_surface", "flat.sidewalk": "sidewalk", "flat.terrain": "terrain",
    "flat.other": "other_flat", "static.manmade": "manmade", "static.vegetation": "vegetation",
}
UNKNOWN = np.iinfo(np.uint16).max  # a general index category.json does not define
MAX_GENERAL = np.iinfo(np.uint16).max // 1000  # the largest general index a uint16 label can hold


def label_table(categories: list[dict], classes: ClassInfo, path: Path) -> np.ndarray:
    """(MAX_GENERAL + 1,) uint16: general class index -> challenge class index (UNKNOWN where undefined)."""
    lut = np.full(MAX_GENERAL + 1, UNKNOWN, dtype=np.uint16)
    for record in categories:
        if not isinstance(record.get("index"), int) or not 0 <= record["index"] <= MAX_GENERAL:
            raise NuScenesError(f"{path}: category {record.get('name')!r} has no usable `index` (use the "
                                "category.json that comes with nuScenes-lidarseg / panoptic)")
        if record.get("name") not in GENERAL_TO_CHALLENGE:
            raise NuScenesError(f"{path}: category {record.get('name')!r} is none of the 32 general classes "
                                "of nuScenes-lidarseg, so it cannot be mapped to the challenge classes")
        target = GENERAL_TO_CHALLENGE[record["name"]]
        lut[record["index"]] = classes.ignore[0] if target is IGNORE else classes.index(target)
    return lut


def read_panoptic(path: Path) -> np.ndarray:
    """The (N,) panoptic labels of one file; FrameProblem when it is missing or not a label file."""
    if not path.is_file():
        raise FrameProblem("ground_truth_missing", f"panoptic label file {path} is missing")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = npz["data"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise FrameProblem("ground_truth_bad_layout", f"panoptic label file {path}: {e}") from None
    if data.ndim != 1 or data.dtype.kind not in "ui":
        raise FrameProblem("ground_truth_bad_layout",
                           f"panoptic label file {path}: 'data' is {data.dtype} {data.shape}, not (N,) integers")
    return data


def panoptic_truth(panoptic: np.ndarray, lut: np.ndarray, classes: ClassInfo, path: Path) -> GroundTruth:
    """GroundTruth from panoptic labels (see the module docstring)."""
    if panoptic.size and (panoptic.min() < 0 or panoptic.max() > np.iinfo(np.uint16).max):
        raise FrameProblem("ground_truth_bad_layout", f"panoptic label file {path}: labels outside uint16")
    panoptic = panoptic.astype(np.uint32)
    labels = lut[panoptic // 1000]
    if (labels == UNKNOWN).any():
        unknown = np.unique(panoptic[labels == UNKNOWN] // 1000)
        raise FrameProblem("ground_truth_unknown_class",
                           f"panoptic label file {path}: general class index(es) {unknown[:10].tolist()} are not "
                           "in category.json")
    thing = np.asarray(classes.is_thing, dtype=bool)[labels]
    instance_ids = np.where(thing & (panoptic % 1000 > 0), panoptic, 0).astype(np.uint32)
    return GroundTruth(labels, instance_ids)
