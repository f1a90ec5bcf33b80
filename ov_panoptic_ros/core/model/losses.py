"""Training losses: P3Former's matched panoptic losses plus the paper's two CLIP distillation losses.

Targets are per point (what datasets give); they become per-voxel segments by majority vote among each
voxel's labelled points. Voxels with no labelled point (ignored classes, e.g. the novel classes held
out in open-vocabulary training) are left out of every mask loss, so the network is never taught that
an unlabelled object is background.

- Matching (per decoder output): thing queries <-> GT thing instances by Hungarian assignment on
  P3Former's costs: sigmoid focal class cost (weight 1) + binary mask focal cost (weight 1) + dice cost
  (weight 2). Stuff queries are not matched: stuff query s is supervised by its class's GT mask.
- Class: sigmoid focal loss (alpha 0.25, gamma 2) over all classes for every query; matched thing
  queries and stuff queries whose class is present get their class as positive, everything else is
  all-negative ('no object'). Normalized by the number of positives.
- Masks: sigmoid focal (alpha 0.25, gamma 2, mean over voxels) and dice, for matched thing queries and
  present stuff queries, averaged over those queries. Weights 1 and 2 (P3Former).
- Object-level distillation: 1 - cos(class embedding of a supervised query, CLIP feature of its GT
  segment), the CLIP feature being the normalized mean of the seen points' CLIP features in the segment.
- Voxel-level distillation: 1 - cos(3D voxel embedding, frozen fused CLIP voxel feature), over voxels
  some camera saw.
Deep supervision: class, mask, dice and object losses are summed over every decoder output (the initial
queries and each layer), each with its own matching.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from ov_panoptic_ros.core.frame import UNLABELED

EPS = 1e-8
DICE_SMOOTH = 1.0


@dataclass
class LossConfig:
    class_weight: float = 1.0
    mask_weight: float = 1.0
    dice_weight: float = 2.0
    object_distill_weight: float = 1.0
    voxel_distill_weight: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    match_class_weight: float = 1.0
    match_mask_weight: float = 1.0
    match_dice_weight: float = 2.0
    deep_supervision: bool = True


@dataclass
class VoxelTargets:
    """GT segments on voxels. Thing masks are one row per instance; stuff masks follow the stuff queries."""

    thing_masks: torch.Tensor  # (K, V) bool
    thing_labels: torch.Tensor  # (K,) long
    stuff_masks: torch.Tensor  # (S, V) bool, row s for the class of stuff query s
    valid: torch.Tensor  # (V,) bool, voxels with a labelled point

    @property
    def stuff_present(self) -> torch.Tensor:
        return self.stuff_masks.any(dim=1)


def _majority_segment(point_to_voxel, segment, num_voxels) -> torch.Tensor:
    """(V,) the most frequent segment id among each voxel's points, -1 where the voxel has none."""
    keep = (point_to_voxel >= 0) & (segment >= 0)
    voxel, seg = point_to_voxel[keep], segment[keep]
    out = torch.full((num_voxels,), -1, dtype=torch.long, device=point_to_voxel.device)
    if voxel.numel() == 0:
        return out
    num_segments = int(seg.max()) + 1
    pairs, counts = torch.unique(voxel * num_segments + seg, return_counts=True)
    pair_voxel, pair_seg = pairs // num_segments, pairs % num_segments
    order = torch.argsort(pair_voxel * (int(counts.max()) + 1) - counts, stable=True)  # voxel asc, count desc
    pair_voxel, pair_seg = pair_voxel[order], pair_seg[order]
    first = torch.ones_like(pair_voxel, dtype=torch.bool)
    first[1:] = pair_voxel[1:] != pair_voxel[:-1]
    out[pair_voxel[first]] = pair_seg[first]
    return out


def voxel_targets(labels: torch.Tensor, instance_ids: torch.Tensor, point_to_voxel: torch.Tensor, num_voxels: int,
                  stuff_classes: torch.Tensor, num_classes: int) -> VoxelTargets:
    """Per-point class labels (UNLABELED = ignore) and instance ids -> per-voxel GT segments."""
    labels, instance_ids = labels.long(), instance_ids.long()
    if labels.shape != point_to_voxel.shape or instance_ids.shape != point_to_voxel.shape:
        raise ValueError(
            f"targets need one label and instance id per point ({point_to_voxel.shape[0]}),"
            f" got {tuple(labels.shape)} and {tuple(instance_ids.shape)}"
        )
    labelled = labels != UNLABELED
    if labelled.any() and (labels[labelled].min() < 0 or labels[labelled].max() >= num_classes):
        found = labels[labelled].unique().tolist()
        raise ValueError(f"target labels must be in [0, {num_classes}) or UNLABELED, got {found}")
    is_stuff = torch.zeros(num_classes, dtype=torch.bool, device=labels.device)
    is_stuff[stuff_classes] = True
    instance = torch.where(is_stuff[labels.clamp(0, num_classes - 1)], 0, instance_ids.clamp_min(0))
    width = int(instance.max()) + 1 if instance.numel() else 1
    key = torch.where(labelled, labels * width + instance, -1)
    keys, segment = torch.unique(key, return_inverse=True)
    segment = torch.where(labelled, segment, -1)
    voxel_segment = _majority_segment(point_to_voxel, segment, num_voxels)
    seg_label = torch.div(keys, width, rounding_mode="floor")
    present = torch.unique(voxel_segment[voxel_segment >= 0])
    masks = voxel_segment.unsqueeze(0) == present.unsqueeze(1)  # (P, V)
    present_labels = seg_label[present]
    thing = ~is_stuff[present_labels]
    stuff_masks = torch.zeros((stuff_classes.numel(), num_voxels), dtype=torch.bool, device=labels.device)
    for row, cls in enumerate(stuff_classes.tolist()):
        stuff_masks[row] = masks[present_labels == cls].any(dim=0)
    return VoxelTargets(masks[thing], present_labels[thing], stuff_masks, voxel_segment >= 0)


def sigmoid_focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Elementwise sigmoid focal loss (RetinaNet)."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def dice_loss(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(M,) 1 - soft dice per mask row."""
    p = mask_logits.sigmoid()
    inter = (p * targets).sum(dim=1)
    return 1 - (2 * inter + DICE_SMOOTH) / (p.sum(dim=1) + targets.sum(dim=1) + DICE_SMOOTH)


def _focal_terms(logits: torch.Tensor, alpha: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Focal cost of calling each logit positive and of calling it negative."""
    p = logits.sigmoid()
    pos = -(p + EPS).log() * alpha * (1 - p) ** gamma
    neg = -(1 - p + EPS).log() * (1 - alpha) * p ** gamma
    return pos, neg


def matching_cost(class_logits: torch.Tensor, mask_logits: torch.Tensor, gt_labels: torch.Tensor,
                  gt_masks: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """(T, K) cost of assigning thing query t to GT instance k (masks over valid voxels only)."""
    pos, neg = _focal_terms(class_logits, cfg.focal_alpha, cfg.focal_gamma)
    class_cost = pos[:, gt_labels] - neg[:, gt_labels]
    gt = gt_masks.float()
    mpos, mneg = _focal_terms(mask_logits, cfg.focal_alpha, cfg.focal_gamma)
    mask_cost = (mpos @ gt.T + mneg @ (1 - gt).T) / max(1, gt.shape[1])
    p = mask_logits.sigmoid()
    dice_cost = 1 - (2 * p @ gt.T + DICE_SMOOTH) / (p.sum(1, keepdim=True) + gt.sum(1).unsqueeze(0) + DICE_SMOOTH)
    return cfg.match_class_weight * class_cost + cfg.match_mask_weight * mask_cost + cfg.match_dice_weight * dice_cost


@torch.no_grad()
def hungarian_match(class_logits, mask_logits, gt_labels, gt_masks, cfg: LossConfig):
    """(query indices, GT indices) of the minimum-cost one-to-one assignment."""
    device = class_logits.device
    if gt_labels.numel() == 0 or class_logits.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    cost = matching_cost(class_logits.float(), mask_logits.float(), gt_labels, gt_masks, cfg)
    rows, cols = linear_sum_assignment(np.nan_to_num(cost.cpu().numpy(), nan=1e6, posinf=1e6, neginf=-1e6))
    return (torch.as_tensor(rows, dtype=torch.long, device=device),
            torch.as_tensor(cols, dtype=torch.long, device=device))


def segment_clip_features(masks: torch.Tensor, clip_mean: torch.Tensor, seen_count: torch.Tensor):
    """(M, D) normalized mean CLIP feature of the seen points in each voxel mask, and (M,) whether any was seen."""
    weights = masks.float() * seen_count.float().unsqueeze(0)
    sums = weights @ clip_mean.float()
    return F.normalize(sums, dim=1), weights.sum(dim=1) > 0


class PanopticLoss:
    """`PanopticLoss(cfg)(outputs, targets)` -> {'cls', 'mask', 'dice', 'object_distill', 'voxel_distill', 'total'}.

    `outputs` is PanopticNetwork.forward's dict; `targets` has per-point 'labels' (UNLABELED = ignore)
    and 'instance_ids'. Named losses are unweighted sums over decoder outputs; 'total' is the weighted sum.
    """

    def __init__(self, cfg: LossConfig | None = None):
        self.cfg = cfg or LossConfig()

    def __call__(self, outputs: dict, targets: dict) -> dict[str, torch.Tensor]:
        num_voxels = outputs["mask_logits"][-1].shape[1]
        num_classes = outputs["class_logits"][-1].shape[1]
        gt = voxel_targets(targets["labels"], targets["instance_ids"], outputs["point_to_voxel"], num_voxels,
                           outputs["stuff_classes"], num_classes)
        layers = range(len(outputs["mask_logits"])) if self.cfg.deep_supervision else [len(outputs["mask_logits"]) - 1]
        totals: dict[str, torch.Tensor] = {}
        for i in layers:
            layer = self.layer_losses(outputs["mask_logits"][i], outputs["class_logits"][i], outputs["class_embed"][i],
                                      outputs, gt)
            for name, value in layer.items():
                totals[name] = totals.get(name, 0.0) + value
        totals["voxel_distill"] = self.voxel_distill(outputs)
        c = self.cfg
        totals["total"] = (c.class_weight * totals["cls"] + c.mask_weight * totals["mask"]
                           + c.dice_weight * totals["dice"] + c.object_distill_weight * totals["object_distill"]
                           + c.voxel_distill_weight * totals["voxel_distill"])
        return totals

    def supervised(self, mask_logits, class_logits, outputs: dict, gt: VoxelTargets):
        """(query rows, their GT masks (M, V), their class) for matched things and present stuff."""
        num_things = outputs["num_thing_queries"]
        valid = gt.valid
        query, match = hungarian_match(class_logits[:num_things], mask_logits[:num_things][:, valid],
                                       gt.thing_labels, gt.thing_masks[:, valid], self.cfg)
        present = torch.nonzero(gt.stuff_present, as_tuple=False).flatten()
        rows = torch.cat([query, num_things + present])
        masks = torch.cat([gt.thing_masks[match], gt.stuff_masks[present]])
        classes = torch.cat([gt.thing_labels[match], outputs["stuff_classes"][present].long()])
        return rows, masks, classes

    def layer_losses(self, mask_logits, class_logits, class_embed, outputs: dict, gt: VoxelTargets) -> dict:
        c = self.cfg
        rows, masks, classes = self.supervised(mask_logits, class_logits, outputs, gt)
        class_targets = torch.zeros_like(class_logits)
        class_targets[rows, classes] = 1.0
        num_pos = max(1, rows.numel())
        losses = {"cls": sigmoid_focal(class_logits, class_targets, c.focal_alpha, c.focal_gamma).sum() / num_pos}
        zero = mask_logits.sum() * 0.0  # keeps the graph when nothing is supervised
        if rows.numel() == 0:
            losses.update(mask=zero, dice=zero, object_distill=zero)
            return losses
        pred = mask_logits[rows][:, gt.valid]
        target = masks[:, gt.valid].float()
        losses["mask"] = sigmoid_focal(pred, target, c.focal_alpha, c.focal_gamma).mean(dim=1).sum() / num_pos
        losses["dice"] = dice_loss(pred, target).sum() / num_pos
        losses["object_distill"] = self.object_distill(class_embed[rows], masks, outputs, zero)
        return losses

    @staticmethod
    def object_distill(embeddings: torch.Tensor, masks: torch.Tensor, outputs: dict, zero: torch.Tensor):
        target, has_clip = segment_clip_features(masks, outputs["voxel_clip_mean"], outputs["voxel_seen_count"])
        if not has_clip.any():
            return zero
        return (1 - F.cosine_similarity(embeddings[has_clip].float(), target[has_clip], dim=1)).mean()

    @staticmethod
    def voxel_distill(outputs: dict) -> torch.Tensor:
        seen = outputs["voxel_seen_count"] > 0
        embed = outputs["voxel_embed"]
        if not seen.any():
            return embed.sum() * 0.0
        target = outputs["voxel_clip"][seen].detach().float()
        return (1 - F.cosine_similarity(embed[seen].float(), target, dim=1)).mean()
