"""A small labelled street scene for exercising the 3D network alone (benchmarks and tests).

No cameras: `seen` marks the points inside two camera-like azimuth wedges (front and left), and CLIP
features are random unit vectors, one direction per class plus noise, so that the distillation targets
carry class information the way real CLIP features do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.vision.text import ClassEmbeddings

# Class indices of the default (tiny) vocabulary: car, truck, pedestrian, road, building, vegetation.
CAR, TRUCK, PEDESTRIAN, ROAD, BUILDING, VEGETATION = range(6)
DEFAULT_VOCABULARY = Vocabulary(("car", "truck", "pedestrian,person", "road", "building", "vegetation"),
                                ("road", "building", "vegetation"))
CAMERA_WEDGES_DEG = ((0.0, 35.0), (90.0, 35.0))  # (center azimuth, half width): two cameras


@dataclass
class SyntheticScene:
    points: np.ndarray  # (N, 3) float32
    labels: np.ndarray  # (N,) int64 class index
    instance_ids: np.ndarray  # (N,) int64, 0 for stuff, 1.. per thing
    seen: np.ndarray  # (N,) bool, inside a camera wedge


def _box_surface(rng, center, size, yaw, n) -> np.ndarray:
    """Points on the sides and top of an oriented box (what a LiDAR sees of a vehicle)."""
    local = rng.uniform(-0.5, 0.5, size=(n, 3))
    face = rng.integers(0, 5, size=n)  # 4 sides + top
    axis = np.where(face < 2, 0, np.where(face < 4, 1, 2))
    local[np.arange(n), axis] = np.where(face % 2 == 0, 0.5, -0.5)
    local *= np.asarray(size)
    c, s = np.cos(yaw), np.sin(yaw)
    xy = local[:, :2] @ np.array([[c, s], [-s, c]])
    return np.column_stack([xy + np.asarray(center[:2]), local[:, 2] + center[2]])


def synthetic_scene(num_points: int = 4000, seed: int = 0, num_cars: int = 4) -> SyntheticScene:
    """Road plane, two building walls, a vegetation strip, `num_cars` cars, a truck and a pedestrian."""
    if num_points < 200:
        raise ValueError(f"synthetic_scene needs at least 200 points, got {num_points}")
    rng = np.random.default_rng(seed)
    parts, labels, ids = [], [], []

    def add(pts, label, instance=0):
        parts.append(pts)
        labels.append(np.full(len(pts), label))
        ids.append(np.full(len(pts), instance))

    n_thing = num_points // 4
    things = [(CAR, (rng.uniform(-20, 20), rng.uniform(-6, 6), 0.8), (4.5, 1.9, 1.6)) for _ in range(num_cars)]
    things += [(TRUCK, (12.0, -10.0, 1.4), (8.0, 2.5, 2.8)), (PEDESTRIAN, (6.0, 5.0, 0.9), (0.6, 0.6, 1.8))]
    per_thing = n_thing // len(things)
    for instance, (label, center, size) in enumerate(things, start=1):
        add(_box_surface(rng, center, size, rng.uniform(-np.pi, np.pi), per_thing), label, instance)
    rest = num_points - per_thing * len(things)
    n_road, n_wall = rest // 2, rest // 6
    n_veg = rest - n_road - 2 * n_wall
    add(np.column_stack([rng.uniform(-30, 30, (n_road, 2)), rng.normal(0, 0.03, n_road)]), ROAD)
    for y in (-15.0, 15.0):
        add(np.column_stack([rng.uniform(-30, 30, n_wall), y + rng.normal(0, 0.05, n_wall),
                             rng.uniform(0, 2.9, n_wall)]), BUILDING)  # inside every preset's z range
    add(np.column_stack([rng.uniform(-30, 30, n_veg), rng.uniform(10, 14, n_veg), rng.uniform(0, 3, n_veg)]),
        VEGETATION)
    points = np.concatenate(parts).astype(np.float32)
    azimuth = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    seen = np.zeros(len(points), dtype=bool)
    for center, half in CAMERA_WEDGES_DEG:
        seen |= np.abs((azimuth - center + 180.0) % 360.0 - 180.0) < half
    return SyntheticScene(points, np.concatenate(labels), np.concatenate(ids), seen)


def random_class_embeddings(vocabulary: Vocabulary, dim: int, seed: int = 0,
                            device: torch.device | str = "cpu") -> ClassEmbeddings:
    """One random unit row per synonym, as TextEncoder would produce for a CLIP model of width `dim`."""
    gen = torch.Generator().manual_seed(seed)
    synonym_class = [c for c, syns in enumerate(vocabulary.synonyms) for _ in syns]
    rows = F.normalize(torch.randn(len(synonym_class), dim, generator=gen), dim=1)
    return ClassEmbeddings(vocabulary, rows.to(device), torch.tensor(synonym_class, device=device),
                           torch.from_numpy(vocabulary.is_stuff).to(device), f"random-{dim}d-seed{seed}")


def class_aligned_point_features(labels: np.ndarray, class_emb: ClassEmbeddings, noise: float = 0.5,
                                 seed: int = 0) -> torch.Tensor:
    """(N, D) unit features near each point's class text embedding (first synonym), like CLIP's."""
    gen = torch.Generator().manual_seed(seed)
    first_row = {int(c): s for s, c in reversed(list(enumerate(class_emb.synonym_class.tolist())))}
    rows = torch.tensor([first_row[int(c)] for c in labels])
    base = class_emb.embeddings.cpu().float()[rows]
    return F.normalize(base + noise * torch.randn(base.shape, generator=gen) / base.shape[1] ** 0.5, dim=1)
