"""AdamW, the learning-rate schedule (linear warm-up, then multistep or cosine) and mixed precision.

The schedule is a pure function of the step (`lr_factor`) behind a LambdaLR, so its state is the step alone
and a resumed run follows the same curve.
"""
from __future__ import annotations

import contextlib
import math

import torch

from ov_panoptic_ros.train.config import ScheduleConfig, TrainConfig

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def lr_factor(step: int, schedule: ScheduleConfig, steps: int) -> float:
    """The multiplier of optimizer.lr for the update at 0-based `step` of `steps`."""
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    if schedule.kind == "multistep":
        return schedule.gamma ** sum(step >= m for m in schedule.milestones)
    span = max(1, steps - 1 - schedule.warmup_steps)
    progress = min(1.0, (step - schedule.warmup_steps) / span)
    return schedule.final_lr_ratio + (1 - schedule.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(parameters, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    opt = cfg.optimizer
    optimizer = torch.optim.AdamW(parameters, lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg.schedule, cfg.steps))
    return optimizer, scheduler


class Precision:
    """Autocast and, for fp16, a gradient scaler, on CUDA only: a CPU run is fp32 whatever `amp` says."""

    def __init__(self, amp: str, device: torch.device):
        self.dtype = AMP_DTYPES.get(amp) if device.type == "cuda" else None
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype is torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer) -> None:
        """Gradients in their true scale before clipping and the finite check."""
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
