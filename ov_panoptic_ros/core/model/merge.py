"""Panoptic inference: query masks and scores -> one label and instance id per voxel, then per point.

Mask2Former / P3Former merge. Every query is scored against the active vocabulary: its label is its most
probable class and its score that probability (per-class sigmoids, see head.py; the PFC baseline passes
its ensembled probabilities). The label's `is_stuff` in the active vocabulary makes the query stuff or a
thing, whichever query it is, so learned queries can name novel stuff and stuff queries can be renamed.

As in P3Former, thing scores are multiplied by `thing_score_scale` (2) for the two decisions below, and not
capped (only the order and the threshold matter there); the scores reported per point and per instance
stay the unscaled probabilities, in [0, 1]. Queries whose scaled score is strictly above `score_threshold`
compete for voxels: each voxel goes to the query with the largest scaled score x mask probability. A query
keeps the voxels it wins where its own mask probability is at least 0.5; if what it keeps is less than
`overlap_threshold` of its original mask (prob >= 0.5), it is dropped. Things get instance ids 1, 2, ... in
descending scaled-score order; stuff gets id 0 (two stuff queries of one class are one class in the
output, so nothing needs merging); voxels no surviving query claims, and points outside the grid, are
UNLABELED.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ov_panoptic_ros.core.config import MergeConfig
from ov_panoptic_ros.core.frame import UNLABELED, Instance
from ov_panoptic_ros.core.geometry import fit_boxes
from ov_panoptic_ros.core.zeroshot import connected_instances, describe_instances

MASK_THRESHOLD = 0.5


@dataclass
class Segment:
    query: int
    label: int
    score: float
    instance_id: int  # 0 for stuff
    num_voxels: int


@dataclass
class VoxelPanoptic:
    labels: torch.Tensor  # (V,) long, UNLABELED where unclaimed
    instance_ids: torch.Tensor  # (V,) long, 0 for stuff and unclaimed
    scores: torch.Tensor  # (V,) float, the winner's (unscaled) score x mask probability, 0 where unclaimed
    segments: list[Segment]


def query_scores(probs: torch.Tensor, is_stuff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Q, C) class probabilities -> (Q,) score, (Q,) label and (Q,) is-thing (the label's class is not stuff)."""
    scores, labels = probs.max(dim=1)
    return scores, labels, ~is_stuff.to(labels.device)[labels]


def merge_panoptic(mask_logits: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                   is_thing: torch.Tensor, cfg: MergeConfig) -> VoxelPanoptic:
    """Resolve overlapping query masks (Q, V) into a panoptic labelling of the V voxels (no per-query loop)."""
    num_voxels, device = mask_logits.shape[1], mask_logits.device
    out_labels = torch.full((num_voxels,), UNLABELED, dtype=torch.long, device=device)
    out_ids = torch.zeros(num_voxels, dtype=torch.long, device=device)
    out_scores = torch.zeros(num_voxels, dtype=torch.float32, device=device)
    ranked = scores.float() * torch.where(is_thing, cfg.thing_score_scale, 1.0)
    kept = torch.nonzero(ranked > cfg.score_threshold, as_tuple=False).flatten()
    if kept.numel() == 0 or num_voxels == 0:
        return VoxelPanoptic(out_labels, out_ids, out_scores, [])
    kept = kept[torch.argsort(ranked[kept], descending=True, stable=True)]  # instance ids follow score order
    mask_probs = mask_logits[kept].float().sigmoid()
    owner = (ranked[kept, None] * mask_probs).argmax(dim=0)
    voxel_index = torch.arange(num_voxels, device=device)
    won = mask_probs[owner, voxel_index] >= MASK_THRESHOLD  # the winner's own mask covers the voxel
    original_area = (mask_probs >= MASK_THRESHOLD).sum(dim=1)
    won_area = torch.bincount(owner[won], minlength=kept.numel())
    survives = (won_area > 0) & (won_area >= cfg.overlap_threshold * original_area)
    thing = survives & is_thing[kept]
    instance_id = torch.where(thing, torch.cumsum(thing.long(), dim=0), 0)
    claimed = won & survives[owner]
    out_labels[claimed] = labels[kept][owner[claimed]].long()
    out_ids[claimed] = instance_id[owner[claimed]]
    out_scores[claimed] = scores[kept].float()[owner[claimed]] * mask_probs[owner, voxel_index][claimed]
    segments = [
        Segment(int(q), int(lab), float(sc), int(iid), int(area))
        for q, lab, sc, iid, area, ok in zip(kept.tolist(), labels[kept].tolist(), scores[kept].tolist(),
                                             instance_id.tolist(), won_area.tolist(), survives.tolist())
        if ok
    ]
    return VoxelPanoptic(out_labels, out_ids, out_scores, segments)


def voxels_to_points(result: VoxelPanoptic, point_to_voxel: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-point (labels uint16, instance ids uint32, scores float32); out-of-range points UNLABELED."""
    inside = point_to_voxel >= 0
    index = point_to_voxel.clamp_min(0)
    labels = torch.where(inside, result.labels[index], UNLABELED)
    ids = torch.where(inside, result.instance_ids[index], 0)
    scores = torch.where(inside, result.scores[index], 0.0)
    return (labels.cpu().numpy().astype(np.uint16), ids.cpu().numpy().astype(np.uint32),
            scores.cpu().numpy().astype(np.float32))


def build_instances(points: np.ndarray, instance_ids: np.ndarray, segments: list[Segment]) -> list[Instance]:
    """One oriented box per thing segment, fitted to the points that carry its id (one kernel call for all);
    a segment no point carries (every voxel has a point, so only on misuse) gets none."""
    boxes = fit_boxes(points, instance_ids)
    row = {int(i): k for k, i in enumerate(boxes.ids)}
    instances = []
    for seg in segments:
        k = row.get(seg.instance_id) if seg.instance_id else None
        if k is None:
            continue
        instances.append(Instance(seg.instance_id, seg.label, seg.score, boxes.centers[k], boxes.sizes[k],
                                  float(boxes.yaws[k]), int(boxes.counts[k])))
    return instances


def split_scattered_things(points: np.ndarray, labels: np.ndarray, instance_ids: np.ndarray, radius: float,
                           min_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, instance ids) with every thing instance cut into its connected components (points linked within
    `radius`), renumbered 1..K in first-point order; components under `min_points` points become UNLABELED."""
    rows = np.flatnonzero(instance_ids)
    ids = connected_instances(points, instance_ids, rows, radius, min_points).astype(instance_ids.dtype, copy=False)
    labels = labels.copy()
    labels[rows[ids[rows] == 0]] = UNLABELED
    return labels, ids


def point_instances(points: np.ndarray, labels: np.ndarray, ids: np.ndarray, scores: np.ndarray,
                    segments: list[Segment], cfg: MergeConfig, min_points: int):
    """(labels, ids, instances) per point: the merge's own, or with cfg.split_radius_m its components."""
    if cfg.split_radius_m <= 0:
        return labels, ids, build_instances(points, ids, segments)
    labels, ids = split_scattered_things(points, labels, ids, cfg.split_radius_m, min_points)
    return labels, ids, describe_instances(points, labels, scores, ids)
