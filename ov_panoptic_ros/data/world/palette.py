"""Per-class colour families: what makes a bus look like a bus to a camera, and a cone bright to a LiDAR.

Each class draws its colours from its own family (with per-object jitter) and paints its parts with its own
patterns, so that colour, texture and shape together tell the 16 classes apart, as in real streets: no two
classes share a family, though some share hues (grass and leaves are both green; their textures differ).
Each method adds a material for one object and returns its row in the `Materials` table.
"""
from __future__ import annotations

import numpy as np

from ov_panoptic_ros.data.world.appearance import (BAND, BAYS, BRICKS, HATCH, HUB, LEAVES, NOISE, PLAIN, RAILS, ROAD,
                                                   STRIPES, TILES, WATER, WINDOWS, ZEBRA, Materials)

CAR_PAINT = [(235, 235, 232), (172, 174, 178), (28, 28, 32), (75, 78, 84), (165, 22, 28), (32, 62, 140),
             (22, 32, 72), (32, 82, 52), (190, 170, 130), (215, 175, 35)]
CAR_PAINT_WEIGHTS = [0.22, 0.2, 0.15, 0.12, 0.09, 0.08, 0.05, 0.04, 0.03, 0.02]
BUS_LIVERY = [(195, 30, 32), (232, 182, 22), (30, 92, 172), (40, 132, 72), (240, 120, 30)]
TRUCK_CAB = [(240, 240, 240), (200, 40, 30), (30, 70, 150), (40, 110, 60), (230, 130, 30), (110, 110, 115)]
CONTAINER = [(40, 82, 150), (200, 92, 32), (42, 112, 72), (140, 140, 140), (130, 52, 42), (225, 225, 220)]
MACHINE = [(242, 182, 22), (232, 122, 22), (232, 205, 40)]
BIKE_FRAME = [(200, 30, 30), (30, 80, 190), (30, 150, 80), (25, 25, 25), (235, 235, 235), (235, 200, 30),
              (20, 150, 160)]
MOTO_TANK = [(25, 25, 25), (190, 25, 25), (30, 60, 160), (235, 110, 20), (180, 180, 185)]
SKIN = [(224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172), (92, 58, 38)]
HAIR = [(30, 22, 15), (70, 45, 25), (180, 150, 90), (120, 120, 120)]
TROUSERS = [(48, 66, 110), (30, 30, 34), (150, 130, 95), (105, 105, 110), (70, 50, 40)]
LEAF = [(42, 92, 32), (62, 112, 40), (32, 72, 36), (82, 122, 52)]
GRASS = [(108, 126, 56), (122, 112, 72), (134, 128, 70)]
PAVING = [(172, 172, 166), (192, 182, 162), (162, 122, 112)]
BRICK = [(150, 70, 50), (172, 92, 62), (202, 182, 142), (122, 112, 102)]
FACADE = [(202, 202, 196), (172, 162, 150), (212, 196, 170), (150, 160, 172), (222, 212, 192)]
SIGN = [(20, 62, 160), (200, 32, 32), (22, 112, 62), (235, 235, 235)]


class Palette:
    """Materials by role; shared looks (tyres, glass, asphalt) are made once per world."""

    def __init__(self, materials: Materials, rng: np.random.Generator) -> None:
        self.materials, self.rng = materials, rng
        self._shared: dict[str, int] = {}
        self.tarmac = self._jitter((66, 66, 70), 6)
        self.line_paint = (232, 232, 225) if rng.random() < 0.7 else (235, 190, 40)
        self.solid_centre = bool(rng.random() < 0.5)  # or dashed, on undivided roads

    def _jitter(self, rgb, amount: float = 10.0) -> np.ndarray:
        return np.asarray(rgb, float) + self.rng.normal(0, amount, 3)

    def _pick(self, family, weights=None) -> np.ndarray:
        return self._jitter(family[self.rng.choice(len(family), p=weights)])

    def _once(self, key: str, *args, **kwargs) -> int:
        if key not in self._shared:
            self._shared[key] = self.materials.add(*args, **kwargs)
        return self._shared[key]

    # vehicles
    def car_paint(self) -> np.ndarray:
        return self._pick(CAR_PAINT, CAR_PAINT_WEIGHTS)

    def paint(self, rgb, reflectivity: float = 0.35) -> int:
        return self.materials.add(PLAIN, rgb, reflectivity=reflectivity)

    def cabin(self, rgb, glass_from: float, glass_to: float) -> int:
        """Windows between local heights `glass_from` and `glass_to`, the body colour above and below."""
        return self.materials.add(BAND, rgb, (38, 48, 60), p0=glass_from, p1=glass_to, reflectivity=0.35,
                                  reflectivity2=0.06)

    def tyre(self, rim_radius: float) -> int:
        return self.materials.add(HUB, (22, 22, 22), (150, 150, 156), p0=rim_radius, reflectivity=0.05,
                                  reflectivity2=0.4)

    def lamp(self, rear: bool) -> int:
        return self._once(f"lamp{rear}", PLAIN, (200, 25, 25) if rear else (245, 245, 225), reflectivity=0.9)

    def dark(self) -> int:
        return self._once("dark", NOISE, (45, 45, 48), (25, 25, 27), scale=0.5, reflectivity=0.1)

    def metal(self) -> int:
        return self._once("metal", NOISE, (150, 152, 158), (110, 112, 118), scale=0.3, reflectivity=0.45)

    def bus_body(self, window_from: float, window_to: float) -> int:
        return self.materials.add(BAND, self._pick(BUS_LIVERY), (30, 38, 50), p0=window_from, p1=window_to,
                                  reflectivity=0.4, reflectivity2=0.06)

    def truck_cab(self) -> np.ndarray:
        return self._pick(TRUCK_CAB)

    def cargo(self) -> int:
        """Box-truck body: light panels with vertical ribs."""
        base = self._jitter((228, 228, 224) if self.rng.random() < 0.7 else (190, 195, 200), 6)
        return self.materials.add(STRIPES, base, base * 0.78, scale=0.6, p0=0, p1=0.12, reflectivity=0.45)

    def container(self) -> int:
        """Trailer body: a corrugated container colour."""
        base = self._pick(CONTAINER)
        return self.materials.add(STRIPES, base, base * 0.72, scale=0.3, p0=0, p1=0.5, reflectivity=0.4)

    def machine(self) -> tuple[np.ndarray, int, int]:
        """Construction machines: the colour, its material, and the same with black hazard stripes."""
        base = self._pick(MACHINE)
        return (base, self.materials.add(PLAIN, base, reflectivity=0.45),
                self.materials.add(STRIPES, base, (20, 20, 20), scale=0.5, p0=3, p1=0.5, reflectivity=0.45))

    def tracks(self) -> int:
        return self._once("tracks", STRIPES, (50, 50, 52), (22, 22, 22), scale=0.25, p0=0, p1=0.4, reflectivity=0.1)

    def bike_frame(self) -> int:
        return self.materials.add(PLAIN, self._pick(BIKE_FRAME), reflectivity=0.4)

    def moto_tank(self) -> int:
        return self.materials.add(PLAIN, self._pick(MOTO_TANK), reflectivity=0.4)

    # people
    def skin_and_hair(self, radius: float) -> int:
        return self.materials.add(BAND, self._pick(SKIN), self._pick(HAIR), p0=0.25 * radius, p1=2 * radius,
                                  reflectivity=0.3)

    def shirt(self) -> int:
        hue = self.rng.random()
        rgb = 255 * np.array([0.5 + 0.45 * np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)])
        return self.materials.add(PLAIN, rgb * self.rng.uniform(0.5, 1.0), reflectivity=0.3)

    def trousers(self) -> int:
        return self.materials.add(PLAIN, self._pick(TROUSERS), reflectivity=0.25)

    # movable objects
    def barrier(self) -> int:
        style = self.rng.integers(3)
        if style == 0:  # concrete
            return self.materials.add(NOISE, self._jitter((188, 188, 182), 6), (150, 150, 146), scale=0.4,
                                      reflectivity=0.35)
        if style == 1:  # plastic, red and white
            return self.materials.add(STRIPES, (210, 30, 30), (240, 240, 240), scale=0.8, p0=0, p1=0.5,
                                      reflectivity=0.35, reflectivity2=0.8)
        # a fence barrier: white with red diagonal stripes (not yellow and black: that is the machines' look)
        return self.materials.add(STRIPES, (240, 240, 236), (200, 28, 28), scale=0.45, p0=3, p1=0.5, reflectivity=0.8,
                                  reflectivity2=0.5)

    def cone(self, band_from: float, band_to: float) -> int:
        return self.materials.add(BAND, self._jitter((250, 100, 12), 6), (240, 240, 240), p0=band_from, p1=band_to,
                                  reflectivity=0.5, reflectivity2=1.0)

    # vegetation
    def leaves(self) -> int:
        base = self._pick(LEAF)
        return self.materials.add(LEAVES, base * 1.2, base * 0.45, scale=0.12, reflectivity=0.3)

    def bark(self) -> int:
        base = self._jitter((92, 66, 42), 8)
        return self.materials.add(STRIPES, base, base * 0.6, scale=0.07, p0=0, p1=0.35, reflectivity=0.25)

    # ground
    def asphalt(self, lane_width: float, lanes: int, solid_line: int = -1) -> int:
        """A carriageway `lanes` wide; boundary `solid_line` (counted from the slab's -y edge) is solid."""
        return self._once(f"road{lane_width}/{lanes}/{solid_line}", ROAD, self.tarmac, self.line_paint,
                          scale=lane_width, p0=lanes, p1=solid_line, reflectivity=0.08, reflectivity2=0.7)

    def plain_asphalt(self) -> int:
        return self._once("asphalt", NOISE, self.tarmac + 4, self.tarmac - 12, scale=2.0, reflectivity=0.08)

    def crosswalk(self) -> int:
        return self._once("zebra", ZEBRA, self.tarmac, (235, 235, 230), scale=1.0, reflectivity=0.08,
                          reflectivity2=0.7)

    def parking_lot(self, aisle_half_width: float) -> int:
        return self.materials.add(BAYS, self.tarmac + 6, (225, 225, 220), scale=2.6, p0=aisle_half_width,
                                  reflectivity=0.08, reflectivity2=0.7)

    def paving(self) -> int:
        base = self._pick(PAVING)
        if self.rng.random() < 0.3:
            return self.materials.add(NOISE, base, base * 0.85, scale=1.5, reflectivity=0.25)
        return self.materials.add(TILES, base, base * 0.7, scale=self.rng.choice([0.3, 0.5, 0.6]), p0=0.03,
                                  reflectivity=0.25)

    def grass(self) -> int:
        base = self._pick(GRASS)
        return self.materials.add(NOISE, base, base * np.array([0.8, 0.7, 0.6]), scale=self.rng.uniform(1, 3),
                                  reflectivity=0.22)

    def verge(self) -> int:
        """The street's grass verges: one mown lawn for the whole street."""
        if "verge" not in self._shared:
            self._shared["verge"] = self.grass()
        return self._shared["verge"]

    def dirt(self) -> int:
        base = self._jitter((132, 106, 76), 8)
        return self.materials.add(NOISE, base, base * 0.72, scale=self.rng.uniform(0.8, 2.0), reflectivity=0.2)

    def island(self) -> int:
        """Raised traffic islands and medians (other_flat): hatched or cobbled."""
        if self.rng.random() < 0.5:
            return self.materials.add(HATCH, (150, 150, 145), (235, 200, 40), scale=0.8, reflectivity=0.2,
                                      reflectivity2=0.6)
        return self.materials.add(BRICKS, (140, 92, 72), (92, 82, 72), scale=0.12, p0=0.02, reflectivity=0.2)

    def rails(self) -> int:
        return self._once("rails", RAILS, (118, 108, 96), (168, 168, 172), reflectivity=0.15, reflectivity2=0.5)

    def water(self) -> int:
        return self._once("water", WATER, (40, 82, 122), (110, 150, 180), scale=1.5, reflectivity=0.02)

    # man-made
    def wall(self) -> int:
        if self.rng.random() < 0.45:
            return self.materials.add(BRICKS, self._pick(BRICK), (205, 200, 190), scale=0.09, p0=0.012,
                                      reflectivity=0.3)
        return self.materials.add(WINDOWS, self._pick(FACADE), (52, 62, 82), scale=self.rng.uniform(2.5, 4.0),
                                  p0=self.rng.uniform(2.9, 3.6), p1=self.rng.uniform(0.35, 0.65), reflectivity=0.35,
                                  reflectivity2=0.08)

    def roof(self) -> int:
        return self.materials.add(NOISE, self._jitter((90, 86, 84) if self.rng.random() < 0.6 else (160, 80, 60)),
                                  (60, 58, 56), scale=1.0, reflectivity=0.2)

    def concrete(self) -> int:
        return self._once("concrete", NOISE, (168, 168, 162), (140, 140, 136), scale=0.8, reflectivity=0.3)

    def sign(self) -> int:
        return self.materials.add(PLAIN, self._pick(SIGN), reflectivity=0.95)

    def fence(self) -> int:
        return self.materials.add(STRIPES, (120, 86, 56), (80, 58, 38), scale=0.15, p0=0, p1=0.3, reflectivity=0.25)
