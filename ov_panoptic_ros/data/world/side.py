"""A block side's open ground, as the block kinds fill it: world points from (x, depth), free spots found by
rejection sampling against discs (so nothing overlaps), crowds, and walking lines on which people never
meet."""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.classes import WORLD_CLASSES, label_of
from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.people_and_plants import pedestrian
from ov_panoptic_ros.data.world.scene import SceneBuilder
from ov_panoptic_ros.data.world.street import SIGNS, CrossSection


class Side:
    """A block's side: `at(x, v)` is the world point at depth v behind the frontage; free discs for placing."""

    def __init__(self, sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: CrossSection, side: int,
                 x0: float, x1: float, duration: float) -> None:
        self.sb, self.pal, self.rng, self.x0, self.x1, self.duration = sb, pal, rng, x0, x1, duration
        self.sign, self.front = SIGNS[side], cs.frontage(side)
        self.facing = 0.0 if self.sign > 0 else np.pi  # yaw that turns a body's -y towards the road
        self._discs = np.zeros((0, 3))
        self._lines: dict[float, tuple[int, float, list[float]]] = {}  # walking lines: direction, speed, starts

    def at(self, x: float, v: float, z: float = 0.0) -> tuple[float, float, float]:
        return x, self.sign * (self.front + v), z

    def spot(self, radius: float, v0: float, v1: float, tries: int = 30):
        """A free (x, v) for a disc of `radius` within the block and depths v0..v1, or None."""
        if self.x1 - self.x0 < 2 * radius or v1 - v0 < 2 * radius:
            return None
        for _ in range(tries):
            x, v = self.rng.uniform(self.x0 + radius, self.x1 - radius), self.rng.uniform(v0 + radius, v1 - radius)
            gap = np.hypot(self._discs[:, 0] - x, self._discs[:, 1] - v) - self._discs[:, 2]
            if not np.any(gap < radius + 0.1):
                self.taken(x, v, radius)
                return x, v
        return None

    def taken(self, x: float, v: float, radius: float) -> None:
        self._discs = np.vstack([self._discs, [x, v, radius]])

    def keep_clear(self, v: float, half_width: float) -> None:
        """Nothing is placed within `half_width` of the line at depth v (where people walk)."""
        for x in np.arange(self.x0, self.x1 + half_width, half_width):
            self.taken(x, v, half_width)

    def place(self, shape, name: str, v0: float, v1: float, z: float = 0.0, yaw: float | None = None) -> bool:
        spot = self.spot(0.5 * np.hypot(shape.length, shape.width), v0, v1)
        if spot is not None:
            yaw = self.rng.uniform(0, 2 * np.pi) if yaw is None else yaw
            self.sb.add(shape, label_of(name), WORLD_CLASSES.is_thing[label_of(name)], self.at(*spot, z), yaw)
        return spot is not None

    def crowd(self, v0: float, v1: float, z: float) -> None:
        """A group of people standing close together."""
        centre = self.spot(3.0, v0, v1)
        if centre is None:
            return
        for _ in range(int(self.rng.integers(3, 13))):
            x, v = centre + self.rng.normal(0, 1.1, 2)
            if not np.any(np.hypot(self._discs[:, 0] - x, self._discs[:, 1] - v) - self._discs[:, 2] < 0.32):
                self._discs = np.vstack([self._discs, [x, v, 0.32]])
                self.sb.add(pedestrian(self.rng, self.pal, walking=False), label_of("pedestrian"), True,
                            self.at(x, v, z), self.rng.uniform(0, 2 * np.pi))

    def stroll(self, v: float, z: float) -> None:
        """Someone walking along x on the line at depth v, inside the block for the whole drive. Everyone on a
        line walks one way at one speed, at least 1.5 m apart, so they never meet."""
        forward, speed, starts = self._lines.setdefault(
            v, (int(self.rng.choice([-1, 1])), self.rng.uniform(0.7, 1.4), []))
        room = self.x1 - self.x0 - 1.0 - speed * self.duration
        if room <= 0:
            return
        start = self.x0 + 0.5 + self.rng.uniform(0, room) + (0 if forward > 0 else speed * self.duration)
        if any(abs(start - other) < 1.5 for other in starts):
            return
        starts.append(start)
        self.sb.add(pedestrian(self.rng, self.pal, walking=True), label_of("pedestrian"), True,
                    self.at(start, v, z), 0.0 if forward > 0 else np.pi, (forward * speed, 0.0))
