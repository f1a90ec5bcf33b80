"""What lies behind a sidewalk, one kind per block and side: buildings, a parking lot, a park, a plaza with a
crowd, or a construction site. Each fills the strip x0..x1 from the side's frontage outwards.

Objects in open areas are placed through `side.Side`, so nothing overlaps; people who walk there walk along
x on shared lines and stay inside their block for the whole drive.
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.classes import label_of
from ov_panoptic_ros.data.world.manmade import bench, bin_or_bollard, building, bus_shelter, kiosk, street_lamp, wall
from ov_panoptic_ros.data.world.parts import PartsBuilder
from ov_panoptic_ros.data.world.people_and_plants import barrier, bush, hedge, pedestrian, traffic_cone, tree
from ov_panoptic_ros.data.world.side import Side
from ov_panoptic_ros.data.world.vehicles import bicycle, car, construction_vehicle, motorcycle, trailer

KINDS = ("buildings", "parking", "park", "plaza", "construction")


def buildings(s: Side) -> None:
    """A row of buildings, some behind front gardens, gaps closed by walls, fences or hedges."""
    garden = s.rng.uniform(2, 5) if s.rng.random() < 0.3 else 0.0
    at = s.x0
    while s.x1 - at > 4:
        frontage, depth = min(s.rng.uniform(6, 22), s.x1 - at), s.rng.uniform(8, 16)
        s.sb.add(building(frontage, depth, s.rng, s.pal), label_of("manmade"), False,
                 s.at(at + frontage / 2, garden + depth / 2), s.facing)
        at += frontage
        gap = min(s.rng.choice([0.0, s.rng.uniform(1, 6)]), s.x1 - at)
        if gap > 0.5:
            green = s.rng.random() < 0.4
            filler = hedge(gap, s.rng, s.pal) if green else wall(gap, s.rng, s.pal)
            s.sb.add(filler, label_of("vegetation" if green else "manmade"), False, s.at(at + gap / 2, garden + 0.7))
        at += gap
    for _ in range(int(garden * (s.x1 - s.x0) / 25)):
        s.place(bush(s.rng, s.pal), "vegetation", 0.0, garden)


def parking(s: Side) -> None:
    """A lot with one aisle along x between two rows of bays, cars parked nose in, a hedge at the front."""
    aisle, bay = s.rng.uniform(2.8, 3.5), 2.6
    depth = 2 * (aisle + 6.8)  # bays 5 m deep on each side of the aisle, 1.5 m clear of the hedge and lamps
    s.sb.slab(s.x0, s.x1, *sorted((s.sign * s.front, s.sign * (s.front + depth))), 0.0,
              label_of("driveable_surface"), s.pal.parking_lot(aisle))
    entrance = s.rng.uniform(s.x0 + 2, s.x1 - 8)
    for a, b in ((s.x0, entrance), (entrance + 6, s.x1)):
        if b - a > 1:
            s.sb.add(hedge(b - a, s.rng, s.pal), label_of("vegetation"), False, s.at((a + b) / 2, 0.7))
    centre = (s.x0 + s.x1) / 2
    occupied = s.rng.uniform(0.4, 0.9)
    for row in (-1, 1):
        v = depth / 2 + row * (aisle + 2.6)
        for k in range(int(np.floor((s.x0 + 0.5 - centre) / bay)), int(np.ceil((s.x1 - 0.5 - centre) / bay))):
            x = centre + (k + 0.5) * bay
            if not (s.x0 + 1.2 < x < s.x1 - 1.2) or s.rng.random() > occupied:
                continue
            make, name = (motorcycle, "motorcycle") if s.rng.random() < 0.06 else (car, "car")
            s.sb.add(make(s.rng, s.pal), label_of(name), True, s.at(x, v), np.pi / 2 + s.rng.choice([0, np.pi]))
    for x in np.arange(s.x0 + 5, s.x1 - 3, s.rng.uniform(15, 25)):
        s.sb.add(street_lamp(s.rng, s.pal), label_of("manmade"), False, s.at(x, depth + 0.5), s.facing)
    for _ in range(int(s.rng.integers(0, 4))):
        s.stroll(depth / 2 + s.rng.choice([-0.7, 0.7]), 0.0)


def park(s: Side) -> None:
    """Grass with trees, bushes and mounds, a footpath with benches and strollers, maybe a pond, people."""
    depth = s.rng.uniform(25, 40)
    terrain = label_of("terrain")
    s.sb.slab(s.x0, s.x1, *sorted((s.sign * s.front, s.sign * (s.front + depth))), -0.02, terrain, s.pal.grass())
    path = s.rng.uniform(5, depth - 10)
    s.sb.slab(s.x0, s.x1, *sorted((s.sign * (s.front + path), s.sign * (s.front + path + 2.5))), 0.03,
              label_of("sidewalk"), s.pal.paving())
    s.keep_clear(path + 1.25, 1.6)
    if s.rng.random() < 0.5:
        lo, hi = path + 4.5, min(path + 4.5 + s.rng.uniform(5, 10), depth - 1)
        a = s.rng.uniform(s.x0, max(s.x0, s.x1 - 18))
        s.sb.slab(a, a + s.rng.uniform(8, 18), *sorted((s.sign * (s.front + lo), s.sign * (s.front + hi))), -0.01,
                  label_of("other_flat"), s.pal.water())
        for x in np.arange(a, a + 18, 2.0):
            s.taken(x, (lo + hi) / 2, (hi - lo) / 2 + 0.5)
    for _ in range(int(s.rng.integers(0, 4))):
        size = (s.rng.uniform(4, 9), s.rng.uniform(3, 6), s.rng.uniform(0.8, 1.6))
        mound = PartsBuilder().ellipsoid((0, 0, -0.02), size, s.pal.grass()).shape(size[0], size[1])
        s.place(mound, "terrain", 0, depth)
    for _ in range(int((s.x1 - s.x0) * depth / 70)):
        s.place(tree(s.rng, s.pal), "vegetation", 0, depth)
    for _ in range(int((s.x1 - s.x0) * depth / 120)):
        s.place(bush(s.rng, s.pal), "vegetation", 0, depth)
    for x in np.arange(s.x0 + 3, s.x1 - 3, s.rng.uniform(8, 20)):
        s.sb.add(bench(s.rng, s.pal), label_of("manmade"), False, s.at(x, path + 2.9, 0.0), s.facing)
        if s.rng.random() < 0.4:
            s.place(bicycle(s.rng, s.pal), "bicycle", path + 3.5, path + 6)
    for _ in range(int(s.rng.integers(1, 5))):
        s.stroll(path + s.rng.choice([0.7, 1.8]), 0.03)
    for _ in range(int(s.rng.integers(0, 3))):
        s.crowd(0, depth, -0.02)


def plaza(s: Side) -> None:
    """A paved square with crowds, bicycle and motorcycle rows, a fountain, a kiosk, planters and a shelter;
    people walk across it on two promenades kept clear of everything else."""
    depth, z = s.rng.uniform(15, 30), 0.12
    s.sb.slab(s.x0, s.x1, *sorted((s.sign * s.front, s.sign * (s.front + depth))), z, label_of("sidewalk"),
              s.pal.paving())
    promenades = (s.rng.uniform(7, depth / 2), s.rng.uniform(depth / 2 + 1, depth - 1.5))
    for v in promenades:
        s.keep_clear(v, 0.8)
    if s.rng.random() < 0.5:  # crowd-control barriers along the square's front
        at = s.rng.uniform(s.x0, s.x1 - 6)
        for _ in range(int(s.rng.integers(2, 6))):
            shape = barrier(s.rng, s.pal)
            if at + shape.length > s.x1:
                break
            s.sb.add(shape, label_of("barrier"), True, s.at(at + shape.length / 2, 0.6, z))
            s.taken(at + shape.length / 2, 0.6, shape.length / 2)
            at += shape.length + 0.2
    s.place(bus_shelter(s.rng, s.pal), "manmade", 0.0, 6.0, z, s.facing)
    if s.rng.random() < 0.6:  # a fountain: a stone basin, its water surface just above the rim
        radius = s.rng.uniform(2.0, 3.5)
        spot = s.spot(radius + 1.0, 0, depth)
        if spot:
            s.sb.add(PartsBuilder().cylinder((0, 0, 0.25), radius, 0.5, s.pal.concrete()).build(),
                     label_of("manmade"), False, s.at(*spot, z))
            s.sb.add(PartsBuilder().cylinder((0, 0, 0.255), radius - 0.3, 0.51, s.pal.water()).build(),
                     label_of("other_flat"), False, s.at(*spot, z))
    for name, make, pitch in (("bicycle", bicycle, 0.7), ("motorcycle", motorcycle, 1.1)):
        spot = s.spot(4.0, 0, depth)  # a row across x, at most 6 m long
        if spot:
            count = int(s.rng.integers(3, 6 / pitch + 1))
            for k in range(count):
                x = spot[0] + pitch * (k - (count - 1) / 2)
                s.sb.add(make(s.rng, s.pal), label_of(name), True, s.at(x, spot[1], z),
                         np.pi / 2 + s.rng.choice([0, np.pi]))
    s.place(kiosk(s.rng, s.pal), "manmade", 0, depth, z)
    for _ in range(int(s.rng.integers(1, 5))):
        planter = PartsBuilder().box((0, 0, 0.3), (1.5, 1.5, 0.6), s.pal.concrete()).build()
        spot = s.spot(1.2, 0, depth)
        if spot:
            s.sb.add(planter, label_of("manmade"), False, s.at(*spot, z))
            s.sb.add(bush(s.rng, s.pal), label_of("vegetation"), False, s.at(*spot, z + 0.5))
    for _ in range(int(s.rng.integers(1, 4))):
        s.place(bin_or_bollard(s.rng, s.pal), "manmade", 0, depth, z)
    for _ in range(int(s.rng.integers(2, 5))):
        s.crowd(0, depth, z)
    for _ in range(int(s.rng.integers(2, 7))):
        s.stroll(promenades[int(s.rng.integers(2))], z)


def construction(s: Side) -> None:
    """A fenced site on bare earth with heaps, machines, a site container and workers."""
    depth = s.rng.uniform(18, 30)
    dirt = s.pal.dirt()
    s.sb.slab(s.x0, s.x1, *sorted((s.sign * (s.front + 1), s.sign * (s.front + depth))), -0.02,
              label_of("terrain"), dirt)
    gate = s.rng.uniform(s.x0 + 1, s.x1 - 9)
    for a, b in ((s.x0, gate), (gate + 8, s.x1)):
        if b - a > 1:
            s.sb.add(wall(b - a, s.rng, s.pal), label_of("manmade"), False, s.at((a + b) / 2, 0.5))
    for _ in range(int(s.rng.integers(1, 4))):
        size = (s.rng.uniform(3, 8), s.rng.uniform(3, 6), s.rng.uniform(1.0, 3.0))
        s.place(PartsBuilder().ellipsoid((0, 0, 0), size, dirt).shape(size[0], size[1]), "terrain", 1.5, depth)
    for _ in range(int(s.rng.integers(1, 4))):
        s.place(construction_vehicle(s.rng, s.pal), "construction_vehicle", 1.5, depth)
    s.place(trailer(s.rng, s.pal), "trailer", 1.5, depth)
    for _ in range(int(s.rng.integers(2, 6))):
        s.place(PartsBuilder().box((0, 0, 0.3), (1.2, 1.0, 0.6), s.pal.fence()).shape(1.2, 1.0), "manmade", 1.5,
                depth)
    for _ in range(int(s.rng.integers(1, 5))):
        s.place(pedestrian(s.rng, s.pal, walking=False), "pedestrian", 1.5, depth)
    for _ in range(int(s.rng.integers(2, 8))):
        s.place(traffic_cone(s.rng, s.pal), "traffic_cone", 1.5, depth)
    for _ in range(int(s.rng.integers(0, 4))):
        s.place(barrier(s.rng, s.pal), "barrier", 1.5, depth)
