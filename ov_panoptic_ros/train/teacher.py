"""Training the 2D vision-language teacher (core/vision/teacher.py), LSeg-style.

Per training crop, labelled pixels are drawn (class-balanced: weight count^-balance, so a traffic cone is
not drowned by the road), the network's features are read at their pixel centres bilinearly, exactly as the
pipeline reads them at LiDAR points, and each pixel is classified over ALL class names by
logit_scale x cosine(feature, text embedding), the max over a class's synonyms as ClassEmbeddings scores it,
under cross-entropy. The text embeddings come from the frozen MiniLM tower through the same TextEncoder
(template ensemble) the pipeline uses; only the image network learns.

    from ov_panoptic_ros.train.teacher import TeacherTrainConfig, train_teacher
    train_teacher(samples, "models/teacher.pt", TeacherTrainConfig(epochs=40, seed=0))

`samples` is any re-iterable (read once per epoch) of (rgb, labels, class_names), see teacher_data.py.
Seeded and deterministic on the CPU. The checkpoint is rewritten atomically after every epoch.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.vision.minilm_text import NAME as MINILM, SENTENCE_TEMPLATES, MiniLMTextTower
from ov_panoptic_ros.core.vision.teacher_checkpoint import save_teacher
from ov_panoptic_ros.core.vision.teacher_net import TeacherNet
from ov_panoptic_ros.core.vision.text import ClassEmbeddings, TextEncoder
from ov_panoptic_ros.train.teacher_data import Sample, augment, check_sample, shuffled


@dataclass
class TeacherTrainConfig:
    image_size: int = 192  # short side at run time; training crops come from images rescaled around it
    crop: int = 128  # square training crop, a multiple of 16
    stride: int = 8  # 4 or 8
    width: int = 32  # TeacherNet width (0.86 M parameters at 32)
    epochs: int = 40
    batch_size: int = 8
    lr: float = 2e-3  # AdamW, cosine decay to 0 over the epochs
    weight_decay: float = 1e-4
    seed: int = 0
    logit_scale: float = 1 / 0.07  # LSeg's and CLIP's initial temperature
    pixels_per_image: int = 1024
    balance: float = 0.5  # 0 = pixels drawn uniformly, 1 = every class present equally often
    scale_range: tuple[float, float] = (0.75, 1.5)
    jitter: float = 0.2
    shuffle_buffer: int = 64
    templates: tuple[str, ...] = SENTENCE_TEMPLATES
    device: str = "cpu"

    def __post_init__(self):
        if self.crop % 16 or self.crop < 16:
            raise ValueError(f"teacher crop {self.crop} must be a positive multiple of 16")
        if self.image_size < self.stride:
            raise ValueError(f"teacher image_size {self.image_size} is smaller than the stride {self.stride}")


def train_teacher(data: Iterable, out: str | Path, config: TeacherTrainConfig = TeacherTrainConfig(),
                  log: Callable[[str], None] = print) -> list[dict]:
    """Train, writing `out` after every epoch; returns per-epoch {epoch, loss, accuracy, seconds}."""
    if iter(data) is data:
        raise ValueError("teacher data must be re-iterable (a list, or an object whose __iter__ starts over), "
                         "not a one-shot iterator: training reads it once per epoch")
    cfg, device = config, torch.device(config.device)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    net = TeacherNet(cfg.width, cfg.stride).to(device).train()
    tower = MiniLMTextTower(device)
    text, vocabularies = TextEncoder(tower), {}
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    history = []
    for epoch in range(cfg.epochs):
        start, sums = time.perf_counter(), np.zeros(3)  # loss x pixels, correct, pixels
        batch: list[Sample] = []
        stream = (check_sample(s, i) for i, s in enumerate(data))
        for sample in shuffled(stream, cfg.shuffle_buffer, rng):
            batch.append(sample)
            if len(batch) == cfg.batch_size:
                sums += _step(net, opt, batch, cfg, text, vocabularies, rng, gen, device)
                batch = []
        if batch:
            sums += _step(net, opt, batch, cfg, text, vocabularies, rng, gen, device)
        if not sums[2]:
            raise ValueError(f"teacher data gave no labelled pixel in epoch {epoch + 1}")
        sched.step()
        row = {"epoch": epoch + 1, "loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2],
               "seconds": time.perf_counter() - start}
        history.append(row)
        save_teacher(out, net, cfg.image_size, {"name": MINILM, "model_id": tower.model_id},
                     {**dataclasses.asdict(cfg), "epochs_done": epoch + 1})
        log(f"teacher epoch {row['epoch']}/{cfg.epochs}: loss {row['loss']:.4f}, "
            f"sampled-pixel accuracy {row['accuracy']:.3f}, {row['seconds']:.1f} s")
    return history


def _step(net, opt, batch, cfg, text, vocabularies, rng, gen, device) -> np.ndarray:
    """One AdamW step on a batch; returns (summed loss, correct, pixels) over its sampled pixels."""
    crops = [augment(s, cfg.image_size, cfg.crop, cfg.scale_range, cfg.jitter, rng) for s in batch]
    maps = net(torch.stack([x for x, _ in crops]).to(device))  # (B, D, crop/stride, crop/stride)
    losses, correct, count = [], 0, 0
    for b, (sample, (_, labels)) in enumerate(zip(batch, crops)):
        names = sample.class_names
        if names not in vocabularies:
            vocabularies[names] = text.embed(Vocabulary(names, templates=cfg.templates)).to(device)
        uv, target = sample_pixels(labels, len(names), cfg.pixels_per_image, cfg.balance, gen)
        if not len(target):
            continue
        logits = cfg.logit_scale * pixel_cosine(maps[b], uv, cfg.crop, vocabularies[names])
        target = target.to(device)
        losses.append(F.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(dim=1) == target).sum())
        count += len(target)
    if not count:
        return np.zeros(3)
    loss = torch.stack(losses).sum()
    opt.zero_grad(set_to_none=True)
    (loss / count).backward()
    opt.step()
    return np.array([float(loss.detach()), correct, count])


def sample_pixels(labels: torch.Tensor, num_classes: int, k: int, balance: float, gen: torch.Generator):
    """Up to k labelled pixels as (k, 2) (u, v) pixel centres and their (k,) labels, weighted count^-balance."""
    v, u = (labels >= 0).nonzero(as_tuple=True)
    target = labels[v, u]
    if not len(target):
        return torch.zeros(0, 2), target
    weight = torch.bincount(target, minlength=num_classes).float()[target] ** -balance
    pick = torch.multinomial(weight, min(k, len(target)), replacement=False, generator=gen)
    return torch.stack([u[pick], v[pick]], dim=1).float(), target[pick]


def pixel_cosine(fmap: torch.Tensor, uv: torch.Tensor, size: int, class_emb: ClassEmbeddings) -> torch.Tensor:
    """(K, C) class cosine of the features read at pixels uv of a size x size crop, as the pipeline reads them.

    Like sample_seen_point_features on the encoder's maps: cells normalized, then read bilinearly (grid_sample
    with align_corners=False puts pixel u at feature coordinate (u + 0.5) / stride - 0.5 from the first cell
    centre; border padding), then normalized again (inside `cosine`), the max over a class's synonyms.
    """
    grid = ((uv.to(fmap.device) + 0.5) / size * 2 - 1).view(1, 1, -1, 2)
    cells = F.normalize(fmap, dim=0)[None]
    feats = F.grid_sample(cells, grid, align_corners=False, padding_mode="border")[0, :, 0].T  # (K, D)
    return class_emb.cosine(feats)

