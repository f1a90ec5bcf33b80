"""The world's 16 classes: the nuScenes lidarseg names and order, so the nuScenes base/novel split applies.

A label is an index into `CLASSES` (the lidarseg challenge's classes 1..16, shifted to 0..15); pixels of the
sky, which no LiDAR point can have, carry core.frame.UNLABELED.
"""
from __future__ import annotations

from dataclasses import dataclass

from ov_panoptic_ros.core.frame import Vocabulary

CLASSES = ("barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian", "traffic_cone",
           "trailer", "truck", "driveable_surface", "other_flat", "sidewalk", "terrain", "manmade", "vegetation")
STUFF = ("driveable_surface", "other_flat", "sidewalk", "terrain", "manmade", "vegetation")
NOVEL = ("bus", "motorcycle", "pedestrian", "vegetation")  # the open-vocabulary split of the paper


@dataclass(frozen=True)
class ClassInfo:
    index: int
    name: str
    thing: bool  # things have instances; stuff has instance id 0
    novel: bool  # never supervised in 3D training


CLASS_INFO = tuple(ClassInfo(i, n, n not in STUFF, n in NOVEL) for i, n in enumerate(CLASSES))


def label_of(name: str) -> int:
    return CLASSES.index(name)


def vocabulary() -> Vocabulary:
    """All 16 classes as a pipeline vocabulary whose labels are the world's labels."""
    return Vocabulary(CLASSES, STUFF)
