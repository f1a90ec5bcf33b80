"""The teacher's training samples: checked, shuffled through a seeded buffer, augmented into square crops.

A sample is (rgb (H, W, 3) uint8, labels (H, W) integer, class_names): labels index class_names, and any
negative value (sky, unknown) is ignored. Augmentation aims at unseen scenes of the same world: a random
scale around the inference size (objects at other distances), a random crop, a horizontal flip, and a mild
brightness / contrast / saturation jitter. No hue jitter: colour is what tells many synthetic classes apart.
"""
from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F


class Sample(NamedTuple):
    rgb: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray  # (H, W) integer; < 0 = ignore
    class_names: Sequence[str]  # what labels index; entries may hold comma-separated synonyms


def check_sample(sample, index: int) -> Sample:
    """ValueError naming the sample and the problem unless it is a usable (rgb, labels, class_names)."""
    rgb, labels, names = sample
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"teacher sample {index}: rgb must be an (H, W, 3) uint8 array")
    if not isinstance(labels, np.ndarray) or labels.shape != rgb.shape[:2] or labels.dtype.kind not in "iu":
        raise ValueError(f"teacher sample {index}: labels must be an integer array of shape {rgb.shape[:2]}")
    if not names or labels.max(initial=-1) >= len(names):
        raise ValueError(f"teacher sample {index}: labels reach {labels.max(initial=-1)} but there are "
                         f"{len(names)} class names")
    return Sample(rgb, labels, tuple(names))


def shuffled(samples: Iterable, buffer: int, rng: np.random.Generator) -> Iterator:
    """The stream in a seeded random order: each item leaves a buffer of `buffer` at a random position.

    A buffer, not a permutation, so any iterable works (a world generator yields consecutive, similar frames).
    """
    held: list = []
    for item in samples:
        held.append(item)
        if len(held) >= buffer:
            yield _take(held, rng)
    while held:
        yield _take(held, rng)


def _take(held: list, rng: np.random.Generator):
    i = int(rng.integers(len(held)))
    held[i], held[-1] = held[-1], held[i]
    return held.pop()


def augment(sample: Sample, image_size: int, crop: int, scale_range: tuple[float, float], jitter: float,
            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, crop, crop) float RGB in [0, 1] and (crop, crop) long labels (-1 = ignore).

    The image is resized as the encoder resizes it at run time (bicubic with antialias, preprocess.py), to a
    short side of image_size x a random factor of scale_range, never below the crop.
    """
    h, w = sample.labels.shape
    s = max(image_size * rng.uniform(*scale_range), crop) / min(h, w)
    size = (max(crop, round(h * s)), max(crop, round(w * s)))
    x = torch.from_numpy(np.ascontiguousarray(sample.rgb)).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp_(0.0, 1.0)[0]
    y = torch.from_numpy(sample.labels.astype(np.int64))[None, None].float()
    y = F.interpolate(y, size=size, mode="nearest-exact")[0, 0].long()
    top, left = int(rng.integers(size[0] - crop + 1)), int(rng.integers(size[1] - crop + 1))
    x, y = x[:, top:top + crop, left:left + crop], y[top:top + crop, left:left + crop]
    if rng.random() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    b, c, sat = rng.uniform(1 - jitter, 1 + jitter, size=3)
    x = x * b
    x = (x - x.mean()) * c + x.mean()
    gray = x.mean(dim=0, keepdim=True)
    x = (x - gray) * sat + gray
    return x.clamp_(0.0, 1.0).contiguous(), y.clamp(min=-1).contiguous()
