"""Materials: a colour, a second colour, and a procedural pattern that mixes them at a surface point.

The pattern is computed from the hit point in the primitive's own frame, so a texture moves with its object
and does not swim. One mixing weight per point serves both sensors: the camera's colour and the LiDAR's
reflectivity (lane paint and the cone's band are retroreflective as well as white).
"""
from __future__ import annotations

import numpy as np

# pattern ids; what `scale`, `p0`, `p1` mean for each is in `_weight`
PLAIN, NOISE, STRIPES, TILES, BRICKS, LEAVES, WINDOWS, ROAD, BAND, HATCH, ZEBRA, HUB, WATER, RAILS, BAYS = range(15)
COLUMNS = ("pattern", "r", "g", "b", "r2", "g2", "b2", "scale", "p0", "p1", "reflectivity", "reflectivity2")
_C = {name: i for i, name in enumerate(COLUMNS)}


class Materials:
    """The world's material table, filled while the layout is built; `add` returns a material's row."""

    def __init__(self) -> None:
        self._rows: list[list[float]] = []

    def add(self, pattern: int, rgb, rgb2=(0, 0, 0), scale: float = 1.0, p0: float = 0.0, p1: float = 0.0,
            reflectivity: float = 0.2, reflectivity2: float | None = None) -> int:
        """Colours in 0..255; reflectivity in 0..1 (the LiDAR's return strength at normal incidence)."""
        rgb, rgb2 = np.clip(np.asarray(rgb, float), 0, 255) / 255, np.clip(np.asarray(rgb2, float), 0, 255) / 255
        self._rows.append([pattern, *rgb, *rgb2, scale, p0, p1, reflectivity,
                           reflectivity if reflectivity2 is None else reflectivity2])
        return len(self._rows) - 1

    def table(self) -> np.ndarray:
        return np.array(self._rows, np.float64).reshape(-1, len(COLUMNS))


def _hash(*ints: np.ndarray) -> np.ndarray:
    """A uniform value in [0, 1) per integer lattice cell (a few integer mixing rounds)."""
    h = np.full(ints[0].shape, 0x9E3779B9, np.uint32)
    for k, i in enumerate(ints):
        h ^= (i.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32) * np.uint32(0x85EBCA6B + 0x1000193 * k)
        h = (h ^ (h >> np.uint32(15))) * np.uint32(0x2C1B3C6D)
        h ^= h >> np.uint32(13)
    return h.astype(np.float64) / 4294967296.0


def _cells(p: np.ndarray, size) -> np.ndarray:
    """Blocky noise: one random value per cube of side `size` (a number or one per point)."""
    q = np.floor(p / np.reshape(size, (-1, 1)))
    return _hash(q[:, 0], q[:, 1], q[:, 2])


def _waves(p: np.ndarray, scale) -> np.ndarray:
    """Smooth pseudo-noise in [0, 1]: crossed sine waves at unrelated frequencies, period about `scale`."""
    x, y, z = (p * (2 * np.pi / np.reshape(scale, (-1, 1)))).T
    return 0.5 + (np.sin(x * 1.0 + y * 0.37) * np.sin(y * 0.83 - z * 0.51 + 1.3) + np.sin(x * 0.29 + y * 1.31 + z * 0.7)
                  * 0.5) / 3


def _weight(pattern: int, p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The second colour's weight in [0, 1] at local points `p` for rows `m` of one pattern."""
    x, y, z = p.T
    scale, p0, p1 = m[:, _C["scale"]], m[:, _C["p0"]], m[:, _C["p1"]]
    if pattern == PLAIN:
        return np.zeros(len(p))
    if pattern == NOISE:  # terrain, asphalt, concrete, gravel: smooth blotches plus grain
        return np.clip(0.75 * _waves(p, scale) + 0.35 * _cells(p, scale / 12) - 0.1, 0, 1)
    if pattern == STRIPES:  # along local axis p0 (3: the x + z diagonal, 4: y + z), period scale, duty p1
        coord = np.choose(p0.astype(int), [x, y, z, x + z, y + z])
        return ((coord / scale) % 1.0 < p1).astype(float)
    if pattern == TILES:  # paving: joints of width p0 every `scale`
        return (((x % scale) < p0) | ((y % scale) < p0)).astype(float) * 0.8 + 0.2 * _cells(p, scale)
    if pattern == BRICKS:  # courses `scale` high, bricks 2 * scale long, mortar p0 wide
        u, row = x + y, np.floor(z / scale)
        u = u + 0.5 * scale * 2 * (row % 2)
        mortar = ((z % scale) < p0) | ((u % (2 * scale)) < p0)
        return np.where(mortar, 1.0, 0.25 * _hash(row.astype(np.int64), np.floor(u / (2 * scale)).astype(np.int64)))
    if pattern == LEAVES:  # clumps of light and dark leaves
        return np.clip(1.6 * _cells(p, scale) * _waves(p, 4 * scale) + 0.6 * _cells(p, scale / 3) - 0.3, 0, 1)
    if pattern == WINDOWS:  # facade: a window in p1 of every `scale` along the wall, on floors p0 high
        along, floor = ((x + y) % scale) / scale, (z % p0) / p0
        return ((along > 1 - p1) & (floor > 0.3) & (floor < 0.85)).astype(float)
    if pattern == ROAD:  # p0 lanes `scale` wide across the slab: solid edges, dashed lane lines, and line p1 solid
        offset = y + p0 * scale / 2
        k = np.round(offset / scale)
        on_line = (np.abs(offset - k * scale) < 0.07) & (k >= 0) & (k <= p0)
        solid = (k == 0) | (k == p0) | (k == p1)
        line = on_line & (solid | ((x % 9.0) < 3.0))
        return np.where(line, 1.0, 0.08 * _cells(p, 0.05))  # asphalt grain
    if pattern == BAND:  # the second colour between local heights p0 and p1 (bus windows, a cone's band)
        return ((z >= p0) & (z <= p1)).astype(float)
    if pattern == HATCH:  # diagonal stripes, period `scale`
        return (((x + y) / scale) % 1.0 < 0.45).astype(float)
    if pattern == ZEBRA:  # crossing stripes across the road (along local y), period `scale`
        return ((y / scale) % 1.0 < 0.5).astype(float)
    if pattern == HUB:  # wheels: the rim inside radius p0 (local x, y)
        return (np.hypot(x, y) < p0).astype(float)
    if pattern == WATER:  # ripples
        return np.clip(_waves(p, scale) * 1.2 - 0.3 + 0.2 * np.sin(x * 7 + y * 3), 0, 1)
    if pattern == RAILS:  # two rails and sleepers across a gravel bed
        rail = np.abs(np.abs(y) - 0.72) < 0.05
        sleeper = ((x % 0.6) < 0.22) & (np.abs(y) < 1.2)
        return np.where(rail, 1.0, np.where(sleeper, 0.6, 0.15 * _cells(p, 0.05)))
    if pattern == BAYS:  # parking bays: lines across x every `scale`, a line along the aisle at |y| = p0
        across = ((x % scale) < 0.12) & (np.abs(y) > p0)
        return (across | (np.abs(np.abs(y) - p0) < 0.06)).astype(float)
    raise ValueError(f"unknown pattern {pattern}")


def surface(materials: np.ndarray, material: np.ndarray, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per hit: albedo (N, 3) float32 in 0..1 and LiDAR reflectivity (N,) float32 from the material rows
    `material` of `materials` at the hit points `local` (float32, in the primitive's frame; metres from the
    primitive's centre, so float32 resolves far below a texel)."""
    m = materials.astype(np.float32)[material]
    w = np.zeros(len(material), np.float32)
    pattern = m[:, _C["pattern"]].astype(np.int64)
    for pid in np.unique(pattern):
        sel = np.flatnonzero(pattern == pid)
        w[sel] = _weight(int(pid), local[sel], m[sel])
    first, second = m[:, _C["r"]:_C["b"] + 1], m[:, _C["r2"]:_C["b2"] + 1]
    albedo = first + w[:, None] * (second - first)
    refl = m[:, _C["reflectivity"]] + w * (m[:, _C["reflectivity2"]] - m[:, _C["reflectivity"]])
    return albedo, refl
