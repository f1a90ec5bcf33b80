"""Saving and loading the trained network, with the metadata that must match before weights are used.

A checkpoint is a dict of plain types plus the state dict, so `torch.load(weights_only=True)` reads it:
format version, the network-shaping config (`model`: 'ov' or 'pfc', and the voxel, backbone, fusion and
head sections), the CLIP model it was trained against (open_clip model name, the encoder's `model_id`,
feature width) and its training vocabulary (which sets the base-stuff queries; PFC also needs it at
inference). Loading compares the config and CLIP with the running config first and only then builds a
fresh network from the checkpoint's training vocabulary and loads the weights, so a failed load never
leaves a half-loaded network behind. The run-time vocabulary may differ freely from the training one.

Format 2 (the paper's heads): learned base-stuff queries, LiDAR intensity input, widened LiDAR branch,
no self-reconstruction layer; format 1 files are refused.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.model.network import PanopticNetwork

FORMAT = "ov_panoptic_ros.network"
FORMAT_VERSION = 2
NETWORK_SECTIONS = ("voxel", "backbone", "fusion", "head")  # config that changes the weights' shapes or meaning
MODEL_NAMES = {"ov": "the paper's network (CLIP fusion + distillation)", "pfc": "the P3Former + FC-CLIP baseline"}


class CheckpointError(ValueError):
    """A checkpoint that does not fit the running configuration; the message names both values."""


def network_config(config: PipelineConfig) -> dict:
    """The config a checkpoint must agree with, as plain JSON-like values."""
    sections = {name: _plain(dataclasses.asdict(getattr(config, name))) for name in NETWORK_SECTIONS}
    return {"model": config.model, **sections}


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(path: str | Path, network: PanopticNetwork, config: PipelineConfig, clip_model_id: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "network_config": network_config(config),
        "clip": {"model_name": config.clip.model_name, "model_id": str(clip_model_id), "embed_dim": network.clip_dim},
        "train_vocabulary": {"classes": list(network.train_vocabulary.classes),
                             "stuff": list(network.stuff_names)},
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # a crash mid-save never leaves a truncated checkpoint under the real name
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, checked for format; weights are not applied anywhere."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"network checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises assorted types for corrupt or foreign files
        raise CheckpointError(f"network checkpoint {str(path)!r} cannot be read: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an ov_panoptic_ros network checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"network checkpoint {str(path)!r} has format version {payload.get('format_version')!r};"
            f" this code reads version {FORMAT_VERSION}"
        )
    head = payload.get("network_config", {}).get("head")
    if isinstance(head, dict):
        head.setdefault("position_aware", False)  # written before the key existed: the head had no PA-Seg
    return payload


def _differences(saved, current, where: str) -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current)):
            out += _differences(saved.get(key), current.get(key), f"{where}.{key}")
        return out
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        if all(not _differences(a, b, where) for a, b in zip(saved, current)):
            return []
    elif isinstance(saved, (int, float)) and isinstance(current, (int, float)) and not isinstance(saved, bool):
        if math.isclose(saved, current, rel_tol=1e-9, abs_tol=1e-12):
            return []
    elif saved == current:
        return []
    return [f"{where}: checkpoint has {saved!r}, config has {current!r}"]


def check_compatible(payload: dict, config: PipelineConfig, path: str | Path = "checkpoint") -> None:
    """Raise CheckpointError listing every mismatch between the checkpoint's metadata and the config."""
    saved_model = payload["network_config"].get("model")
    if saved_model != config.model:
        raise CheckpointError(
            f"network checkpoint {str(path)!r} holds model {saved_model!r} ({MODEL_NAMES.get(saved_model, '?')})"
            f" but the config asks for model {config.model!r} ({MODEL_NAMES[config.model]})")
    problems = _differences(payload["network_config"], network_config(config), "")
    saved_clip = payload["clip"]["model_name"]
    if saved_clip != config.clip.model_name:
        problems.append(
            f"clip.model_name: checkpoint was trained with {saved_clip!r}, config has {config.clip.model_name!r}")
    if problems:
        raise CheckpointError(f"network checkpoint {str(path)!r} does not match the config: " + "; ".join(
            p.lstrip(".") for p in problems))


def load_network(path: str | Path, config: PipelineConfig, device: torch.device | str) -> PanopticNetwork:
    """A PanopticNetwork in eval mode with the checkpoint's weights, after the metadata checks pass.

    `network.clip_model_id` and `network.clip_dim` tell the caller which CLIP the weights expect.
    """
    payload = read_checkpoint(path)
    check_compatible(payload, config, path)
    trained = payload["train_vocabulary"]
    train_vocabulary = Vocabulary(tuple(trained["classes"]), tuple(trained["stuff"]))
    network = PanopticNetwork(config, payload["clip"]["embed_dim"], train_vocabulary, device=device)
    try:
        network.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"network checkpoint {str(path)!r} weights do not fit the network: {e}") from e
    network.clip_model_id = payload["clip"]["model_id"]
    return network.eval()
