"""Shape families of pedestrians, barriers, traffic cones and vegetation (same frame as vehicles.py)."""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.parts import PartsBuilder, Shape


def pedestrian(rng: np.random.Generator, pal: Palette, walking: bool) -> Shape:
    """Legs, torso, arms and head, in a walking stride or standing; adults and children; some carry a bag."""
    H = rng.uniform(1.0, 1.3) if rng.random() < 0.1 else rng.uniform(1.55, 1.95)
    s = H / 1.75
    hip, shoulder = 0.48 * H, 0.8 * H
    stride = rng.uniform(0.15, 0.3) * s if walking else rng.uniform(0.0, 0.05)
    legs, shirt = pal.trousers(), pal.shirt()
    b = PartsBuilder()
    for side, step in ((-1, 1), (1, -1)):
        b.rod((0, side * 0.09 * s, hip), (step * stride, side * 0.11 * s, 0.04), 0.07 * s, legs)
    b.ellipsoid((0, 0, (hip + shoulder) / 2 + 0.02 * H), (0.26 * s, 0.4 * s, shoulder - hip + 0.12 * H), shirt)
    for side, swing in ((-1, -1), (1, 1)):
        b.rod((0, side * 0.21 * s, shoulder - 0.03 * H), (swing * stride * 0.8, side * 0.25 * s, hip - 0.02 * H),
              0.045 * s, shirt)
    head = 0.12 * s
    b.ellipsoid((0.01, 0, H - 1.05 * head), (1.7 * head, 1.5 * head, 2.1 * head), pal.skin_and_hair(head))
    if rng.random() < 0.3:
        b.box((-0.18 * s, 0, shoulder - 0.2 * s), (0.14 * s, 0.3 * s, 0.38 * s), pal.trousers())
    return b.shape(0.5 * s + 2 * stride, 0.6 * s)


def barrier(rng: np.random.Generator, pal: Palette) -> Shape:
    """Long low blocks: concrete jersey barriers, plastic water barriers, or a striped fence barrier on feet."""
    L = rng.uniform(1.2, 3.0)
    paint = pal.barrier()
    b = PartsBuilder()
    kind = rng.integers(3)
    if kind == 0:
        b.box((0, 0, 0.15), (L, 0.6, 0.3), paint)
        b.box((0, 0, 0.55), (L, 0.25, 0.5), paint)
    elif kind == 1:
        b.box((0, 0, 0.4), (L, 0.45, 0.8), paint)
    else:
        for x in (-L / 2 + 0.1, L / 2 - 0.1):
            b.box((x, 0, 0.03), (0.1, 0.6, 0.06), pal.dark())
            b.box((x, 0, 0.55), (0.06, 0.06, 1.0), pal.dark())
        for z in (0.5, 0.9):
            b.box((0, 0, z), (L - 0.2, 0.04, 0.2), paint)
    return b.shape(L, 0.6)


def traffic_cone(rng: np.random.Generator, pal: Palette) -> Shape:
    """An orange cone with a retroreflective white band on a square base."""
    h, r = rng.uniform(0.45, 0.9), rng.uniform(0.13, 0.18)
    base = rng.uniform(0.36, 0.45)
    b = PartsBuilder()
    b.box((0, 0, 0.02), (base, base, 0.04), pal.dark())
    b.cone((0, 0, 0.04 + h / 2), r, 0.025, h, pal.cone(0.05 * h, 0.22 * h))
    return b.shape(base, base)


def tree(rng: np.random.Generator, pal: Palette, street: bool = False) -> Shape:
    """A trunk under a crown: a cluster of leafy ellipsoids (deciduous) or a cone (conifer). A street tree
    is pruned: a tall trunk and a narrow crown, clear of passing trucks."""
    trunk_h, trunk_r = rng.uniform(3.2, 4.2) if street else rng.uniform(1.6, 3.5), rng.uniform(0.1, 0.3)
    b = PartsBuilder()
    b.cylinder((0, 0, trunk_h / 2), trunk_r, trunk_h, pal.bark())
    leaves = pal.leaves()
    if not street and rng.random() < 0.25:
        h, radius = rng.uniform(4.0, 9.0), rng.uniform(1.3, 2.5)
        b.cone((0, 0, trunk_h * 0.6 + h / 2), radius, 0.05, h, leaves)
        return b.shape(2 * radius, 2 * radius)
    crown = rng.uniform(2.5, 3.6) if street else rng.uniform(2.5, 6.0)
    for _ in range(int(rng.integers(1, 5))):
        size = crown * rng.uniform(0.6, 1.0, 3) * (1, 1, rng.uniform(0.7, 1.1))
        offset = rng.normal(0, 0.18 * crown, 3) * (1, 1, 0.5)
        height = max(trunk_h + 0.4 * size[2] + offset[2], 2.2 + size[2] / 2)  # people walk under the leaves
        b.ellipsoid((offset[0], offset[1], height), size, leaves)
    return b.shape(1.3 * crown, 1.3 * crown)


def bush(rng: np.random.Generator, pal: Palette) -> Shape:
    """One to three overlapping low leafy blobs."""
    b = PartsBuilder()
    leaves = pal.leaves()
    extent = 0.0
    for _ in range(int(rng.integers(1, 4))):
        size = rng.uniform(0.7, 2.0, 3) * (1, 1, 0.7)
        x = rng.normal(0, 0.4)
        b.ellipsoid((x, rng.normal(0, 0.3), 0.35 * size[2]), size, leaves)
        extent = max(extent, abs(x) + size[0] / 2)
    return b.shape(2 * extent, 2.0)


def hedge(length: float, rng: np.random.Generator, pal: Palette) -> Shape:
    width, height = rng.uniform(0.7, 1.3), rng.uniform(0.8, 1.9)
    return PartsBuilder().box((0, 0, height / 2), (length, width, height), pal.leaves()).shape(length, width)
