"""Vehicle shape families: each class its own silhouette, sizes drawn per object.

Frames: x forward, y left, z up, origin on the ground under the footprint's centre. Sizes follow real
vehicles (metres), so the LiDAR sees the proportions a network would meet in nuScenes.
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.parts import ALONG_X, AXLE, PartsBuilder, Shape


def _wheels(b: PartsBuilder, pal: Palette, xs, half_track: float, radius: float, width: float) -> None:
    tyre = pal.tyre(0.6 * radius)
    for x in xs:
        for side in (-1, 1):
            b.cylinder((x, side * half_track, radius), radius, width, tyre, AXLE)


def car(rng: np.random.Generator, pal: Palette) -> Shape:
    """Body + cabin with a window band + four wheels + lamps: sedans, hatchbacks, SUVs."""
    L, W = rng.uniform(3.8, 5.0), rng.uniform(1.7, 2.0)
    H, r = rng.uniform(1.4, 1.8), rng.uniform(0.3, 0.37)
    bottom, body_h = 0.25, rng.uniform(0.5, 0.62) * H - 0.25
    top, cabin_len = bottom + body_h, rng.uniform(0.45, 0.62) * L
    cabin_h = H - top
    paint = pal.car_paint()
    b = PartsBuilder()
    b.box((0, 0, bottom + body_h / 2), (L, W, body_h), pal.paint(paint))
    b.box((-0.06 * L, 0, top + cabin_h / 2), (cabin_len, 0.9 * W, cabin_h),
          pal.cabin(paint, -cabin_h / 2 + 0.06, cabin_h / 2 - 0.1))
    _wheels(b, pal, (L / 2 - 0.8, -L / 2 + 0.8), W / 2 - 0.13, r, 0.22)
    for end in (1, -1):
        b.box((end * (L / 2 + 0.01), 0, top - 0.15), (0.04, 0.75 * W, 0.12), pal.lamp(rear=end < 0))
    return b.shape(L, W)


def truck(rng: np.random.Generator, pal: Palette) -> Shape:
    """Cab + a separate cargo body (box, tank or open tipper) on a chassis, 2-3 axles."""
    cab_len, W, cab_h = rng.uniform(1.9, 2.4), rng.uniform(2.35, 2.55), rng.uniform(2.7, 3.2)
    body_len = rng.uniform(4.0, 8.0)
    L = cab_len + 0.3 + body_len
    front, r = L / 2, 0.5
    b = PartsBuilder()
    b.box((front - cab_len / 2, 0, 0.55 + (cab_h - 0.55) / 2), (cab_len, W, cab_h - 0.55),
          pal.cabin(pal.truck_cab(), 0.1 * cab_h, (cab_h - 0.55) / 2 - 0.15))
    b.box((0, 0, 0.75), (L - 0.2, 0.9 * W, 0.4), pal.dark())
    cx = front - cab_len - 0.3 - body_len / 2
    kind = rng.choice(["box", "box", "tank", "tipper"])
    if kind == "box":
        h = rng.uniform(2.6, 3.0)
        b.box((cx, 0, 0.95 + h / 2), (body_len, W, h), pal.cargo())
    elif kind == "tank":
        b.cylinder((cx, 0, 1.0 + W / 2), W / 2, body_len, pal.metal(), ALONG_X)
    else:
        paint = pal.paint(pal.truck_cab())
        b.box((cx, 0, 1.0), (body_len, W, 0.12), paint)
        for side in (-1, 1):
            b.box((cx, side * (W / 2 - 0.05), 1.6), (body_len, 0.1, 1.2), paint)
        b.box((cx - body_len / 2 + 0.05, 0, 1.6), (0.1, W, 1.2), paint)
        b.box((cx + body_len / 2 - 0.05, 0, 1.6), (0.1, W, 1.2), paint)
    axles = [front - cab_len / 2] + [-L / 2 + 1.2 + 1.35 * k for k in range(int(rng.integers(1, 3)))]
    _wheels(b, pal, axles, W / 2 - 0.25, r, 0.4)
    return b.shape(L, W)


def bus(rng: np.random.Generator, pal: Palette) -> Shape:
    """One long low box with a continuous window band; double-deckers have two bands."""
    L, W = rng.uniform(10.5, 12.8), 2.55
    double = rng.random() < 0.2
    H = rng.uniform(4.1, 4.4) if double else rng.uniform(2.9, 3.3)
    bottom = 0.32
    h = H - bottom
    b = PartsBuilder()
    if double:
        lower = pal.bus_body(-h / 2 + 1.0, -0.25)
        b.box((0, 0, bottom + h / 4), (L, W, h / 2), lower)
        b.box((0, 0, bottom + 3 * h / 4), (L, W, h / 2), pal.bus_body(-h / 4 + 0.35, h / 4 - 0.3))
    else:
        b.box((0, 0, bottom + h / 2), (L, W, h), pal.bus_body(-h / 2 + 1.0, h / 2 - 0.35))
    b.box((L / 2 + 0.01, 0, H - 0.3), (0.04, 0.8 * W, 0.25), pal.lamp(rear=False))
    b.box((-L / 4, 0, H + 0.15), (0.3 * L, 0.7 * W, 0.3), pal.metal())
    _wheels(b, pal, (L / 2 - 2.6, -L / 2 + 3.2), W / 2 - 0.3, 0.5, 0.35)
    return b.shape(L, W)


def trailer(rng: np.random.Generator, pal: Palette) -> Shape:
    """A raised body on rear axles and front landing legs, no cab: container, flatbed, tank or a small
    utility trailer with a drawbar."""
    kind = rng.choice(["container", "container", "flatbed", "tank", "small"])
    b = PartsBuilder()
    if kind == "small":
        L, W = rng.uniform(2.5, 4.0), rng.uniform(1.5, 2.0)
        b.box((0, 0, 0.75), (L, W, 0.7), pal.container())
        b.rod((L / 2, 0, 0.45), (L / 2 + 1.2, 0, 0.4), 0.05, pal.dark())
        _wheels(b, pal, (0,), W / 2 + 0.1, 0.3, 0.18)
        return b.shape(L + 1.2, W + 0.4)
    L, W = rng.uniform(6.0, 13.0), 2.5
    if kind == "container":
        h = rng.uniform(2.4, 2.9)
        b.box((0, 0, 1.15 + h / 2), (L, W, h), pal.container())
    elif kind == "tank":
        b.cylinder((0, 0, 1.15 + 1.1), 1.1, L, pal.metal(), ALONG_X)
    else:
        b.box((0, 0, 1.2), (L, W, 0.2), pal.dark())
        for k in range(int(rng.integers(0, 3))):
            b.box((-L / 2 + 1.5 + 2.4 * k, 0, 1.3 + 0.6), (2.0, 2.0, 1.2), pal.container())
    b.box((0, 0, 0.95), (L, 0.9, 0.3), pal.dark())
    for side in (-1, 1):
        b.box((L / 2 - 1.5, side * 0.9, 0.5), (0.15, 0.15, 0.9), pal.metal())
    _wheels(b, pal, [-L / 2 + 1.0 + 1.3 * k for k in range(int(rng.integers(2, 4)))], W / 2 - 0.25, 0.5, 0.35)
    return b.shape(L, W)


def construction_vehicle(rng: np.random.Generator, pal: Palette) -> Shape:
    """Machines with an arm or a bucket: excavator (tracks, turret, boom), wheel loader, road roller."""
    rgb, body, striped = pal.machine()
    kind = rng.choice(["excavator", "loader", "roller"])
    b = PartsBuilder()
    if kind == "excavator":
        L, W = rng.uniform(3.8, 4.8), rng.uniform(2.4, 2.9)
        for side in (-1, 1):
            b.box((0, side * (W / 2 - 0.3), 0.4), (L, 0.6, 0.8), pal.tracks())
        b.box((-0.2, 0, 1.4), (3.0, 0.9 * W, 1.1), striped)
        b.box((0.6, 0.5, 2.5), (1.1, 0.9, 1.2), pal.cabin(rgb, -0.3, 0.5))
        lift = rng.uniform(0.3, 1.0)
        elbow = (1.3 + 2.8 * np.cos(lift), -0.3, 1.9 + 2.8 * np.sin(lift))
        b.beam((0.9, -0.3, 1.9), elbow, 0.4, 0.5, body)
        hand = (elbow[0] + 1.2, -0.3, max(0.5, elbow[2] - 2.2))
        b.beam(elbow, hand, 0.3, 0.35, body)
        b.box((hand[0] + 0.3, -0.3, hand[2] - 0.2), (0.7, 1.0, 0.6), pal.dark())
        return b.shape(max(L, 2 * hand[0] + 1.0), W)
    if kind == "loader":
        L, W = rng.uniform(5.5, 7.0), rng.uniform(2.3, 2.7)
        b.box((-0.4, 0, 1.4), (L - 1.5, W - 0.2, 1.3), striped)
        b.box((-0.2, 0, 2.7), (1.4, 1.3, 1.3), pal.cabin(rgb, -0.3, 0.5))
        _wheels(b, pal, (L / 2 - 2.0, -L / 2 + 1.2), W / 2 - 0.35, 0.75, 0.6)
        b.beam((L / 2 - 2.2, 0, 1.6), (L / 2 - 0.6, 0, 1.0), 0.3, 0.3, body)
        b.box((L / 2 - 0.4, 0, 0.6), (0.8, W + 0.2, 0.8), pal.dark())
        return b.shape(L, W + 0.2)
    L, W = rng.uniform(3.5, 4.5), rng.uniform(1.7, 2.1)
    b.cylinder((L / 2 - 0.7, 0, 0.65), 0.65, W, pal.metal(), AXLE)
    b.box((-0.5, 0, 1.1), (L - 1.6, W - 0.1, 1.0), striped)
    b.box((-0.6, 0, 2.2), (1.1, 1.2, 1.2), pal.cabin(rgb, -0.3, 0.5))
    _wheels(b, pal, (-L / 2 + 0.7,), W / 2 - 0.25, 0.6, 0.45)
    return b.shape(L, W)


def motorcycle(rng: np.random.Generator, pal: Palette) -> Shape:
    """Two narrow wheels, engine block, tank, seat, fork and handlebar; no rider."""
    s = rng.uniform(0.9, 1.1)
    r, base = 0.31 * s, 0.72 * s
    b = PartsBuilder()
    tyre = pal.tyre(0.55 * r)
    for x in (-base, base):
        b.cylinder((x, 0, r), r, 0.12, tyre, AXLE)
    tank, dark = pal.moto_tank(), pal.dark()
    b.box((0, 0, 0.48 * s), (0.55 * s, 0.3, 0.36 * s), pal.metal())
    b.ellipsoid((0.15 * s, 0, 0.86 * s), (0.6 * s, 0.34, 0.28 * s), tank)
    b.box((-0.38 * s, 0, 0.86 * s), (0.6 * s, 0.28, 0.1), dark)
    b.box((-0.78 * s, 0, 0.74 * s), (0.4 * s, 0.18, 0.1), tank)
    head = (0.5 * s, 0, 1.02 * s)
    b.rod((base, 0, r), head, 0.035, pal.metal())
    b.rod((head[0], -0.36, head[2]), (head[0], 0.36, head[2]), 0.02, dark)
    b.rod((-0.3 * s, 0.18, 0.35 * s), (-0.9 * s, 0.18, 0.45 * s), 0.045, pal.metal())
    return b.shape(2 * (base + r), 0.75)


def bicycle(rng: np.random.Generator, pal: Palette) -> Shape:
    """Thin disc wheels and a diamond frame of tubes; no rider."""
    s = rng.uniform(0.85, 1.08)
    r, half = 0.34 * s, 0.53 * s
    frame, dark = pal.bike_frame(), pal.dark()
    tyre = pal.tyre(0.85 * r)
    b = PartsBuilder()
    for x in (-half, half):
        b.cylinder((x, 0, r), r, 0.04, tyre, AXLE)
    bracket, seat, head = (0, 0, r - 0.02), (-0.17 * s, 0, 0.88 * s), (0.4 * s, 0, 0.86 * s)
    rear, front = (-half, 0, r), (half, 0, r)
    for start, end in ((bracket, seat), (seat, head), (bracket, head), (rear, bracket), (rear, seat), (head, front)):
        b.rod(start, end, 0.018, frame)
    bar = (head[0] + 0.03, 0, head[2] + 0.12)
    b.rod(head, bar, 0.016, frame)
    b.rod((bar[0], -0.28, bar[2]), (bar[0], 0.28, bar[2]), 0.014, dark)
    b.box((seat[0] - 0.02, 0, seat[2] + 0.05), (0.25, 0.12, 0.06), dark)
    return b.shape(2 * (half + r), 0.6)
