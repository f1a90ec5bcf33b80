"""A 32-beam spinning LiDAR like the nuScenes HDL-32E: one ray per beam and azimuth step, first returns only.

Returns are made real where it matters to a network: range noise, random dropout, and weak returns lost
(dark or grazing surfaces far away); intensity follows each surface's reflectivity (paint and cones are
retroreflective) and the angle of incidence, on nuScenes' 0..255 scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.data.world.appearance import surface
from ov_panoptic_ros.data.world.raycast import cast
from ov_panoptic_ros.data.world.scene import Posed

WEAK_RETURN = 0.02  # return strength (reflectivity x cos(incidence) x (40 m / range)^2) lost with prob 1/e


@dataclass
class LidarConfig:
    beams: int = 32
    elevation_deg: tuple[float, float] = (-30.67, 10.67)  # lowest and highest beam, evenly spaced
    azimuth_steps: int = 1084  # per revolution (HDL-32E at 20 Hz)
    min_range_m: float = 1.0
    max_range_m: float = 70.0
    range_noise_m: float = 0.02  # standard deviation
    dropout: float = 0.02  # share of returns lost at random
    height_m: float = 1.84  # above the road


@dataclass
class Sweep:
    points: np.ndarray  # (N, 3) float32, LiDAR frame
    intensity: np.ndarray  # (N,) float32, 0..255
    rings: np.ndarray  # (N,) uint16 beam index, 0 = lowest
    labels: np.ndarray  # (N,) uint16
    instance_ids: np.ndarray  # (N,) uint32


def beam_directions(cfg: LidarConfig, azimuth_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit rays (R, 3) in the LiDAR frame in firing order (azimuth by azimuth, all beams each), and their rings."""
    elevation = np.radians(np.linspace(*cfg.elevation_deg, cfg.beams))
    azimuth = azimuth_offset + np.arange(cfg.azimuth_steps) * (2 * np.pi / cfg.azimuth_steps)
    az, el = np.meshgrid(azimuth, elevation, indexing="ij")
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    return dirs, np.tile(np.arange(cfg.beams, dtype=np.uint16), cfg.azimuth_steps)


def sweep(posed: Posed, materials: np.ndarray, world_T_lidar: np.ndarray, cfg: LidarConfig,
          rng: np.random.Generator) -> Sweep:
    dirs, rings = beam_directions(cfg, rng.uniform(0, 2 * np.pi / cfg.azimuth_steps))
    rotation = world_T_lidar[:3, :3]
    hits = cast(posed.table, world_T_lidar[:3, 3], dirs @ rotation.T, cfg.max_range_m)
    keep = np.flatnonzero(hits.hit & (hits.distance >= cfg.min_range_m))
    prim, distance = hits.primitive[keep], hits.distance[keep]
    _, reflectivity = surface(materials, posed.material[prim], hits.local[keep])
    cos_incidence = np.abs(np.einsum("ij,ij->i", hits.normal[keep], dirs[keep] @ rotation.T))
    strength = reflectivity * cos_incidence * (40.0 / distance) ** 2
    kept = (rng.random(len(keep)) >= cfg.dropout) & (rng.random(len(keep)) >= np.exp(-strength / WEAK_RETURN))
    keep, prim, distance = keep[kept], prim[kept], distance[kept]
    measured = distance + rng.normal(0, cfg.range_noise_m, len(keep)) if cfg.range_noise_m else distance
    intensity = 255 * np.clip(reflectivity[kept] * (0.25 + 0.75 * cos_incidence[kept]) * rng.normal(1, 0.05, len(keep)),
                              0, 1)
    return Sweep((dirs[keep] * measured[:, None]).astype(np.float32), intensity.astype(np.float32), rings[keep],
                 posed.label[prim], posed.instance[prim])
