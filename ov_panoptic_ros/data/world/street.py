"""The street itself: its cross-section, the road and sidewalk slabs, junctions, and the traffic on them.

World frame: the main road runs along x, its centre line on y = 0, right-hand traffic (lanes towards +x on
y < 0). Side 0 is the right (y < 0), side 1 the left. A side's sidewalk is split into bands, so that
things placed on it never overlap things walking on it: street furniture by the kerb, walkers in the
middle, standing people and parked bicycles along the frontage. Some streets have a grass verge (terrain)
between the kerb and the paving; the furniture and street trees then stand on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.data.world.classes import label_of
from ov_panoptic_ros.data.world.manmade import traffic_light
from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.people_and_plants import pedestrian
from ov_panoptic_ros.data.world.scene import SceneBuilder
from ov_panoptic_ros.data.world.vehicles import bus, car, construction_vehicle, trailer, truck

SIGNS = (-1, 1)  # y direction of side 0 (right) and side 1 (left)
KERB_BAND, FRONTAGE_BAND = 0.8, 0.7  # metres of sidewalk for furniture and for standing people


@dataclass(frozen=True)
class CrossSection:
    lanes: int  # travel lanes per direction
    lane_width: float
    median: float  # width of a raised median island (other_flat), 0 for none
    parking: tuple[float, float]  # parking lane width per side, 0 for none
    sidewalk: tuple[float, float]  # per side, from the kerb to the frontage, verge included
    verge: tuple[float, float]  # per side, width of the grass verge along the kerb, 0 for none
    kerb: float  # height of the sidewalks above the road

    @staticmethod
    def random(rng: np.random.Generator) -> CrossSection:
        lanes = int(rng.integers(1, 3))
        median = rng.uniform(1.2, 3.0) if lanes == 2 and rng.random() < 0.4 else 0.0
        parking = tuple(rng.uniform(2.3, 2.6) if rng.random() < 0.75 else 0.0 for _ in SIGNS)
        sidewalk = tuple(rng.uniform(2.6, 5.0) for _ in SIGNS)
        verge = tuple(rng.uniform(0.9, min(2.0, w - 2.0)) if w > 3.2 and rng.random() < 0.4 else 0.0
                      for w in sidewalk)  # leaving at least 2 m of paving
        return CrossSection(lanes, rng.uniform(3.0, 3.6), median, parking, sidewalk, verge, rng.uniform(0.1, 0.17))

    @property
    def carriageway(self) -> float:
        """Distance from the centre line to the outer edge of the travel lanes."""
        return self.median / 2 + self.lanes * self.lane_width

    def kerb_line(self, side: int) -> float:
        return self.carriageway + self.parking[side]

    def frontage(self, side: int) -> float:
        """Distance from the centre line to the back of the sidewalk, where the side's content starts."""
        return self.kerb_line(side) + self.sidewalk[side]

    def lane_centre(self, lane: int) -> float:
        """y of travel lane `lane`: 0 .. lanes - 1 go towards +x (nearest the centre first), the rest towards -x."""
        k, sign = (lane, -1) if lane < self.lanes else (lane - self.lanes, 1)
        return sign * (self.median / 2 + (k + 0.5) * self.lane_width)

    def walk_tracks(self, side: int) -> np.ndarray:
        """|y| of the lines people walk along on a side's sidewalk, 0.8 m apart."""
        lo = self.kerb_line(side) + max(KERB_BAND, self.verge[side]) + 0.4
        hi = self.frontage(side) - FRONTAGE_BAND - 0.4
        return np.arange(lo, hi + 1e-9, 0.8) if hi >= lo else np.array([(lo + hi) / 2])


def road(sb: SceneBuilder, pal: Palette, cs: CrossSection, x0: float, x1: float) -> None:
    """A straight stretch: travel lanes with markings, the median, parking lanes and the sidewalks."""
    drive, walk = label_of("driveable_surface"), label_of("sidewalk")
    if cs.median:
        for sign in SIGNS:
            sb.slab(x0, x1, *sorted((sign * cs.median / 2, sign * cs.carriageway)), 0.0, drive,
                    pal.asphalt(cs.lane_width, cs.lanes))
        sb.slab(x0, x1, -cs.median / 2, cs.median / 2, cs.kerb, label_of("other_flat"), pal.island())
    else:
        sb.slab(x0, x1, -cs.carriageway, cs.carriageway, 0.0, drive,
                pal.asphalt(cs.lane_width, 2 * cs.lanes, solid_line=cs.lanes if pal.solid_centre else -1))
    for side, sign in enumerate(SIGNS):
        if cs.parking[side]:
            sb.slab(x0, x1, *sorted((sign * cs.carriageway, sign * cs.kerb_line(side))), 0.0, drive,
                    pal.plain_asphalt())
        paving = cs.kerb_line(side) + cs.verge[side]
        if cs.verge[side]:
            sb.slab(x0, x1, *sorted((sign * cs.kerb_line(side), sign * paving)), cs.kerb, label_of("terrain"),
                    pal.verge())
        sb.slab(x0, x1, *sorted((sign * paving, sign * cs.frontage(side))), cs.kerb, walk, pal.paving())


def junction(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, x0: float, x1: float,
             reach: float) -> list[tuple[float, float]]:
    """A crossroads in the middle of [x0, x1]: zebra crossings on both approaches, a cross street with raised
    crossings, refuge islands, traffic lights and traffic queued at its stop lines (so it never crosses the
    main road's traffic), leaving the sides' frontages at |y| up to `reach`. Returns the x ranges left
    for the sides' content."""
    drive, walk, other = label_of("driveable_surface"), label_of("sidewalk"), label_of("other_flat")
    lanes = int(rng.integers(1, 3))
    xc, half, zebra, walk_w = (x0 + x1) / 2, lanes * cs.lane_width, 3.0, rng.uniform(2.5, 4.0)
    road(sb, pal, cs, x0, xc - half - zebra)
    road(sb, pal, cs, xc + half + zebra, x1)
    kerb_r, kerb_l = -cs.kerb_line(0), cs.kerb_line(1)
    for a, b in ((xc - half - zebra, xc - half), (xc + half, xc + half + zebra)):
        sb.slab(a, b, kerb_r, kerb_l, 0.0, drive, pal.crosswalk())
    sb.slab(xc - half, xc + half, kerb_r, kerb_l, 0.0, drive, pal.plain_asphalt())
    for side, sign in enumerate(SIGNS):
        near, far = sorted((sign * cs.kerb_line(side), sign * cs.frontage(side)))
        for a, b in ((xc - half - zebra, xc - half), (xc + half, xc + half + zebra)):
            sb.slab(a, b, near, far, cs.kerb, walk, pal.paving())
        sb.slab(xc - half, xc + half, near, far, cs.kerb, drive, pal.crosswalk(), along_y=True)
        start, end = sorted((sign * cs.frontage(side), sign * reach))
        sb.slab(xc - half, xc + half, start, end, 0.0, drive,
                pal.asphalt(cs.lane_width, 2 * lanes, solid_line=lanes), along_y=True)
        sb.slab(xc - 0.3, xc + 0.3, *sorted((sign * (cs.frontage(side) + 1), sign * (cs.frontage(side) + 9))),
                cs.kerb, other, pal.island())
        for a, b in ((xc - half - walk_w, xc - half), (xc + half, xc + half + walk_w)):
            sb.slab(a, b, start, end, cs.kerb, walk, pal.paving())
        for corner in (-1, 1):  # signals at the kerb of every corner, reaching over the main road
            sb.add(traffic_light(cs.carriageway * 0.6, rng, pal), label_of("manmade"), False,
                   (xc + corner * (half + 0.4), sign * (cs.kerb_line(side) + 0.4), cs.kerb), 0.0 if sign > 0 else np.pi)
        _cross_traffic(sb, pal, rng, cs, xc, sign, lanes, reach)
    return [(x0, xc - half - walk_w), (xc + half + walk_w, x1)]


def _cross_traffic(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, xc: float,
                   sign: int, lanes: int, reach: float) -> None:
    """Vehicles of one arm of the cross street: queued towards the junction, or driving away from it."""
    start = cs.frontage(SIGNS.index(sign)) + 1.5
    for k in range(lanes):
        x, y = xc - sign * (0.3 + (k + 0.5) * cs.lane_width), start
        for _ in range(int(rng.integers(0, 4))):
            shape, label = _vehicle(rng, pal, queued=True)
            y += shape.length / 2
            if y + shape.length / 2 > reach:
                break
            sb.add(shape, label, True, (x, sign * y, 0.0), -sign * np.pi / 2)
            y += shape.length / 2 + rng.uniform(1.0, 2.5)
        x = xc + sign * (0.3 + (k + 0.5) * cs.lane_width)
        for y in start + 4 + rng.uniform(0, 30, int(rng.integers(0, 2))):
            shape, label = _vehicle(rng, pal, queued=True)
            speed = rng.uniform(3, 9)
            sb.add(shape, label, True, (x, sign * y, 0.0), sign * np.pi / 2, (0.0, sign * speed))


def _vehicle(rng: np.random.Generator, pal: Palette, queued: bool = False):
    """A road user: mostly cars, some trucks, buses and construction machines."""
    kind = rng.choice(["car", "truck", "bus", "construction_vehicle"], p=[0.78, 0.1, 0.1, 0.02] if queued
                      else [0.74, 0.11, 0.12, 0.03])
    make = {"car": car, "truck": truck, "bus": bus, "construction_vehicle": construction_vehicle}[kind]
    return make(rng, pal), label_of(kind)


def traffic(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, x0: float, x1: float,
            duration: float, ego_lane: int, ego_speed: float) -> None:
    """Vehicles in every travel lane of the main road at the lane's speed, so none ever runs into another.
    The ego's lane moves at the ego's speed and keeps a gap around it (the ego starts at x = 0). Lanes are
    filled upstream far enough that traffic keeps coming into view for the whole drive; a truck may tow a
    trailer."""
    for lane in range(2 * cs.lanes):
        forward = 1 if lane < cs.lanes else -1
        speed = ego_speed if lane == ego_lane else rng.uniform(3.0, 13.0)
        y, spacing = cs.lane_centre(lane), rng.uniform(8, 35)
        at = (x0 - speed * duration) if forward > 0 else x0  # a -x lane is filled up to x1 + speed * duration
        end = x1 if forward > 0 else x1 + speed * duration
        while at < end:
            shape, label = _vehicle(rng, pal)
            towed = trailer(rng, pal) if label == label_of("truck") and rng.random() < 0.3 else None
            length = shape.length + (towed.length + 1.0 if towed else 0.0)  # the convoy spans [at, at + length]
            if lane == ego_lane and not (at > 12.0 or at + length < -12.0):
                at += rng.uniform(3, spacing)
                continue
            velocity, yaw = (forward * speed, 0.0), 0.0 if forward > 0 else np.pi
            head = at + length - shape.length / 2 if forward > 0 else at + shape.length / 2
            sb.add(shape, label, True, (head, y, 0.0), yaw, velocity)
            if towed:
                tail = at + towed.length / 2 if forward > 0 else at + length - towed.length / 2
                sb.add(towed, label_of("trailer"), True, (tail, y, 0.0), yaw, velocity)
            at += length + rng.uniform(3, spacing)


def walkers(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, x0: float, x1: float,
            duration: float) -> None:
    """People walking along the sidewalks: one direction and one speed per walking line, so they never meet."""
    for side, sign in enumerate(SIGNS):
        for track in cs.walk_tracks(side):
            forward, speed = rng.choice([-1, 1]), rng.uniform(0.9, 1.6)
            at, end, spacing = x0 - speed * duration, x1 + speed * duration, rng.uniform(3, 18)
            while at < end:
                sb.add(pedestrian(rng, pal, walking=True), label_of("pedestrian"), True,
                       (at, sign * track, cs.kerb), 0.0 if forward > 0 else np.pi, (forward * speed, 0.0))
                at += rng.uniform(1.5, spacing)
