"""The CLIP-only baseline: the paper's "extend 2D open-vocabulary segmentation to 3D" comparison.

Each point seen by a camera takes the class whose text embedding is most similar to its CLIP feature.
A point no camera sees gets a LiDAR-only label from the geometry: that of the nearest seen point within
`propagate_radius_m` (a car half outside the image, the road under a dead camera's edge), with a score that
falls with the distance; points farther from every seen point stay unlabeled. Thing instances are Euclidean
clusters of same-class points.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from ov_panoptic_ros.core._clustering import radius_components
from ov_panoptic_ros.core.config import ZeroShotConfig
from ov_panoptic_ros.core.frame import UNLABELED, Instance, PanopticResult
from ov_panoptic_ros.core.geometry import fit_boxes
from ov_panoptic_ros.core.vision.features import PointFeatures, check_point_features
from ov_panoptic_ros.core.vision.text import ClassEmbeddings


class ZeroShotSegmenter:
    def __init__(self, cfg: ZeroShotConfig):
        if cfg.cluster_radius_m <= 0:
            raise ValueError(f"zeroshot.cluster_radius_m must be positive, got {cfg.cluster_radius_m}")
        if cfg.min_cluster_points < 1:
            raise ValueError(f"zeroshot.min_cluster_points must be at least 1, got {cfg.min_cluster_points}")
        if cfg.temperature <= 0:
            raise ValueError(f"zeroshot.temperature must be positive, got {cfg.temperature}")
        if not cfg.propagate_radius_m >= 0:
            raise ValueError(f"zeroshot.propagate_radius_m must be >= 0, got {cfg.propagate_radius_m}")
        self.cfg = cfg

    def __call__(self, points: torch.Tensor, sampled: PointFeatures, class_emb: ClassEmbeddings,
                 timer) -> PanopticResult:
        n = points.shape[0]
        check_point_features(sampled, n, class_emb.embeddings.shape[1])
        with timer("classify"):
            labels, scores = classify_points(sampled, class_emb, self.cfg.temperature)
        xyz = points.detach().cpu().numpy()
        with timer("propagate"):
            propagate_to_unseen(xyz, labels, scores, sampled.seen.cpu().numpy(), self.cfg.propagate_radius_m)
        with timer("cluster"):
            is_stuff = class_emb.is_stuff.cpu().numpy()
            instance_ids = cluster_things(xyz, labels, is_stuff, self.cfg.cluster_radius_m, self.cfg.min_cluster_points)
            too_small = (instance_ids == 0) & (labels != UNLABELED) & ~_lookup_stuff(labels, is_stuff)
            labels[too_small] = UNLABELED
            scores[too_small] = 0.0
            instances = describe_instances(xyz, labels, scores, instance_ids)
        return PanopticResult(labels=labels, instance_ids=instance_ids, scores=scores, instances=instances,
                              vocabulary=class_emb.vocabulary)


def classify_points(sampled: PointFeatures, class_emb: ClassEmbeddings,
                    temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Label = argmax cosine to the class embeddings; score = its softmax probability at `temperature`.

    Each seen point's row is classified and scattered to its index. Returns numpy (N,) uint16 labels
    (UNLABELED where unseen) and (N,) float32 scores (0 where unseen).
    """
    n = sampled.seen.shape[0]
    labels = np.full(n, UNLABELED, dtype=np.uint16)
    scores = np.zeros(n, dtype=np.float32)
    if sampled.index.numel():
        sim = class_emb.cosine(sampled.features)  # (S, C), max over synonyms
        prob, best = torch.softmax(sim / temperature, dim=1).max(dim=1)
        rows = sampled.index.cpu().numpy()
        labels[rows] = best.cpu().numpy().astype(np.uint16)
        scores[rows] = prob.float().cpu().numpy()
    return labels, scores


def propagate_to_unseen(points: np.ndarray, labels: np.ndarray, scores: np.ndarray, seen: np.ndarray,
                        radius: float) -> int:
    """LiDAR-only labels for the points no camera saw, in place: each takes the label of the nearest seen,
    labeled point within `radius` metres, and that point's score times (1 - distance / radius). Returns how
    many points got a label; radius 0 labels none."""
    if radius <= 0:
        return 0
    source = np.flatnonzero(seen & (labels != UNLABELED))
    target = np.flatnonzero(~seen)
    if not source.size or not target.size:
        return 0
    tree = cKDTree(points[source], balanced_tree=False, compact_nodes=False)  # built per frame: build fast
    dist, nearest = tree.query(points[target], k=1, distance_upper_bound=radius)
    hit = np.isfinite(dist)
    rows, src = target[hit], source[nearest[hit]]
    labels[rows] = labels[src]
    scores[rows] = (scores[src] * (1.0 - dist[hit] / radius)).astype(np.float32)
    return int(rows.size)


def _lookup_stuff(labels: np.ndarray, is_stuff: np.ndarray) -> np.ndarray:
    """Per point, whether its label is a stuff class (False for UNLABELED)."""
    padded = np.append(is_stuff, False)
    return padded[np.minimum(labels.astype(np.int64), is_stuff.shape[0])]


def cluster_things(points: np.ndarray, labels: np.ndarray, is_stuff: np.ndarray, radius: float,
                   min_points: int) -> np.ndarray:
    """Instance id per point: connected components of same-class thing points linked within `radius`.

    Components with fewer than `min_points` points get id 0, as do stuff and unlabeled points.
    Ids are 1..K in order of each instance's first point, so they are deterministic.
    """
    thing = (labels != UNLABELED) & ~_lookup_stuff(labels, is_stuff)
    return connected_instances(points, labels, np.flatnonzero(thing), radius, min_points)


def connected_instances(points: np.ndarray, groups: np.ndarray, rows: np.ndarray, radius: float,
                        min_points: int) -> np.ndarray:
    """(N,) uint32 instance id: the points `rows` cut into connected components (linked within `radius`, never
    across different `groups` values, which fit in uint16), ids 1..K in first-point order; components under
    `min_points` points and every other point get 0."""
    ids = np.zeros(groups.shape[0], dtype=np.uint32)
    if rows.size == 0:
        return ids
    component = radius_components_of(points[rows], groups[rows], radius)
    sizes = np.bincount(component)
    keep = sizes >= min_points
    new_id = np.zeros(sizes.shape[0], dtype=np.uint32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)  # components come in first-point order
    ids[rows] = new_id[component]
    return ids


def radius_components_of(xyz: np.ndarray, labels: np.ndarray, radius: float) -> np.ndarray:
    """Component index per point of the radius graph (distance <= radius); different classes never link.
    Components are numbered in first-point order (the C kernel `_clustering.c`)."""
    component = np.empty(xyz.shape[0], np.int64)
    radius_components(np.ascontiguousarray(xyz, np.float32), np.ascontiguousarray(labels, np.uint16), float(radius),
                      component)
    return component


def describe_instances(points: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                       instance_ids: np.ndarray) -> list[Instance]:
    """One Instance per id: the class of its first point, mean score, point count and oriented box."""
    boxes = fit_boxes(points, instance_ids)
    if not boxes.ids.size:
        return []
    mean_scores = np.bincount(instance_ids, weights=scores)[boxes.ids] / boxes.counts
    return [Instance(instance_id=int(i), label=int(labels[f]), score=float(m), center=c, size=sz, yaw=float(y),
                     num_points=int(k))
            for i, f, m, c, sz, y, k in zip(boxes.ids, boxes.first, mean_scores, boxes.centers, boxes.sizes,
                                            boxes.yaws, boxes.counts)]
