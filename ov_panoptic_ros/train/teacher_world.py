"""The teacher's training images: camera views of synthetic-world drives, with their per-pixel labels.

Every class of the world appears here, the novel ones included: the teacher plays CLIP, which has seen
everything in 2D; only the 3D network is kept from the novel labels. Views are rendered once, in memory
(about 0.6 MB a 480x320 view with its labels), and reused every epoch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.train.teacher_data import Sample


def world_views(seeds: Sequence[int], frames_per_seed: int, cameras: int, image_size: tuple[int, int],
                class_names: Sequence[str], log=print) -> list[Sample]:
    """`frames_per_seed` frames spread along each seed's drive, every camera's view: (rgb, labels, names).

    `class_names` name the world's classes in its label order (e.g. a preset's vocabulary entries)."""
    from ov_panoptic_ros.data.world.generator import World, WorldConfig

    names = tuple(class_names)
    samples = []
    for seed in seeds:
        world = World(seed, WorldConfig(cameras=cameras, image_size=tuple(image_size)))
        if len(names) != world.classes.n_classes:
            raise ValueError(f"{len(names)} class names for the world's {world.classes.n_classes} classes")
        for index in np.linspace(0, world.num_frames - 1, frames_per_seed).round().astype(int):
            for view in world.views(int(index)):
                labels = np.where(view.labels == UNLABELED, -1, view.labels.astype(np.int16))  # sky: ignored
                samples.append(Sample(view.image, labels, names))
        log(f"rendered world seed {seed}: {len(samples)} views so far")
    return samples
