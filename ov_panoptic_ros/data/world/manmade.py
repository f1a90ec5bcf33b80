"""Man-made structures (all of class manmade): buildings, walls, fences, poles, signs, lights, furniture.

Same frame as vehicles.py; a building's x runs along the street, its y away from it.
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.parts import ALONG_X, PartsBuilder, Shape


def building(frontage: float, depth: float, rng: np.random.Generator, pal: Palette) -> Shape:
    """A block with a brick or windowed facade, a roof slab, sometimes a set-back upper storey."""
    height = rng.choice([rng.uniform(3.5, 8.0), rng.uniform(8.0, 25.0)])
    b = PartsBuilder()
    wall = pal.wall()
    b.box((0, 0, height / 2), (frontage, depth, height), wall)
    b.box((0, 0, height + 0.2), (frontage + 0.3, depth + 0.3, 0.4), pal.roof())
    if height > 8 and rng.random() < 0.4:
        upper = rng.uniform(2.5, 7.0)
        b.box((0, depth * 0.1, height + 0.4 + upper / 2), (0.8 * frontage, 0.7 * depth, upper), wall)
    if rng.random() < 0.35:  # a shop awning over the pavement
        b.box((0, -depth / 2 - 0.7, 2.8), (0.8 * frontage, 1.4, 0.12), pal.sign())
    return b.shape(frontage, depth)


def wall(length: float, rng: np.random.Generator, pal: Palette) -> Shape:
    """A garden wall or a wooden fence along x."""
    b = PartsBuilder()
    if rng.random() < 0.5:
        h = rng.uniform(0.6, 2.2)
        b.box((0, 0, h / 2), (length, 0.3, h), pal.concrete() if rng.random() < 0.5 else pal.wall())
    else:
        h = rng.uniform(1.2, 2.0)
        b.box((0, 0, h / 2), (length, 0.06, h), pal.fence())
    return b.shape(length, 0.3)


def sign_post(rng: np.random.Generator, pal: Palette) -> Shape:
    """A pole with a square or round sign plate facing along x."""
    h = rng.uniform(2.3, 3.2)
    b = PartsBuilder()
    b.cylinder((0, 0, h / 2), 0.04, h, pal.metal())
    if rng.random() < 0.5:
        b.box((0.06, 0, h - 0.35), (0.04, 0.65, 0.65), pal.sign())
    else:
        b.cylinder((0.06, 0, h - 0.35), 0.33, 0.04, pal.sign(), ALONG_X)
    return b.shape(0.7, 0.7)


def traffic_light(arm: float, rng: np.random.Generator, pal: Palette) -> Shape:
    """A pole with an arm reaching over the road (along -y) and signal heads, high enough for a double-decker."""
    h = rng.uniform(5.6, 6.5)
    b = PartsBuilder()
    metal, dark = pal.metal(), pal.dark()
    b.cylinder((0, 0, h / 2), 0.09, h, metal)
    b.rod((0, 0, h - 0.2), (0, -arm, h - 0.2), 0.06, metal)
    for y in (0.0, -arm):
        b.box((0.1, y, h - 0.9 if y == 0 else h - 0.7), (0.3, 0.35, 0.95), dark)
    return b.shape(0.5, 0.5)


def street_lamp(rng: np.random.Generator, pal: Palette) -> Shape:
    h = rng.uniform(6.0, 9.0)
    b = PartsBuilder()
    b.cylinder((0, 0, h / 2), 0.09, h, pal.metal())
    b.rod((0, 0, h - 0.1), (0, -1.5, h - 0.1), 0.05, pal.metal())
    b.box((0, -1.5, h - 0.2), (0.3, 0.6, 0.15), pal.lamp(rear=False))
    return b.shape(0.4, 0.4)


def bench(rng: np.random.Generator, pal: Palette) -> Shape:
    L = rng.uniform(1.5, 2.2)
    b = PartsBuilder()
    seat = pal.fence()
    b.box((0, 0, 0.45), (L, 0.45, 0.06), seat)
    b.box((0, 0.2, 0.7), (L, 0.05, 0.4), seat)
    for x in (-L / 2 + 0.1, L / 2 - 0.1):
        b.box((x, 0, 0.22), (0.06, 0.4, 0.44), pal.metal())
    return b.shape(L, 0.5)


def bin_or_bollard(rng: np.random.Generator, pal: Palette) -> Shape:
    b = PartsBuilder()
    if rng.random() < 0.5:
        r, h = rng.uniform(0.25, 0.35), rng.uniform(0.8, 1.1)
        b.cylinder((0, 0, h / 2), r, h, pal.paint((40, 70, 50) if rng.random() < 0.5 else (60, 60, 64)))
    else:
        r, h = 0.1, rng.uniform(0.7, 1.0)
        b.cylinder((0, 0, h / 2), r, h, pal.metal())
    return b.shape(2 * r, 2 * r)


def bus_shelter(rng: np.random.Generator, pal: Palette) -> Shape:
    L = rng.uniform(3.0, 5.0)
    b = PartsBuilder()
    frame = pal.metal()
    b.box((0, 0, 2.5), (L, 1.6, 0.1), pal.concrete())
    b.box((0, 0.75, 1.3), (L, 0.05, 2.3), pal.cabin((150, 150, 150), -1.0, 1.0))
    for x in (-L / 2, L / 2):
        b.box((x, 0, 1.25), (0.06, 1.5, 2.5), frame)
    return b.shape(L, 1.6)


def kiosk(rng: np.random.Generator, pal: Palette) -> Shape:
    L, W = rng.uniform(2.0, 4.0), rng.uniform(1.8, 3.0)
    b = PartsBuilder()
    b.box((0, 0, 1.3), (L, W, 2.6), pal.wall())
    b.box((0, 0, 2.7), (L + 0.6, W + 0.6, 0.2), pal.sign())
    return b.shape(L + 0.6, W + 0.6)
