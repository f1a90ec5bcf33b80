"""The frozen vision-language model behind one interface, so the pipeline, node and trainers have no special case.

A backend is two towers that share one embedding space:
- a `DenseImageEncoder` turns camera images into unit feature maps (`DenseFeatures`, sampled at LiDAR points
  by `sample_seen_point_features`);
- a `TextTower` turns prompts into unit rows of the same width (`TextEncoder` adds templates, synonyms, cache).
Each has a `model_id` derived from its weights; a 3D network records the image encoder's and refuses another.

`clip.model_name` picks the backend: an open_clip architecture (both towers are the one CLIP model), or
`teacher`, the dense image encoder trained here (train/teacher.py) with the frozen sentence encoder it was
aligned to; the teacher's architecture and its text model come from its checkpoint (`clip.checkpoint`).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ov_panoptic_ros.core.config import ClipConfig
from ov_panoptic_ros.core.vision.features import DenseFeatures
from ov_panoptic_ros.core.vision.open_clip_dense import DenseClipEncoder
from ov_panoptic_ros.core.vision.teacher import load_teacher

TEACHER = "teacher"  # the clip.model_name that selects the teacher backend


@runtime_checkable
class DenseImageEncoder(Protocol):
    """Frozen: (H, W, 3) uint8 RGB images -> unit per-location features, one map per image."""

    model_id: str  # identity of the weights, e.g. "ov-tiny-vit@random", "teacher@<sha256[:16]>"
    embed_dim: int
    device: torch.device

    def encode(self, images: list[np.ndarray]) -> DenseFeatures: ...


@runtime_checkable
class TextTower(Protocol):
    """Frozen: prompts -> (P, embed_dim) unit float32 rows on the CPU, in the image encoder's space."""

    model_id: str  # identity of the weights; the prompt cache is keyed by it
    embed_dim: int

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor: ...


def build_encoders(clip_cfg: ClipConfig, device: torch.device) -> tuple[DenseImageEncoder, TextTower]:
    """The configured backend's image encoder and text tower, on `device`."""
    if clip_cfg.model_name == TEACHER:
        return load_teacher(clip_cfg, device)
    clip = DenseClipEncoder(clip_cfg, device)
    return clip, clip
