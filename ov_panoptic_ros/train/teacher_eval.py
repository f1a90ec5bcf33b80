"""How well a dense encoder names the pixels of labelled images, read through the pipeline's own lookup.

Each evaluated pixel is treated as a LiDAR point that projects onto its centre: the features come from
`encoder.encode` and `sample_seen_point_features`, the class from `ClassEmbeddings.cosine`, exactly as the
zero-shot pipeline would label that point. Works for any DenseImageEncoder (the teacher, open_clip).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.geometry import PointProjection
from ov_panoptic_ros.core.vision.backend import DenseImageEncoder
from ov_panoptic_ros.core.vision.open_clip_dense import sample_seen_point_features
from ov_panoptic_ros.core.vision.text import TextEncoder
from ov_panoptic_ros.train.teacher_data import check_sample


def pixel_points(height: int, width: int, step: int) -> PointProjection:
    """Every step-th pixel centre of one image as a point seen by camera 0."""
    v, u = np.mgrid[step // 2:height:step, step // 2:width:step]
    uv = torch.from_numpy(np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32))
    n = len(uv)
    return PointProjection(torch.arange(n), torch.zeros(n, dtype=torch.long), uv, torch.ones(n), 1, n)


def evaluate_dense(encoder: DenseImageEncoder, text: TextEncoder, data: Iterable, templates: tuple[str, ...],
                   step: int = 4) -> dict:
    """{"pixel_accuracy", "miou", "iou": {class: IoU or None when neither labelled nor predicted}}.

    All samples must share one class list (the vocabulary the pixels are scored against).
    """
    names, emb, confusion = None, None, None
    for i, sample in enumerate(data):
        rgb, labels, sample_names = check_sample(sample, i)
        if names is None:
            names = sample_names
            emb = text.embed(Vocabulary(names, templates=templates)).to(encoder.device)
            confusion = np.zeros((len(names), len(names)), dtype=np.int64)
        elif sample_names != names:
            raise ValueError(f"teacher sample {i} has classes {sample_names}, sample 0 has {names}")
        points = pixel_points(*labels.shape, step)
        sampled = sample_seen_point_features(encoder.encode([rgb]), points.to(encoder.device))
        predicted = emb.cosine(sampled.features).argmax(dim=1).cpu().numpy()
        uv = points.uv.long().numpy()
        truth = labels[uv[:, 1], uv[:, 0]]
        keep = truth >= 0
        np.add.at(confusion, (truth[keep], predicted[keep]), 1)
    if confusion is None:
        raise ValueError("no samples to evaluate")
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    iou = {n: (float(h / u) if u else None) for n, h, u in zip(names, hits, union)}
    present = [iou[n] for n, total in zip(names, confusion.sum(1)) if total]
    return {"pixel_accuracy": float(hits.sum() / max(confusion.sum(), 1)), "miou": float(np.mean(present)),
            "iou": iou}
