"""PanopticPipeline: the one `Frame -> PanopticResult` call behind the node, bag replay, training and benchmarks.

Zero-shot (CLIP only) when no 3D checkpoint is configured, the trained network otherwise (the paper's 'ov'
network or the 'pfc' baseline, as `config.model` says and the checkpoint must agree). The device is
decided here, once. A vocabulary is embedded off the frame path (`prepare_vocabulary`) and swapped in with
one reference assignment (`activate`), so a frame always sees exactly one vocabulary.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.frame import Frame, PanopticResult, Vocabulary
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.core.vision.backend import build_encoders
from ov_panoptic_ros.core.vision.features import PointFeatures
from ov_panoptic_ros.core.vision.open_clip_dense import sample_seen_point_features
from ov_panoptic_ros.core.vision.text import ClassEmbeddings, TextEncoder
from ov_panoptic_ros.core.zeroshot import ZeroShotSegmenter


class DeviceError(RuntimeError):
    """The configured device cannot be used here; the message says what to set instead."""


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available on this machine; "
                          "set device: cpu (or auto) in the pipeline config, or the node's `device` parameter")
    return device


class StageTimer:
    """Wall-clock milliseconds per named stage; synchronizes CUDA so GPU time lands in the right stage."""

    def __init__(self, device: torch.device):
        self.device = device
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1e3


class PanopticPipeline:
    def __init__(self, config: PipelineConfig, vocabulary: Vocabulary | None = None):
        self.config = config
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.encoder, text_tower = build_encoders(config.clip, self.device)
        self.text = TextEncoder(text_tower)
        self.network = self._load_network() if config.checkpoint else None
        self.zeroshot = ZeroShotSegmenter(config.zeroshot)
        if vocabulary is None:
            v = config.vocabulary
            vocabulary = Vocabulary(v.classes, v.stuff, v.templates)
        self._active: ClassEmbeddings = self.prepare_vocabulary(vocabulary)

    def _load_network(self):
        """The trained 3D network, refused when it was trained against another CLIP than the one configured."""
        # Imported here: spconv takes seconds to import and the zero-shot path never needs it.
        from ov_panoptic_ros.core.model.checkpoint import CheckpointError, load_network

        network = load_network(self.config.checkpoint, self.config, self.device)
        trained = (network.clip_model_id, network.clip_dim)
        running = (self.encoder.model_id, self.encoder.embed_dim)
        if trained != running:
            raise CheckpointError(
                f"network checkpoint {self.config.checkpoint!r} was trained with CLIP {trained[0]} ({trained[1]}-d)"
                f" but the configured CLIP is {running[0]} ({running[1]}-d)"
            )
        return network

    @property
    def mode(self) -> str:
        """'zeroshot', or the trained network's model: 'ov' or 'pfc'."""
        return "zeroshot" if self.network is None else self.network.model

    @property
    def vocabulary(self) -> Vocabulary:
        return self._active.vocabulary

    def prepare_vocabulary(self, vocabulary: Vocabulary) -> ClassEmbeddings:
        """Embed a vocabulary (slow on CPU: cached per prompt). Safe to call from another thread."""
        return self.text.embed(vocabulary).to(self.device)

    def activate(self, embeddings: ClassEmbeddings) -> None:
        """Swap the vocabulary in; the next frame uses it, the running one keeps the old one."""
        self._active = embeddings

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        self.activate(self.prepare_vocabulary(vocabulary))

    @torch.no_grad()  # not inference_mode: training saves these tensors for backward (inside __call__ it still is)
    def point_features(self, frame: Frame, timer: StageTimer | None = None) -> tuple[torch.Tensor, PointFeatures]:
        """The frozen front half, before any head: the points on the device and the CLIP features of the points
        the cameras see. Inference and training both take their network inputs from here (one code path)."""
        timer = timer or StageTimer(self.device)
        host_points = torch.from_numpy(frame.points)
        points = host_points.to(self.device)
        with timer("project"):  # on the host, where the points arrive; the pairs go to the device
            projection = project_points(host_points, frame.cameras, self.config.projection).to(self.device)
        with timer("clip_encode"):
            features = self.encoder.encode(frame.images)
        with timer("sample"):
            sampled = sample_seen_point_features(features, projection)
        return points, sampled

    @torch.inference_mode()
    def __call__(self, frame: Frame) -> PanopticResult:
        active = self._active  # read once: one vocabulary for the whole frame
        timer = StageTimer(self.device)
        points, sampled = self.point_features(frame, timer)
        if self.network is None:
            result = self.zeroshot(points, sampled, active, timer)
        else:
            intensity = None if frame.intensity is None else torch.from_numpy(frame.intensity).to(self.device)
            result = self.network.predict(points, sampled, active, intensity=intensity, timer=timer)
        result.timings_ms = dict(timer.ms)
        result.timings_ms["total"] = float(np.sum(list(timer.ms.values())))
        return result
