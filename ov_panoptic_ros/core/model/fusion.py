"""The paper's multimodal fusion: learned per-voxel LiDAR features joined with frozen per-voxel CLIP features.

A voxel's CLIP feature is the mean of the CLIP features of its camera-seen points, L2-normalized; voxels
no camera saw get zeros and a 0 in an extra 'seen' channel. The LiDAR branch is first widened (linear +
BatchNorm + ReLU, to `fusion.lidar_channels`; P3Former's features are 128-256 wide) so that it is not a
thin minority beside 768 CLIP channels; then [LiDAR, CLIP, seen] goes through an MLP to the head's width.
The PFC baseline has no fusion: the MLP sees the LiDAR branch only.
"""
from __future__ import annotations

import torch
from torch import nn

from ov_panoptic_ros.core.config import FusionConfig
from ov_panoptic_ros.core.model.voxelize import scatter_mean
from ov_panoptic_ros.core.vision.features import PointFeatures


def pool_clip_features(sampled: PointFeatures, point_to_voxel: torch.Tensor,
                       num_voxels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CLIP feature of each voxel's seen points (V, D) (zeros where none) and the seen count (V,).

    Seen points outside the voxel range (voxel -1) are left out."""
    voxel = point_to_voxel.index_select(0, sampled.index)  # (S,) the voxel of each seen point's row
    mean = scatter_mean(sampled.features.float(), voxel, num_voxels)
    count = torch.bincount(voxel[voxel >= 0], minlength=num_voxels)
    return mean, count


class Fusion(nn.Module):
    """(V, backbone channels) LiDAR features [+ (V, D) CLIP features and (V,) seen flags] -> (V, hidden)."""

    def __init__(self, backbone_channels: int, cfg: FusionConfig, hidden_dim: int, clip_dim: int, with_clip: bool):
        super().__init__()
        if cfg.lidar_channels < 1:
            raise ValueError(f"fusion.lidar_channels must be positive, got {cfg.lidar_channels}")
        self.with_clip = with_clip
        self.lidar = nn.Sequential(nn.Linear(backbone_channels, cfg.lidar_channels, bias=False),
                                   nn.BatchNorm1d(cfg.lidar_channels), nn.ReLU(inplace=True))
        width = cfg.lidar_channels + (clip_dim + 1 if with_clip else 0)
        self.mlp = nn.Sequential(nn.Linear(width, hidden_dim), nn.LayerNorm(hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, hidden_dim))

    def forward(self, lidar: torch.Tensor, voxel_clip: torch.Tensor, voxel_seen: torch.Tensor) -> torch.Tensor:
        parts = [self.lidar(lidar)]
        if self.with_clip:
            parts += [voxel_clip.to(lidar.dtype), voxel_seen.unsqueeze(1).to(lidar.dtype)]
        return self.mlp(torch.cat(parts, dim=1))
