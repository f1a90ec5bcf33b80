"""The PFC baseline's open-vocabulary classification (P3Former + FC-CLIP, the paper's main baseline).

A LiDAR-only panoptic network trained on base classes predicts masks and its own class probabilities
p_net (per-class sigmoids of its cosine-to-text head). Each mask also gets p_clip: the frozen CLIP voxel
features pooled inside the mask (mask probability > 0.5, as FC-CLIP's mask pooling), scored by cosine
against the vocabulary and turned into a softmax over the classes (temperature `clip_temperature`).
FC-CLIP's geometric ensemble then gives, per class,

    p = p_net^(1 - e) * p_clip^e,   e = base_clip_exponent for classes of the training vocabulary,
                                    e = novel_clip_exponent for every other class,

so CLIP dominates where the network never saw the class. A mask with no camera-seen voxel has no p_clip
and keeps p_net (FC-CLIP's ensemble on valid masks).
"""
from __future__ import annotations

import torch

from ov_panoptic_ros.core.config import PfcConfig
from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.model.terms import pool_in_masks
from ov_panoptic_ros.core.vision.text import ClassEmbeddings


def in_training_vocabulary(vocabulary: Vocabulary, train_vocabulary: Vocabulary) -> torch.Tensor:
    """(C,) bool: the class shares a name (any synonym, case-insensitive) with a training class."""
    trained = {name.lower() for names in train_vocabulary.synonyms for name in names}
    return torch.tensor([any(n.lower() in trained for n in names) for names in vocabulary.synonyms])


def ensemble_probabilities(class_logits: torch.Tensor, mask_logits: torch.Tensor, voxel_clip: torch.Tensor,
                           voxel_seen: torch.Tensor, class_emb: ClassEmbeddings, in_vocabulary: torch.Tensor,
                           cfg: PfcConfig) -> torch.Tensor:
    """(Q, C) ensembled class probabilities from (Q, C) network logits and (Q, V) masks."""
    pooled, has_clip = pool_in_masks((mask_logits > 0).float(), voxel_clip, voxel_seen)
    p_clip = (class_emb.cosine(pooled) / cfg.clip_temperature).softmax(dim=1)
    exponent = torch.where(in_vocabulary.to(class_logits.device), cfg.base_clip_exponent, cfg.novel_clip_exponent)
    exponent = exponent.unsqueeze(0) * has_clip.unsqueeze(1)
    return class_logits.float().sigmoid() ** (1 - exponent) * p_clip ** exponent
