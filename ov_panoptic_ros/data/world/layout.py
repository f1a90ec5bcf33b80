"""One seed's street: a sequence of blocks along the ego's drive, its traffic, its light and the ego's path.

Everything random about a world is drawn here from the seed's layout stream, so two seeds give two different
streets (cross-section, block order, lengths, contents, colours, light), and a seed always the same one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.data.world import blocks, kerbside, street
from ov_panoptic_ros.data.world.side import Side
from ov_panoptic_ros.data.world.appearance import Materials
from ov_panoptic_ros.data.world.classes import label_of
from ov_panoptic_ros.data.world.palette import Palette
from ov_panoptic_ros.data.world.scene import Scene, SceneBuilder

VIEW_MARGIN_M = 100.0  # street built beyond the drive's ends: the LiDAR sees 70 m, the cameras further
SKIES = {  # zenith, horizon (0..1 RGB), sun strength, ambient
    "clear": ((0.27, 0.47, 0.80), (0.72, 0.81, 0.90), 0.75, 0.45),
    "hazy": ((0.55, 0.63, 0.73), (0.80, 0.81, 0.83), 0.55, 0.55),
    "overcast": ((0.62, 0.64, 0.67), (0.76, 0.77, 0.79), 0.25, 0.75),
    "evening": ((0.25, 0.36, 0.62), (0.92, 0.72, 0.56), 0.65, 0.4),
}


@dataclass
class Lighting:
    sun: np.ndarray  # (3,) unit vector towards the sun, world frame
    zenith: np.ndarray  # (3,) sky colour straight up, 0..1
    horizon: np.ndarray  # (3,) sky colour at the horizon (also the haze colour)
    sun_strength: float
    ambient: float
    visibility_m: float  # distance at which haze hides 63% of a surface

    @staticmethod
    def random(rng: np.random.Generator) -> Lighting:
        name = rng.choice(list(SKIES))
        zenith, horizon, sun, ambient = SKIES[name]
        elevation = rng.uniform(0.15, 0.45) if name == "evening" else rng.uniform(0.35, 1.2)
        azimuth = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                              np.sin(elevation)])
        tint = rng.normal(1.0, 0.03, 3)
        return Lighting(direction, np.array(zenith) * tint, np.array(horizon) * tint, sun * rng.uniform(0.85, 1.15),
                        ambient * rng.uniform(0.9, 1.1), rng.uniform(250, 900))


@dataclass
class EgoPath:
    """The ego drives along +x in its lane, weaving gently, and bobs a little on its suspension."""

    lane_y: float
    speed: float  # m/s
    height: float  # LiDAR above the road
    weave: np.ndarray  # (3,): amplitude (m), angular frequency (rad/s), phase
    bob: np.ndarray  # (3,): pitch amplitude, roll amplitude (rad), angular frequency

    def pose(self, t: float) -> np.ndarray:
        """world_T_lidar (4, 4) at time t."""
        amp, freq, phase = self.weave
        y = self.lane_y + amp * np.sin(freq * t + phase)
        yaw = np.arctan2(amp * freq * np.cos(freq * t + phase), max(self.speed, 0.5))
        pitch, roll = self.bob[:2] * np.sin(self.bob[2] * t + np.array([0.0, 1.3]))
        cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
        T = np.eye(4)
        T[:3, :3] = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]) @ np.array(
            [[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]]) @ np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        T[:3, 3] = (self.speed * t, y, self.height)
        return T


@dataclass
class Layout:
    scene: Scene
    ego: EgoPath
    lighting: Lighting
    cross_section: street.CrossSection
    blocks: list[tuple[float, float, str, str]]  # x0, x1, right side's kind, left side's kind ("junction": both)


def _block_sequence(rng: np.random.Generator, x0: float, x1: float, ego_end: float):
    """Blocks covering [x0, x1]. Each side draws its kinds from its own shuffled bag once the blocks reach the
    drive (behind the start they are drawn freely), so every kind comes round while the ego drives; a
    junction comes at least once, by the drive's mid-point."""
    bags: list[list[str]] = [[], []]
    junction_done, out, at = False, [], x0
    while at < x1:
        if (not junction_done and at > min(ego_end / 2, x1 - 60)) or (at > -30 and rng.random() < 0.18):
            length = rng.uniform(45, 75)
            out.append((at, at + length, "junction", "junction"))
            junction_done = junction_done or at + length > -30
        else:
            length, kinds = rng.uniform(25, 50), []
            for bag in bags:
                if at + length < 0:
                    kinds.append(str(rng.choice(blocks.KINDS)))
                    continue
                if not bag:
                    bag.extend(rng.permutation(["buildings", "buildings", *blocks.KINDS[1:]]))
                kinds.append(str(bag.pop()))
            out.append((at, at + length, *kinds))
        at += length
    return out


def make_layout(rng: np.random.Generator, duration_s: float, lidar_height: float) -> Layout:
    materials = Materials()
    pal, sb = Palette(materials, rng), SceneBuilder()
    cs = street.CrossSection.random(rng)
    ego_lane = int(rng.integers(cs.lanes))
    speed = rng.uniform(2.5, 10.0)
    x0, x1 = -VIEW_MARGIN_M, speed * duration_s + VIEW_MARGIN_M
    sb.slab(x0 - 300, x1 + 300, -300, 300, -0.04, label_of("terrain"), pal.grass(), thickness=1.0)
    sequence = _block_sequence(rng, x0, x1, speed * duration_s)
    reach = max(cs.frontage(0), cs.frontage(1)) + 45
    for a, b, right, left in sequence:
        if right == "junction":
            ranges = street.junction(sb, pal, rng, cs, a, b, reach)
            kinds = ["buildings", "buildings"]
        else:
            street.road(sb, pal, cs, a, b)
            ranges, kinds = [(a, b)], [right, left]
        for side in (0, 1):
            for lo, hi in ranges:
                _side(sb, pal, rng, cs, side, lo, hi, kinds[side], duration_s)
    street.traffic(sb, pal, rng, cs, x0, x1, duration_s, ego_lane, speed)
    street.walkers(sb, pal, rng, cs, x0, x1, duration_s)
    weave = np.array([rng.uniform(0, 0.25) * min(1.0, speed / 5), rng.uniform(0.2, 0.6), rng.uniform(0, 6.3)])
    bob = np.array([rng.uniform(0, 0.008), rng.uniform(0, 0.006), rng.uniform(3, 8)])
    ego = EgoPath(cs.lane_centre(ego_lane), speed, lidar_height, weave, bob)
    return Layout(sb.build(materials.table()), ego, Lighting.random(rng), cs, sequence)


def _side(sb: SceneBuilder, pal: Palette, rng: np.random.Generator, cs: street.CrossSection, side: int, x0: float,
          x1: float, kind: str, duration: float) -> None:
    if x1 - x0 < 3:
        return
    clear = ([], [])
    if kind == "construction":  # the closure takes the parking lane, or else the kerb band
        kerbside.closure(sb, pal, rng, cs, side, x0, x1)
    elif cs.parking[side]:
        clear = kerbside.parking_lane(sb, pal, rng, cs, side, x0, x1, bus_stop=rng.random() < 0.35)
    if kind != "construction" or cs.parking[side]:
        kerbside.kerb_band(sb, pal, rng, cs, side, x0, x1, trees=bool(cs.parking[side]) and kind != "construction",
                           clear=clear)
    kerbside.frontage_band(sb, pal, rng, cs, side, x0, x1)
    getattr(blocks, kind)(Side(sb, pal, rng, cs, side, x0, x1, duration))
