"""Camera images: one ray per pixel centre, the surface's pattern lit by sun and sky, haze, sensor noise; and,
from the same rays, the per-pixel class, instance and distance that a 2D teacher is trained on.

No shadows or reflections: a camera still tells classes apart by colour, texture and shape, and the labels
stay exact (a pixel's label is the class of the surface its centre ray meets).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.core.frame import UNLABELED, CameraModel
from ov_panoptic_ros.data.world.appearance import surface
from ov_panoptic_ros.data.world.layout import Lighting
from ov_panoptic_ros.data.world.raycast import cast
from ov_panoptic_ros.data.world.scene import Posed

NOISE_SIGMA = 2.5  # sensor noise, grey levels


@dataclass
class Rendering:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    labels: np.ndarray  # (H, W) uint16, UNLABELED for the sky
    instance_ids: np.ndarray  # (H, W) uint32, 0 for stuff and sky
    depth: np.ndarray  # (H, W) float32 distance along the pixel's ray in metres, inf for the sky


def render(posed: Posed, materials: np.ndarray, light: Lighting, cam: CameraModel, rays: np.ndarray,
           world_T_lidar: np.ndarray, rng: np.random.Generator) -> Rendering:
    """`rays`: the camera's pixel rays in its optical frame (cameras.image_rays)."""
    world_T_cam = world_T_lidar @ np.linalg.inv(cam.T_cam_lidar)
    dirs = rays @ world_T_cam[:3, :3].T
    hits = cast(posed.table, world_T_cam[:3, 3], dirs)
    hit = hits.hit
    prim = hits.primitive[hit]
    albedo, _ = surface(materials, posed.material[prim], hits.local[hit])
    normal = hits.normal[hit]
    gain = np.float32(255 * rng.uniform(0.95, 1.05))  # exposure
    irradiance = (np.float32(light.ambient) * (0.75 + 0.25 * normal[:, 2])  # facing up: more sky light
                  + np.float32(light.sun_strength) * np.maximum(normal @ light.sun.astype(np.float32), 0))
    fog = np.exp(hits.distance[hit] / -light.visibility_m).astype(np.float32)[:, None]
    rgb = np.empty((len(dirs), 3), np.float32)
    rgb[hit] = (fog * irradiance[:, None]) * albedo + (1 - fog) * light.horizon.astype(np.float32)
    rgb[~hit] = _sky(dirs[~hit], light)
    rgb *= gain
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(NOISE_SIGMA)
    shape = (cam.height, cam.width)
    labels = np.full(len(dirs), UNLABELED, np.uint16)
    instances = np.zeros(len(dirs), np.uint32)
    labels[hit], instances[hit] = posed.label[prim], posed.instance[prim]
    return Rendering(np.clip(rgb, 0, 255).astype(np.uint8).reshape(*shape, 3), labels.reshape(shape),
                     instances.reshape(shape), hits.distance.astype(np.float32).reshape(shape))


def _sky(dirs: np.ndarray, light: Lighting) -> np.ndarray:
    """Horizon to zenith gradient with a glow around the sun."""
    up = np.clip(dirs[:, 2] * 2.5, 0, 1)[:, None] ** 0.7
    glow = np.clip(dirs @ light.sun, 0, 1)[:, None] ** 32 * 0.35
    return ((1 - up) * light.horizon + up * light.zenith + glow).astype(np.float32)
