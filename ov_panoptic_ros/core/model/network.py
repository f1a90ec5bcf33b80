"""PanopticNetwork: voxelize -> sparse UNet -> fusion with frozen CLIP voxel features -> query head -> merge.

`config.model` picks the paper's network ('ov': CLIP fusion, trained with distillation, classified by its
own cosine-to-text head) or the PFC baseline ('pfc': LiDAR only, its masks classified at inference by
FC-CLIP's ensemble with mask-pooled CLIP, pfc.py). Both carry the training vocabulary they were built for:
it fixes the number of base-stuff queries, and PFC needs it to tell base from novel classes.

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
from ov_panoptic_ros.core.frame import UNLABELED, PanopticResult, Vocabulary
from ov_panoptic_ros.core.model.backbone import SparseUNet
from ov_panoptic_ros.core.model.fusion import Fusion, pool_clip_features
from ov_panoptic_ros.core.model.head import QueryHead
from ov_panoptic_ros.core.model.merge import merge_panoptic, point_instances, query_scores, voxels_to_points
from ov_panoptic_ros.core.model.outputs import NetworkOutputs
from ov_panoptic_ros.core.model.pfc import ensemble_probabilities, in_training_vocabulary
from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.core.model.voxelize import (VOXEL_INPUT_CHANNELS, Voxels, check_voxel_config,
                                                 voxel_input_features, voxelize)
from ov_panoptic_ros.core.vision.features import PointFeatures, check_point_features
from ov_panoptic_ros.core.vision.text import ClassEmbeddings


class _NoTimer:
    def __call__(self, stage: str):
        return contextlib.nullcontext()


class PanopticNetwork(nn.Module):
    def __init__(self, config: PipelineConfig, clip_dim: int, train_vocabulary: Vocabulary,
                 device: torch.device | str = "cpu"):
        super().__init__()
        check_voxel_config(config.voxel)
        if clip_dim < 1:
            raise ValueError(f"clip_dim must be positive, got {clip_dim}")
        self.model = config.model
        self.voxel_cfg, self.merge_cfg, self.pfc_cfg = config.voxel, config.merge, config.pfc
        self.min_cluster_points = config.zeroshot.min_cluster_points  # for merge.split_radius_m
        self.clip_dim = int(clip_dim)
        self.train_vocabulary = train_vocabulary
        self.stuff_names = tuple(n for n, s in zip(train_vocabulary.names, train_vocabulary.is_stuff) if s)
        self.device_type = torch.device(device).type
        self.backbone = SparseUNet(VOXEL_INPUT_CHANNELS, config.backbone, device)
        self.fusion = Fusion(self.backbone.out_channels, config.fusion, config.head.hidden_dim, clip_dim,
                             with_clip=config.model == "ov")
        self.head = QueryHead(config.head, clip_dim, len(self.stuff_names))
        self.to(device)

    def _check_inputs(self, points, sampled: PointFeatures, class_emb: ClassEmbeddings, intensity) -> None:
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be an (N, 3) tensor, got {getattr(points, 'shape', type(points))}")
        if intensity is not None and tuple(intensity.shape) != (points.shape[0],):
            raise ValueError(f"intensity must be (N,) = ({points.shape[0]},), got {tuple(intensity.shape)}")
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

    def encode(self, points: torch.Tensor, sampled: PointFeatures, intensity: torch.Tensor | None, timer) -> dict:
        """Voxels, backbone and fusion: everything before the head."""
        with timer("voxelize"):
            voxels = voxelize(points, self.voxel_cfg)
            inputs = voxel_input_features(points, voxels, self.voxel_cfg, intensity)
            frozen = PointFeatures(sampled.seen, sampled.index, sampled.features.detach())
            clip_mean, seen_count = pool_clip_features(frozen, voxels.point_to_voxel, voxels.num_voxels)
            voxel_clip, voxel_seen = F.normalize(clip_mean, dim=1), seen_count > 0  # unseen rows stay zero
        if voxels.num_voxels == 0:
            return {"voxels": voxels}
        with timer("backbone"):
            lidar = self.backbone(inputs, voxels.coords, voxels.spatial_shape)
        with timer("head"):
            fused = self.fusion(lidar, voxel_clip, voxel_seen)
        return {"voxels": voxels, "fused": fused, "voxel_clip": voxel_clip, "voxel_seen": voxel_seen,
                "positions": inputs[:, 3:6]}  # mean point position over the largest range bound (voxelize.py)

    def forward(self, points: torch.Tensor, sampled: PointFeatures, class_emb: ClassEmbeddings,
                intensity: torch.Tensor | None = None) -> NetworkOutputs:
        """Every decoder output's predictions for training; `class_emb` embeds the training vocabulary."""
        self._check_inputs(points, sampled, class_emb, intensity)
        enc = self.encode(points, sampled, intensity, _NoTimer())
        voxels: Voxels = enc["voxels"]
        if voxels.num_voxels == 0:
            raise ValueError(f"none of the {points.shape[0]} points lies inside the voxel range; nothing to train on")
        out = self.head(enc["fused"], class_emb, enc["positions"], all_layers=True)
        return NetworkOutputs(out["mask_logits"], out["class_logits"], out["class_embed"],
                              self.head.num_learned_queries, self.stuff_names, class_emb.vocabulary,
                              enc["voxel_clip"], enc["voxel_seen"], voxels.point_to_voxel, voxels.coords,
                              out.get("position_mask_logits"))

    @torch.no_grad()
    def predict(self, points: torch.Tensor, sampled: PointFeatures, class_emb: ClassEmbeddings,
                intensity: torch.Tensor | None = None, timer=None) -> PanopticResult:
        """One frame to a PanopticResult with any vocabulary, timing voxelize / backbone / head / merge
        (always in eval mode)."""
        self._check_inputs(points, sampled, class_emb, intensity)
        timer = timer or _NoTimer()
        was_training = self.training
        self.eval()
        try:
            enc = self.encode(points, sampled, intensity, timer)
            voxels: Voxels = enc["voxels"]
            if voxels.num_voxels == 0:
                return self._unlabeled(points.shape[0], class_emb)
            with timer("head"):
                out = self.head(enc["fused"], class_emb, enc["positions"], all_layers=False)
                probs = self.class_probabilities(out["class_logits"][-1], out["mask_logits"][-1], enc, class_emb)
            with timer("merge"):
                scores, labels, is_thing = query_scores(probs, class_emb.is_stuff)
                merged = merge_panoptic(out["mask_logits"][-1], scores, labels, is_thing, self.merge_cfg)
                point_labels, point_ids, point_scores = voxels_to_points(merged, voxels.point_to_voxel)
                point_labels, point_ids, instances = point_instances(
                    points.detach().cpu().numpy(), point_labels, point_ids, point_scores, merged.segments,
                    self.merge_cfg, self.min_cluster_points)
            return PanopticResult(point_labels, point_ids, point_scores, instances, class_emb.vocabulary)
        finally:
            self.train(was_training)

    def class_probabilities(self, class_logits, mask_logits, enc: dict, class_emb: ClassEmbeddings) -> torch.Tensor:
        """(Q, C): the network's own sigmoids ('ov'), or FC-CLIP's ensemble with mask-pooled CLIP ('pfc', or 'ov'
        with merge.clip_ensemble)."""
        if self.model == "ov" and not self.merge_cfg.clip_ensemble:
            return class_logits.float().sigmoid()
        in_vocab = in_training_vocabulary(class_emb.vocabulary, self.train_vocabulary)
        return ensemble_probabilities(class_logits, mask_logits, enc["voxel_clip"], enc["voxel_seen"], class_emb,
                                      in_vocab, self.pfc_cfg)

    @staticmethod
    def _unlabeled(n: int, class_emb: ClassEmbeddings) -> PanopticResult:
        return PanopticResult(np.full(n, UNLABELED, np.uint16), np.zeros(n, np.uint32), np.zeros(n, np.float32),
                              [], class_emb.vocabulary)


def build_network(config: PipelineConfig, clip_dim: int, device: torch.device | str = "cpu") -> PanopticNetwork:
    """A fresh network for training: its base classes are `config.vocabulary` minus `vocabulary.novel`."""
    return PanopticNetwork(config, clip_dim, ClassSplit.from_config(config.vocabulary).train_vocabulary, device)
