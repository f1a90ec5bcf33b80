"""Training targets: which classes the network may learn, and per-point labels turned into voxel segments.

Open-vocabulary training sees base classes only. `ClassSplit` splits a dataset's classes into base and
novel; its `train_vocabulary` (the base classes, dataset order) is the only vocabulary the supervised losses
know, and `targets()` maps dataset labels into it with novel and unlabelled points -> IGNORE. So a novel
name never reaches the loss, and a novel point can never be a positive of any class or mask. (The
voxel-level distillation needs no labels and still covers novel regions.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ov_panoptic_ros.core.config import ConfigError, VocabularyConfig
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.core.vision.text import ClassEmbeddings

IGNORE = -1  # training label of points no supervised loss may see (novel or unlabelled)


def _canonical(name: str) -> str:
    return name.split(",")[0].strip().lower()


@dataclass(frozen=True)
class ClassSplit:
    """The dataset's classes (what its labels index) and the names of those held out of training."""

    dataset: Vocabulary
    novel: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "novel", tuple(self.novel))
        known = {_canonical(c) for c in self.dataset.classes}
        unknown = [n for n in self.novel if _canonical(n) not in known]
        if unknown:
            raise ConfigError(f"vocabulary.novel: class(es) {unknown} are not in the vocabulary {self.dataset.names}")
        if not self.base_mask.any():
            raise ConfigError(f"every class of {self.dataset.names} is novel: nothing to train on")

    @classmethod
    def from_config(cls, vocabulary: VocabularyConfig) -> ClassSplit:
        return cls(Vocabulary(vocabulary.classes, vocabulary.stuff, vocabulary.templates), vocabulary.novel)

    @property
    def base_mask(self) -> torch.Tensor:
        """(C_dataset,) bool, True for base classes."""
        novel = {_canonical(n) for n in self.novel}
        return torch.tensor([_canonical(c) not in novel for c in self.dataset.classes], dtype=torch.bool)

    @property
    def train_vocabulary(self) -> Vocabulary:
        """The base classes in dataset order, with their synonyms and stuff flags: what training scores against."""
        base = self.base_mask.tolist()
        classes = tuple(c for c, keep in zip(self.dataset.classes, base) if keep)
        stuff = tuple(n for n, s, keep in zip(self.dataset.names, self.dataset.is_stuff, base) if s and keep)
        return Vocabulary(classes, stuff, self.dataset.templates)

    @property
    def label_map(self) -> torch.Tensor:
        """(C_dataset,) long: each dataset class's index in `train_vocabulary`, IGNORE for novel classes."""
        base = self.base_mask
        return torch.where(base, torch.cumsum(base.long(), 0) - 1, IGNORE)

    def train_embeddings(self, class_emb: ClassEmbeddings) -> ClassEmbeddings:
        """The dataset vocabulary's embeddings restricted to the base classes (the same rows, not re-encoded)."""
        if tuple(class_emb.vocabulary.classes) != tuple(self.dataset.classes):
            raise ValueError(f"class embeddings of {class_emb.vocabulary.names} are not of the split's dataset"
                             f" vocabulary {self.dataset.names}")
        device = class_emb.embeddings.device
        rows = self.base_mask.to(device)[class_emb.synonym_class]
        synonym_class = self.label_map.to(device)[class_emb.synonym_class[rows]]
        return ClassEmbeddings(self.train_vocabulary, class_emb.embeddings[rows], synonym_class,
                               class_emb.is_stuff[self.base_mask.to(device)], class_emb.model_id)

    def targets(self, labels: torch.Tensor, instance_ids: torch.Tensor) -> PanopticTargets:
        """Per-point dataset labels (UNLABELED = none) and instance ids -> targets in the training vocabulary."""
        labels, instance_ids = torch.as_tensor(labels).long(), torch.as_tensor(instance_ids).long()
        if labels.shape != instance_ids.shape or labels.ndim != 1:
            raise ValueError(f"targets need one label and instance id per point, got {tuple(labels.shape)}"
                             f" and {tuple(instance_ids.shape)}")
        labelled = labels != UNLABELED
        num_classes = len(self.dataset.classes)
        if labelled.any() and (labels[labelled].min() < 0 or labels[labelled].max() >= num_classes):
            found = labels[labelled].unique().tolist()
            raise ValueError(f"dataset labels must be in [0, {num_classes}) or UNLABELED, got {found}")
        mapped = self.label_map.to(labels.device)[labels.clamp(0, num_classes - 1)]
        return PanopticTargets(self.train_vocabulary, torch.where(labelled, mapped, IGNORE), instance_ids)


@dataclass
class PanopticTargets:
    """Per-point targets in the training vocabulary: `labels` index `vocabulary.classes`, or IGNORE."""

    vocabulary: Vocabulary
    labels: torch.Tensor  # (N,) long
    instance_ids: torch.Tensor  # (N,) long; ignored for stuff classes


@dataclass
class VoxelTargets:
    """Ground-truth segments on voxels: one per thing instance, one per stuff class present."""

    masks: torch.Tensor  # (P, V) bool
    labels: torch.Tensor  # (P,) long, training-vocabulary index
    is_thing: torch.Tensor  # (P,) bool
    valid: torch.Tensor  # (V,) bool: the voxel's majority is a labelled segment (not IGNORE)


def _majority(point_to_voxel: torch.Tensor, segment: torch.Tensor, num_voxels: int) -> torch.Tensor:
    """(V,) the most frequent value of `segment` (>= 0) among each voxel's points; ties go to the smallest."""
    keep = point_to_voxel >= 0
    voxel, seg = point_to_voxel[keep], segment[keep]
    out = torch.full((num_voxels,), -1, dtype=torch.long, device=point_to_voxel.device)
    if voxel.numel() == 0:
        return out
    width = int(seg.max()) + 1
    pairs, counts = torch.unique(voxel * width + seg, return_counts=True)  # sorted: voxel asc, segment asc
    pair_voxel, pair_seg = pairs // width, pairs % width
    order = torch.argsort(pair_voxel * (int(counts.max()) + 1) - counts, stable=True)  # voxel asc, count desc
    pair_voxel, pair_seg = pair_voxel[order], pair_seg[order]
    first = torch.ones_like(pair_voxel, dtype=torch.bool)
    first[1:] = pair_voxel[1:] != pair_voxel[:-1]
    out[pair_voxel[first]] = pair_seg[first]
    return out


def voxel_targets(targets: PanopticTargets, point_to_voxel: torch.Tensor, num_voxels: int) -> VoxelTargets:
    """Majority vote per voxel over its points, IGNORE included (and winning ties): a voxel that is mostly
    novel or unlabelled is left out of every supervised loss instead of taking a base class."""
    labels, instance_ids = targets.labels.long(), targets.instance_ids.long()
    if labels.shape != point_to_voxel.shape:
        raise ValueError(f"targets have {labels.shape[0]} points but the network saw {point_to_voxel.shape[0]}")
    num_classes = len(targets.vocabulary.classes)
    if ((labels < IGNORE) | (labels >= num_classes)).any():
        raise ValueError(f"target labels must be in [0, {num_classes}) or IGNORE, got {labels.unique().tolist()}")
    is_stuff = torch.from_numpy(targets.vocabulary.is_stuff).to(labels.device)
    ignored = labels == IGNORE
    instance = torch.where(ignored | is_stuff[labels.clamp_min(0)], 0, instance_ids.clamp_min(0))
    width = int(instance.max()) + 1 if instance.numel() else 1
    keys, segment = torch.unique(torch.where(ignored, -1, labels * width + instance), return_inverse=True)
    # IGNORE's key (-1) sorts first, so it is segment 0 whenever present and wins the vote's ties.
    voxel_segment = _majority(point_to_voxel, segment, num_voxels)
    present = torch.unique(voxel_segment[voxel_segment >= 0])
    present = present[keys[present] >= 0]
    masks = voxel_segment.unsqueeze(0) == present.unsqueeze(1)
    seg_labels = torch.div(keys[present], width, rounding_mode="floor")
    return VoxelTargets(masks, seg_labels, ~is_stuff[seg_labels], masks.any(dim=0))
