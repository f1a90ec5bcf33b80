"""Which scenes a nuScenes source reads: the official scene-level splits and/or scene names.

The split lists are the devkit's (utils/splits.py), shipped as splits.json (make_splits.py regenerates it).
A split belongs to a version as in the devkit's create_splits_logs: train / val (and train_detect /
train_track) to v1.0-trainval, mini_train / mini_val to v1.0-mini, test to v1.0-test. Matching by name alone
would not do: mini_train holds two scenes of the official val split.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ov_panoptic_ros.data.nuscenes.errors import NuScenesError

SPLITS_FILE = Path(__file__).resolve().parent / "splits.json"
VERSION_SPLITS = {  # version suffix -> the splits of that version
    "trainval": ("train", "val", "train_detect", "train_track"),
    "mini": ("mini_train", "mini_val"),
    "test": ("test",),
}


@lru_cache(maxsize=1)
def official_splits() -> dict[str, tuple[str, ...]]:
    """split name -> its scene names, from splits.json."""
    data = json.loads(SPLITS_FILE.read_text())
    return {name: tuple(scenes) for name, scenes in data["splits"].items()}


def splits_of(version: str) -> tuple[str, ...]:
    """The splits a version has (none for a version the devkit does not know)."""
    return next((s for suffix, s in VERSION_SPLITS.items() if version.endswith(suffix)), ())


def select_scenes(names: Sequence[str], version: str, split: str | None = None,
                  scenes: Sequence[str] | None = None) -> list[str]:
    """The scene names to read, in table order: the split's (when given), then only `scenes` (when given)."""
    chosen = list(names)
    if split is not None:
        if split not in official_splits():
            raise NuScenesError(f"unknown nuScenes split {split!r} (splits: {', '.join(sorted(official_splits()))})")
        if split not in splits_of(version):
            raise NuScenesError(f"nuScenes split {split!r} is not a split of {version} (its splits: "
                                f"{', '.join(splits_of(version)) or 'none'}); choose the version it belongs to")
        members = set(official_splits()[split])
        chosen = [n for n in chosen if n in members]
        if not chosen:
            raise NuScenesError(f"nuScenes split {split!r}: none of its scenes is in this {version} scene.json")
    if scenes is not None:
        if isinstance(scenes, str):  # 'scene-0061,scene-0103', as a command line gives them
            scenes = [s.strip() for s in scenes.split(",") if s.strip()]
        unknown = [s for s in scenes if s not in names]
        if unknown:
            raise NuScenesError(f"nuScenes scene(s) {unknown} not in {version}'s scene.json (scenes: "
                                f"{', '.join(list(names)[:12])}{', ...' if len(names) > 12 else ''})")
        outside = [s for s in scenes if s not in chosen]
        if outside:
            raise NuScenesError(f"nuScenes scene(s) {outside} are not in split {split!r}")
        wanted = set(scenes)
        chosen = [n for n in chosen if n in wanted]
    return chosen
