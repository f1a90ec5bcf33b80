"""The world's 16 classes: the nuScenes lidarseg names and order, so the nuScenes base/novel split applies.

A label is an index into `CLASSES`: the devkit's classes 1..16 without its ignored `noise` class 0, which a
synthetic point never is. Pixels of the sky, which no LiDAR point can have, carry core.frame.UNLABELED.
"""
from __future__ import annotations

from ov_panoptic_ros.core.classes import NUSCENES_NAMES, NUSCENES_NOVEL, ClassInfo
from ov_panoptic_ros.core.frame import Vocabulary

CLASSES = NUSCENES_NAMES[1:]
THINGS, STUFF = CLASSES[:10], CLASSES[10:]
NOVEL = NUSCENES_NOVEL  # the open-vocabulary split of the paper
WORLD_CLASSES = ClassInfo.from_names(CLASSES, things=THINGS, novel=NOVEL)  # what the labels index


def label_of(name: str) -> int:
    return CLASSES.index(name)


def vocabulary() -> Vocabulary:
    """All 16 classes as a pipeline vocabulary whose labels are the world's labels."""
    return Vocabulary(CLASSES, STUFF)
