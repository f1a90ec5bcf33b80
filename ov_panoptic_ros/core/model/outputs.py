"""What the network's forward pass returns: every decoder output's predictions plus the frozen CLIP voxel
features the distillation losses compare them with."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ov_panoptic_ros.core.frame import Vocabulary


@dataclass
class NetworkOutputs:
    """Query rows: [0, num_learned_queries) are the learnable queries, the rest the base-stuff queries, one
    per `stuff_names` entry. Lists run over decoder outputs: the initial queries first, the last layer last."""

    mask_logits: list[torch.Tensor]  # (Q, V)
    class_logits: list[torch.Tensor]  # (Q, C), C = len(vocabulary.classes)
    class_embed: list[torch.Tensor]  # (Q, D) in CLIP space
    num_learned_queries: int
    stuff_names: tuple[str, ...]  # the training-vocabulary stuff class of each base-stuff query
    vocabulary: Vocabulary  # the vocabulary `class_logits` score
    voxel_clip: torch.Tensor  # (V, D) frozen CLIP feature per voxel (mean of its seen points), unit; 0 if unseen
    voxel_seen: torch.Tensor  # (V,) bool, some camera saw a point of the voxel
    point_to_voxel: torch.Tensor  # (N,) long, -1 outside the grid
    voxel_coords: torch.Tensor  # (V, 3) int32 grid cells
    position_mask_logits: list[torch.Tensor] | None = None  # (Q, V) position-only mask terms (head.position_aware)

    @property
    def num_voxels(self) -> int:
        return int(self.voxel_clip.shape[0])
