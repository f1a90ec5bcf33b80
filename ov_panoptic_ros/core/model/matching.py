"""Hungarian matching of the learnable queries to ground-truth thing instances (P3Former's costs).

Cost of query q for instance k = class focal cost (the class's positive minus negative focal term, gamma 4)
+ binary mask focal cost (mean over valid voxels, gamma 2) + dice cost, weighted 1 / 1 / 2. The first decoder
output (the input-independent initial queries, which P3Former gives no class prediction) is matched on the
mask terms only: `use_class=False`.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ov_panoptic_ros.core.config import LossConfig

EPS = 1e-8
DICE_SMOOTH = 1.0


def focal_terms(logits: torch.Tensor, alpha: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise focal cost of calling each logit positive, and of calling it negative."""
    p = logits.sigmoid()
    pos = -(p + EPS).log() * alpha * (1 - p) ** gamma
    neg = -(1 - p + EPS).log() * (1 - alpha) * p ** gamma
    return pos, neg


def matching_cost(class_logits: torch.Tensor, mask_logits: torch.Tensor, gt_labels: torch.Tensor,
                  gt_masks: torch.Tensor, cfg: LossConfig, use_class: bool = True) -> torch.Tensor:
    """(Q, K) cost of assigning query q to instance k; masks are (., V) over the valid voxels only."""
    gt = gt_masks.float()
    mpos, mneg = focal_terms(mask_logits, cfg.mask_focal_alpha, cfg.mask_focal_gamma)
    cost = cfg.match_mask_weight * (mpos @ gt.T + mneg @ (1 - gt).T) / max(1, gt.shape[1])
    p = mask_logits.sigmoid()
    dice = 1 - (2 * p @ gt.T + DICE_SMOOTH) / (p.sum(1, keepdim=True) + gt.sum(1).unsqueeze(0) + DICE_SMOOTH)
    cost = cost + cfg.match_dice_weight * dice
    if use_class:
        pos, neg = focal_terms(class_logits, cfg.class_focal_alpha, cfg.class_focal_gamma)
        cost = cost + cfg.match_class_weight * (pos[:, gt_labels] - neg[:, gt_labels])
    return cost


@torch.no_grad()
def hungarian_match(class_logits: torch.Tensor, mask_logits: torch.Tensor, gt_labels: torch.Tensor,
                    gt_masks: torch.Tensor, cfg: LossConfig, use_class: bool = True):
    """(query indices, instance indices) of the minimum-cost one-to-one assignment."""
    device = mask_logits.device
    if gt_labels.numel() == 0 or mask_logits.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty
    cost = matching_cost(class_logits.float(), mask_logits.float(), gt_labels, gt_masks, cfg, use_class)
    rows, cols = linear_sum_assignment(np.nan_to_num(cost.cpu().numpy(), nan=1e6, posinf=1e6, neginf=-1e6))
    return (torch.as_tensor(rows, dtype=torch.long, device=device),
            torch.as_tensor(cols, dtype=torch.long, device=device))
