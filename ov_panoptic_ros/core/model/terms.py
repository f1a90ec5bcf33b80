"""The loss terms, each on plain tensors: focal, dice, and the paper's two distillations toward frozen CLIP.

- Object-level (L_O): each supervised query's class embedding is pulled (cosine) toward the CLIP feature
  pooled inside the query's *own predicted* mask. The pooling weights are detached: L_O teaches the class
  embedding, it must not shrink masks toward wherever CLIP happens to agree.
- Voxel-level (L_V): each camera-seen voxel's CLIP feature is reconstructed from the queries,
  f_rec(v) = normalize(sum_q sigmoid(mask_q(v)) * normalize(class_embed_q)), and compared with the frozen
  voxel feature. It needs no labels, so novel regions are taught too, and its gradient reaches both the
  masks and the class embeddings. The class embeddings are normalized first because the classifier only
  uses their direction; otherwise a query could dominate the sum by growing its norm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.model.matching import DICE_SMOOTH


def sigmoid_focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Elementwise sigmoid focal loss (RetinaNet)."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def dice_loss(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(M,) 1 - soft dice per mask row (smoothed by 1, as Mask2Former)."""
    p = mask_logits.sigmoid()
    inter = (p * targets).sum(dim=1)
    return 1 - (2 * inter + DICE_SMOOTH) / (p.sum(dim=1) + targets.sum(dim=1) + DICE_SMOOTH)


def pool_in_masks(weights: torch.Tensor, voxel_clip: torch.Tensor, seen: torch.Tensor):
    """(Q, D) unit CLIP feature pooled with (Q, V) voxel weights over the seen voxels, and (Q,) whether any
    seen voxel had weight. Each voxel counts once (its feature is already the mean of its points)."""
    w = weights.float() * seen.float().unsqueeze(0)
    return F.normalize(w @ voxel_clip.float(), dim=1), w.sum(dim=1) > 0


def pooling_weights(mask_logits: torch.Tensor, pooling: str) -> torch.Tensor:
    """Detached pooling weights from mask logits: probabilities (soft) or probability > 0.5 (binary)."""
    if pooling == "soft":
        return mask_logits.detach().sigmoid()
    return (mask_logits.detach() > 0).float()


def object_distill(class_embed: torch.Tensor, mask_logits: torch.Tensor, voxel_clip: torch.Tensor,
                   seen: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean of 1 - cos(class embedding, CLIP pooled in the same query's predicted mask) over the (M, .)
    queries given whose mask covers a seen voxel; zero (in the graph) when none does."""
    target, has_clip = pool_in_masks(pooling_weights(mask_logits, pooling), voxel_clip, seen)
    if not has_clip.any():
        return class_embed.sum() * 0.0
    return (1 - F.cosine_similarity(class_embed[has_clip].float(), target[has_clip], dim=1)).mean()


def reconstruct_voxel_clip(mask_logits: torch.Tensor, class_embed: torch.Tensor) -> torch.Tensor:
    """(V, D) unit f_rec: the queries' normalized class embeddings weighted by their mask probabilities."""
    return F.normalize(mask_logits.float().sigmoid().T @ F.normalize(class_embed.float(), dim=1), dim=1)


def voxel_distill(mask_logits: torch.Tensor, class_embed: torch.Tensor, voxel_clip: torch.Tensor,
                  seen: torch.Tensor, distance: str) -> torch.Tensor:
    """Distance between f_rec and the frozen CLIP feature, averaged over seen voxels: 1 - cosine, or the
    L1 distance averaged over voxels and channels (as mean-reduced L1 loss)."""
    if not seen.any():
        return (mask_logits.sum() + class_embed.sum()) * 0.0
    rec = reconstruct_voxel_clip(mask_logits[:, seen], class_embed)
    target = voxel_clip[seen].detach().float()
    if distance == "cosine":
        return (1 - (rec * target).sum(dim=1)).mean()
    return (rec - target).abs().mean()
