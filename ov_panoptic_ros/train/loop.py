"""`train(pipeline_config, train_config)`: the loop behind `ov-panoptic train`.

Per step each process takes `batch_frames` prepared examples from the background worker, accumulates their
gradients (DDP averages over processes), and the loss terms, summed over processes together with any stop
request, are checked before the update: a NaN or inf stops the run naming the step and the term, before the
weights change and without a checkpoint, so the last one on disk is the last good one. Every
`checkpoint_every` steps, on Ctrl-C and at the end, rank 0 saves the training state (checkpoint.py); every
`val_every` steps and at the end it validates (validation.py). A run whose OUT holds its own checkpoint
continues from it exactly: same weights, optimizer, schedule, RNG and data position.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.model.checkpoint import save_checkpoint
from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.core.pipeline import resolve_device
from ov_panoptic_ros.train import checkpoint as ckpt
from ov_panoptic_ros.train.config import TrainConfig, config_hash, plain, run_identity
from ov_panoptic_ros.train.distributed import Distributed
from ov_panoptic_ros.train.feature_cache import FeatureCache, cache_key
from ov_panoptic_ros.train.labels import ExampleMaker, source_labels
from ov_panoptic_ros.train.logbook import Logbook, StepWindow
from ov_panoptic_ros.train.prefetch import Prefetcher
from ov_panoptic_ros.train.reader import FrameReader
from ov_panoptic_ros.train.stop import StopRequest
from ov_panoptic_ros.train.trainer import LOGGED_TERMS, NonFiniteLossError, Trainer, check_finite
from ov_panoptic_ros.train.validation import Validator

SHORT = {"object_distill": "obj", "voxel_distill": "vox", "position_dice": "pos"}  # progress bar labels


@dataclass
class TrainResult:
    out: Path
    rank: int  # this process's (0 when not distributed)
    step: int  # optimizer steps done
    interrupted: bool  # stopped by Ctrl-C / SIGTERM after saving
    validation: dict | None  # the last validation's scalars
    steps_per_s: float  # this session's steps
    data_wait_share: float  # of this session's wall time, spent waiting for prepared frames


def train(pipeline_config: PipelineConfig, cfg: TrainConfig, *, resume: bool = False, progress: bool = True,
          on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train (or continue) the run of OUT = cfg.out. `resume`: refuse to start when OUT holds no checkpoint of
    this run (without it, a run continues from one when there is one). `on_step(step)` runs after each step."""
    dist = Distributed(resolve_device(pipeline_config.device))
    try:
        return _Run(pipeline_config, cfg, dist).run(resume, progress, on_step)
    finally:
        dist.close()


class _Run:
    def __init__(self, pipeline_config: PipelineConfig, cfg: TrainConfig, dist: Distributed):
        self.cfg, self.dist, self.out = cfg, dist, Path(cfg.out)
        self.identity = run_identity(pipeline_config, cfg)
        self.hash = config_hash(self.identity)
        # The cheap checks first, so that a refused run fails before the pipeline is built.
        self.found = ckpt.check_run_dir(self.out, self.identity, self.hash) if dist.main else False
        split = ClassSplit.from_config(pipeline_config.vocabulary)
        _, lut = source_labels(cfg.data, split, "train.data")
        self.validator = Validator(cfg.val, split, cfg.val_figures) if cfg.val.spec else None
        self.trainer = Trainer(pipeline_config, cfg, dist, split)
        self.cache = FeatureCache(cfg.data.feature_cache, cache_key(self.trainer.pipeline, cfg.data)) \
            if cfg.data.feature_cache else None  # refused here when it is another CLIP's or source's
        self.maker = ExampleMaker(self.trainer.pipeline, split, lut, self.cache)
        self.step, self.position, self.epoch_frames = 0, 0, None
        self.saved_step = self.validated_step = 0
        self.validation: dict | None = None

    def run(self, resume: bool, progress: bool, on_step) -> TrainResult:
        self._restore(resume)
        log = None
        if self.dist.main:
            if not self.found:
                ckpt.write_run_file(self.out, self.identity, self.hash, {"pipeline": self.trainer.config.to_dict(),
                                                                        "train": plain(self.cfg)})
            log = Logbook(self.out, self.step)
        cfg = self.cfg
        self.reader = FrameReader(cfg.data, cfg.seed, self.dist.rank, self.dist.world, cfg.cache_frames,
                                  self.epoch_frames, self.position, cfg.prefetch, images=self.cache is None)
        data = Prefetcher(iter(self.reader), lambda g, i, frame, truth: self.maker(frame, truth, i), cfg.prefetch)
        try:
            with StopRequest() as stop:
                return self._loop(data, log, stop, progress, on_step)
        finally:
            data.close()
            self.reader.close()
            if log is not None:
                log.close()

    def _restore(self, resume: bool) -> None:
        """Rank 0 reads the checkpoint; every rank gets the state (or the error) from it."""
        reply = None
        if self.dist.main:
            try:
                state = ckpt.load_state(self.out, self.identity, self.hash, self.trainer.clip_model_id) \
                    if self.found else None
                if resume and state is None:
                    raise ckpt.RunDirError(f"--resume: {self.out} holds no checkpoint of this run")
                reply = ("ok", state)
            except (ckpt.RunDirError, ckpt.CheckpointError) as e:
                reply = ("error", e)
        kind, value = self.dist.broadcast(reply)
        if kind == "error":
            raise value
        if value is not None:
            self.trainer.load_state_dict(value)
            self.step = self.saved_step = value["step"]
            self.position, self.epoch_frames = value["data"]["position"], value["data"]["epoch_frames"]
            ckpt.set_rng_states(value["rng"], self.dist.device)

    def _loop(self, data: Prefetcher, log: Logbook | None, stop: StopRequest, progress: bool, on_step) -> TrainResult:
        from tqdm import tqdm

        cfg, trainer, dist = self.cfg, self.trainer, self.dist
        start_step, t0, window = self.step, time.perf_counter(), StepWindow(data)
        bar = tqdm(total=cfg.steps, initial=self.step, unit="step", desc="train", dynamic_ncols=True,
                   disable=not (progress and dist.main))
        interrupted = False
        try:
            while self.step < cfg.steps and not interrupted:
                terms = trainer.accumulate([next(data) for _ in range(cfg.batch_frames)])
                reduced = dist.sum(torch.cat([terms, terms.new_tensor([float(stop.requested)])])).cpu()
                terms, interrupted = reduced[:-1] / dist.world, bool(reduced[-1] > 0)
                self._check_finite(terms)
                lr = trainer.lr
                grad_norm = trainer.update()
                self.step += 1
                self.position += cfg.batch_frames * dist.world
                window.tick()
                bar.update(1)
                bar.set_postfix({SHORT.get(n, n): f"{v:.3f}" for n, v in zip(LOGGED_TERMS, terms.tolist())} |
                                {"lr": f"{lr:.2g}", "wait": f"{window.share():.0%}"}, refresh=False)
                if log is not None and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                    log.log(self.step, {**{f"loss/{n}": v for n, v in zip(LOGGED_TERMS, terms.tolist())},
                                        "lr": lr, "grad_norm": grad_norm, **window.scalars()})
                if self.step % cfg.checkpoint_every == 0:
                    self._save()
                if cfg.val_every and self.step % cfg.val_every == 0:
                    self._validate(log)
                if on_step is not None:
                    on_step(self.step)
        finally:
            bar.close()
        if self.saved_step != self.step:
            self._save()
        if not interrupted and self.validated_step != self.step:
            self._validate(log)
        wall = time.perf_counter() - t0
        return TrainResult(self.out, dist.rank, self.step, interrupted, self.validation,
                           (self.step - start_step) / wall if wall > 0 else 0.0, data.wait_s / wall if wall else 0.0)

    def _check_finite(self, terms: torch.Tensor) -> None:
        try:
            check_finite(terms, self.step + 1)
        except NonFiniteLossError as e:
            kept = (f"{self.out / ckpt.STATE_FILE} (step {self.saved_step}) is the last good checkpoint"
                    if self.saved_step > 0 else "no checkpoint was saved before it")
            raise NonFiniteLossError(f"training stopped at {e}; {kept}") from None

    def _save(self) -> None:
        self.saved_step = self.step
        if not self.dist.main:
            return
        state = {"config_hash": self.hash, "identity": self.identity, "clip_model_id": self.trainer.clip_model_id,
                 "step": self.step, "data": {"position": self.position, "epoch_frames": self.reader.epoch_frames},
                 "rng": ckpt.rng_states(self.dist.device), **self.trainer.state_dict()}
        ckpt.save_state(self.out, state)
        save_checkpoint(self.out / ckpt.NETWORK_FILE, self.trainer.network, self.trainer.config,
                        self.trainer.clip_model_id)

    def _validate(self, log: Logbook | None) -> None:
        self.validated_step = self.step
        if self.validator is None or not self.dist.main:
            return
        self.validation = self.validator(self.trainer.pipeline, self.out, self.step)
        log.log(self.step, self.validation)
