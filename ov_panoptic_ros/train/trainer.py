"""What a run trains with, built from the configs, and one optimizer step over a batch of frames.

The pipeline (core.pipeline.PanopticPipeline, no 3D checkpoint) supplies the frozen front half for training
(`point_features`) and, with the network being trained attached, the same predict path as inference for
validation. The network is built fresh from the pipeline config and trained on the base classes of its
split; DDP wraps it when the run is distributed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import random

import numpy as np
import torch

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.model.losses import TERMS, PanopticLoss
from ov_panoptic_ros.core.model.network import build_network
from ov_panoptic_ros.core.model.outputs import NetworkOutputs
from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.train.config import TrainConfig
from ov_panoptic_ros.train.distributed import Distributed
from ov_panoptic_ros.train.labels import Example
from ov_panoptic_ros.train.optim import Precision, build_optimizer

LOGGED_TERMS = (*TERMS, "total")


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or inf; the message names the step and the term."""


class Trainer:
    def __init__(self, pipeline_config: PipelineConfig, cfg: TrainConfig, dist: Distributed, split: ClassSplit):
        """`split`: ClassSplit.from_config(pipeline_config.vocabulary), made by the caller for its own checks."""
        self.cfg, self.dist, self.split = cfg, dist, split
        self.config = dataclasses.replace(pipeline_config, checkpoint=None, device=str(dist.device))
        self.pipeline = PanopticPipeline(self.config)  # the split's dataset vocabulary is its active one
        self.train_embeddings = self.split.train_embeddings(self.pipeline.prepare_vocabulary(self.split.dataset))
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.network = build_network(self.config, self.pipeline.encoder.embed_dim, dist.device)
        self.pipeline.network = self.network  # validation runs the pipeline's own predict path on it
        self.model = dist.wrap(self.network)
        self.loss = PanopticLoss(self.config.loss)
        self.optimizer, self.scheduler = build_optimizer(self.network.parameters(), cfg)
        self.precision = Precision(cfg.amp, dist.device)

    @property
    def clip_model_id(self) -> str:
        return self.pipeline.encoder.model_id

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def accumulate(self, examples: list[Example]) -> torch.Tensor:
        """Forward and backward over this process's frames of one step, gradients averaged over them (DDP
        averages over processes on the last backward); returns the mean loss terms (LOGGED_TERMS order)."""
        self.model.train()
        terms = torch.zeros(len(LOGGED_TERMS), dtype=torch.float64, device=self.dist.device)
        for i, ex in enumerate(examples):
            sync = i == len(examples) - 1 or not self.dist.enabled
            with self.model.no_sync() if not sync else contextlib.nullcontext():
                with self.precision.autocast():
                    outputs = self.model(ex.points, ex.features, self.train_embeddings, ex.intensity)
                losses = self.loss(in_fp32(outputs), ex.targets)
                self.precision.backward(losses["total"] / len(examples))
            terms += torch.stack([losses[t].detach().double() for t in LOGGED_TERMS]) / len(examples)
        return terms

    def update(self) -> float:
        """Clip, step, advance the schedule, clear the gradients; returns the gradient norm before clipping."""
        self.precision.unscale(self.optimizer)
        clip = self.cfg.grad_clip_norm or math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.network.parameters(), clip))
        self.precision.step(self.optimizer)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "precision": self.precision.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state["precision"])


def in_fp32(outputs: NetworkOutputs) -> NetworkOutputs:
    """The losses run in fp32: autocast leaves the decoder's outputs in half precision, and the matcher's costs
    go to numpy, which has no bfloat16. A no-op for fp32 outputs."""
    return dataclasses.replace(outputs, mask_logits=[t.float() for t in outputs.mask_logits],
                               class_logits=[t.float() for t in outputs.class_logits],
                               class_embed=[t.float() for t in outputs.class_embed],
                               voxel_clip=outputs.voxel_clip.float())


def check_finite(terms: torch.Tensor, step: int) -> None:
    """NonFiniteLossError naming the step and the first non-finite term (components before the total)."""
    bad = [name for name, value in zip(LOGGED_TERMS, terms.tolist()) if not math.isfinite(value)]
    if bad:
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(LOGGED_TERMS, terms.tolist()))
        raise NonFiniteLossError(f"step {step}: loss term {bad[0]!r} is {terms[LOGGED_TERMS.index(bad[0])].item()}"
                                 f" ({values})")
