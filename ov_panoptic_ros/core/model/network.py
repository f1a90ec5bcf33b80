"""PanopticNetwork: voxelize -> sparse UNet -> fusion with frozen CLIP voxel features -> query head.

Fusion (the paper's multimodal fusion): per voxel, the frozen CLIP feature is the mean of the CLIP
features of its points that a camera saw, L2-normalized; voxels no camera saw get zeros and a 0 in an
extra 'seen' channel. [LiDAR features (backbone), CLIP feature, seen] is projected by an MLP to the
head's hidden size. A linear map of the fused features back to CLIP space gives the per-voxel 3D
embedding the voxel-level distillation loss pulls toward the frozen CLIP feature.

The point CLIP features (PointFeatures: rows for the camera-seen points only) are detached on the way in:
CLIP is a frozen teacher, and the same tensors are the distillation targets, so no gradient may flow into
them. Single frame per call (batch size 1).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.frame import UNLABELED, PanopticResult
from ov_panoptic_ros.core.model.backbone import SparseUNet
from ov_panoptic_ros.core.model.head import QueryHead
from ov_panoptic_ros.core.model.merge import (build_instances, merge_panoptic, query_scores,
                                              voxels_to_points)
from ov_panoptic_ros.core.model.voxelize import (VOXEL_INPUT_CHANNELS, Voxels, check_voxel_config,
                                                 scatter_mean, voxel_input_features, voxelize)
from ov_panoptic_ros.core.vision.features import PointFeatures, check_point_features
from ov_panoptic_ros.core.vision.text import ClassEmbeddings


def pool_clip_features(sampled: PointFeatures, point_to_voxel: torch.Tensor,
                       num_voxels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CLIP feature of each voxel's seen points (V, D) (zeros where none) and the seen count (V,).

    Seen points outside the voxel range (voxel -1) are left out."""
    voxel = point_to_voxel.index_select(0, sampled.index)  # (S,) the voxel of each seen point's row
    mean = scatter_mean(sampled.features.float(), voxel, num_voxels)
    count = torch.bincount(voxel[voxel >= 0], minlength=num_voxels)
    return mean, count


class ClipFusion(nn.Module):
    """[LiDAR, CLIP, seen] -> hidden features for the head, and the 3D embedding in CLIP space."""

    def __init__(self, lidar_channels: int, clip_dim: int, hidden_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(lidar_channels + clip_dim + 1, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim),
        )
        self.to_clip = nn.Linear(hidden_dim, clip_dim)

    def forward(self, lidar: torch.Tensor, voxel_clip: torch.Tensor, voxel_seen: torch.Tensor):
        fused = self.mlp(torch.cat([lidar, voxel_clip, voxel_seen.unsqueeze(1).to(lidar.dtype)], dim=1))
        return fused, self.to_clip(fused)


class _NoTimer:
    def __call__(self, stage: str):
        return contextlib.nullcontext()


class PanopticNetwork(nn.Module):
    def __init__(self, config: PipelineConfig, clip_dim: int, device: torch.device | str = "cpu"):
        super().__init__()
        check_voxel_config(config.voxel)
        if clip_dim < 1:
            raise ValueError(f"clip_dim must be positive, got {clip_dim}")
        self.voxel_cfg = config.voxel
        self.merge_cfg = config.merge
        self.clip_dim = int(clip_dim)
        self.device_type = torch.device(device).type
        self.backbone = SparseUNet(VOXEL_INPUT_CHANNELS, config.backbone, device)
        self.fusion = ClipFusion(self.backbone.out_channels, clip_dim, config.head.hidden_dim)
        self.head = QueryHead(config.head, clip_dim)
        self.to(device)

    def _check_inputs(self, points, sampled: PointFeatures, class_emb: ClassEmbeddings) -> None:
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be an (N, 3) tensor, got {getattr(points, 'shape', type(points))}")
        check_point_features(sampled, points.shape[0], self.clip_dim)
        if class_emb.embeddings.shape[1] != self.clip_dim:
            raise ValueError(
                f"class embeddings are {class_emb.embeddings.shape[1]}-d (CLIP model {class_emb.model_id!r})"
                f" but this network was trained with {self.clip_dim}-d CLIP features"
            )
        if points.device.type != self.device_type:
            raise ValueError(
                f"network was built for {self.device_type} (its spconv algorithm follows the device)"
                f" but got tensors on {points.device}; build it with device={points.device.type!r}"
            )

    def encode(self, points: torch.Tensor, sampled: PointFeatures, timer=None) -> dict:
        """Voxels, backbone and fusion: everything before the head."""
        timer = timer or _NoTimer()
        with timer("voxelize"):
            voxels = voxelize(points, self.voxel_cfg)
            inputs = voxel_input_features(points, voxels, self.voxel_cfg)
            frozen = PointFeatures(sampled.seen, sampled.index, sampled.features.detach())
            clip_mean, seen_count = pool_clip_features(frozen, voxels.point_to_voxel, voxels.num_voxels)
            voxel_clip = F.normalize(clip_mean, dim=1)  # unseen rows stay zero
        if voxels.num_voxels == 0:
            return {"voxels": voxels}
        with timer("backbone"):
            lidar = self.backbone(inputs, voxels.coords, voxels.spatial_shape)
        with timer("head"):
            fused, voxel_embed = self.fusion(lidar, voxel_clip, seen_count > 0)
        return {
            "voxels": voxels,
            "fused": fused,
            "voxel_embed": voxel_embed,
            "voxel_clip": voxel_clip,
            "voxel_clip_mean": clip_mean,
            "voxel_seen_count": seen_count,
        }

    def forward(self, points: torch.Tensor, sampled: PointFeatures, class_emb: ClassEmbeddings) -> dict:
        """Raw outputs for training: per-layer mask/class predictions and the distillation tensors.

        Keys: mask_logits / class_logits / class_embed (lists over decoder outputs, initial queries first;
        (Q, V), (Q, C), (Q, D)), stuff_classes (S,), num_thing_queries, voxel_embed (V, D),
        voxel_clip (V, D) unit or zero, voxel_clip_mean (V, D), voxel_seen_count (V,), point_to_voxel (N,).
        """
        self._check_inputs(points, sampled, class_emb)
        enc = self.encode(points, sampled)
        voxels: Voxels = enc.pop("voxels")
        if voxels.num_voxels == 0:
            raise ValueError(f"none of the {points.shape[0]} points lies inside the voxel range; nothing to train on")
        out = self.head(enc.pop("fused"), class_emb, all_layers=True)
        out.update(enc)
        out["point_to_voxel"] = voxels.point_to_voxel
        out["voxel_coords"] = voxels.coords
        return out

    @torch.no_grad()
    def predict(self, points: torch.Tensor, sampled: PointFeatures, class_emb: ClassEmbeddings,
                timer=None) -> PanopticResult:
        """One frame to a PanopticResult, timing voxelize / backbone / head / merge (always in eval mode)."""
        self._check_inputs(points, sampled, class_emb)
        timer = timer or _NoTimer()
        was_training = self.training
        self.eval()
        try:
            enc = self.encode(points, sampled, timer)
            voxels: Voxels = enc["voxels"]
            if voxels.num_voxels == 0:
                return self._unlabeled(points.shape[0], class_emb)
            with timer("head"):
                out = self.head(enc["fused"], class_emb, all_layers=False)
            with timer("merge"):
                return self._merge(points, voxels, out, class_emb)
        finally:
            self.train(was_training)

    def _merge(self, points: torch.Tensor, voxels: Voxels, out: dict, class_emb: ClassEmbeddings) -> PanopticResult:
        num_things = out["num_thing_queries"]
        scores, labels = query_scores(out["class_logits"][-1], num_things, out["stuff_classes"], class_emb.is_stuff)
        is_thing = torch.arange(scores.shape[0], device=scores.device) < num_things
        merged = merge_panoptic(out["mask_logits"][-1], scores, labels, is_thing, self.merge_cfg)
        point_labels, point_ids, point_scores = voxels_to_points(merged, voxels.point_to_voxel)
        instances = build_instances(points.detach().cpu().numpy(), point_ids, merged.segments)
        return PanopticResult(point_labels, point_ids, point_scores, instances, class_emb.vocabulary)

    @staticmethod
    def _unlabeled(n: int, class_emb: ClassEmbeddings) -> PanopticResult:
        return PanopticResult(np.full(n, UNLABELED, np.uint16), np.zeros(n, np.uint32), np.zeros(n, np.float32),
                              [], class_emb.vocabulary)
