"""What stands along a side of the road: parked vehicles in the parking lane, furniture and trees by the kerb,
standing people and bicycles along the frontage; a construction site closes its parking lane with cones and
barriers instead."""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.classes import label_of
from ov_panoptic_ros.data.world.manmade import bin_or_bollard, sign_post, street_lamp
from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.people_and_plants import barrier, pedestrian, traffic_cone, tree
from ov_panoptic_ros.data.world.scene import SceneBuilder
from ov_panoptic_ros.data.world.street import FRONTAGE_BAND, KERB_BAND, SIGNS, CrossSection
from ov_panoptic_ros.data.world.vehicles import bicycle, bus, car, motorcycle, trailer, truck


def parking_lane(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, side: int,
                 x0: float, x1: float, bus_stop: bool) -> tuple[list, list]:
    """Parked vehicles nose to tail, facing the side's traffic, and gaps, some reserved by a cone or a barrier;
    a bus at a bus stop with people waiting in the kerb band. Returns the x ranges the kerb band must keep
    clear: of everything (the waiting people) and of trees (tall vehicles, which a crown would reach into)."""
    sign = SIGNS[side]
    y, yaw = sign * (cs.carriageway + cs.parking[side] / 2), 0.0 if sign < 0 else np.pi
    kinds = ["car", "truck", "trailer", "motorcycle", "gap"]
    makers = {"car": car, "truck": truck, "trailer": trailer, "motorcycle": motorcycle}
    at = x0 + rng.uniform(0.5, 4.0)
    waiting, tall = [], []
    if bus_stop:
        shape = bus(rng, pal)
        if at + shape.length < x1:
            sb.add(shape, label_of("bus"), True, (at + shape.length / 2, y, 0.0), yaw)
            for k in range(int(rng.integers(1, 5))):  # clear of the bus's overhang into the kerb band
                sb.add(pedestrian(rng, pal, walking=False), label_of("pedestrian"), True,
                       (at + 1.5 + 1.1 * k, sign * (cs.kerb_line(side) + 0.5), cs.kerb), rng.uniform(0, 6.3))
            waiting.append((at, at + shape.length))
            tall.append((at, at + shape.length))
            at += shape.length + rng.uniform(2, 5)
    while True:
        kind = rng.choice(kinds, p=[0.7, 0.05, 0.06, 0.09, 0.1])
        if kind == "gap":
            length = rng.uniform(3, 12)
            movable, name = (barrier(rng, pal), "barrier") if rng.random() < 0.4 else (
                traffic_cone(rng, pal), "traffic_cone")
            if at + length < x1 and movable.length + 1 < length and rng.random() < 0.35:
                sb.add(movable, label_of(name), True, (at + length / 2, y, 0.0), rng.uniform(-0.2, 0.2))
            at += length
            continue
        shape = makers[kind](rng, pal)
        if at + shape.length > x1:
            return waiting, tall
        sb.add(shape, label_of(kind), True, (at + shape.length / 2, y, 0.0), yaw)
        if kind in ("truck", "trailer"):
            tall.append((at, at + shape.length))
        at += shape.length + rng.uniform(0.6, 2.5)


def closure(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, side: int,
            x0: float, x1: float) -> None:
    """Road works: the parking lane closed by a line of cones along the traffic and a row of barriers behind
    it; without a parking lane, one row of barriers and cones in the kerb band."""
    sign = SIGNS[side]
    if cs.parking[side]:
        for x in np.arange(x0 + 1, x1 - 1, rng.uniform(2.0, 4.0)):
            sb.add(traffic_cone(rng, pal), label_of("traffic_cone"), True, (x, sign * (cs.carriageway + 0.35), 0.0),
                   rng.uniform(0, 6.3))
        row, z = cs.carriageway + cs.parking[side] / 2 + 0.3, 0.0
    else:
        row, z = cs.kerb_line(side) + KERB_BAND / 2, cs.kerb
    at = x0 + rng.uniform(1, 3)
    while True:
        cone = not cs.parking[side] and rng.random() < 0.4
        shape = traffic_cone(rng, pal) if cone else barrier(rng, pal)
        if at + shape.length > x1 - 1:
            return
        sb.add(shape, label_of("traffic_cone" if cone else "barrier"), True, (at + shape.length / 2, sign * row, z))
        at += shape.length + rng.uniform(0.1, 0.8)


def kerb_band(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, side: int,
              x0: float, x1: float, trees: bool, clear: tuple[list, list] = ([], [])) -> None:
    """Lamps, signs, bins and bollards, and street trees where a parking lane keeps their crowns off traffic;
    nothing in the x ranges clear[0], no tree within 3 m of the ranges clear[1] (see parking_lane)."""
    sign, manmade = SIGNS[side], label_of("manmade")
    y, z = sign * (cs.kerb_line(side) + 0.5), cs.kerb  # clear of a parked truck's overhang (up to 0.15 m)
    for x in np.arange(x0 + rng.uniform(1, 5), x1 - 1, rng.uniform(5, 12)):
        if any(a - 1.5 < x < b + 1.5 for a, b in clear[0]):
            continue
        shade = trees and not any(a - 3 < x < b + 3 for a, b in clear[1])
        kind = rng.choice(["tree", "lamp", "sign", "bin"], p=[0.45, 0.2, 0.15, 0.2] if shade else [0, 0.35, 0.3, 0.35])
        if kind == "tree":
            sb.add(tree(rng, pal, street=True), label_of("vegetation"), False, (x, y, z))
        else:
            make = {"lamp": street_lamp, "sign": sign_post, "bin": bin_or_bollard}[kind]
            sb.add(make(rng, pal), manmade, False, (x, y, z), 0.0 if sign > 0 else np.pi)


def frontage_band(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, side: int,
                  x0: float, x1: float) -> None:
    """People standing by the houses, bicycles parked along them."""
    sign = SIGNS[side]
    y, z = sign * (cs.frontage(side) - FRONTAGE_BAND / 2), cs.kerb
    at = x0 + rng.uniform(0, 6)
    while at < x1 - 2:
        if rng.random() < 0.5:
            shape, label = pedestrian(rng, pal, walking=False), label_of("pedestrian")
            yaw = rng.uniform(0, 2 * np.pi)
        else:
            shape, label, yaw = bicycle(rng, pal), label_of("bicycle"), rng.choice([0.0, np.pi])
        if at + shape.length > x1:
            return
        sb.add(shape, label, True, (at + shape.length / 2, y, z), yaw)
        at += shape.length + rng.uniform(0.4, 12)
