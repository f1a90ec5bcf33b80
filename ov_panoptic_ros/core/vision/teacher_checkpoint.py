"""The teacher's checkpoint: plain metadata plus the state dict, readable by `torch.load(weights_only=True)`.

    format, format_version   what the file is; anything else is refused before a weight is touched
    architecture             TeacherNet.architecture(): rebuilds the network
    image_size               short side the images are resized to, as in training
    text_model               {"name", "model_id"} of the text tower the features were aligned to
    train_config             how it was trained (provenance only: seed, data, templates, schedule)
    state_dict               the network's weights

Every refusal is a TeacherCheckpointError that names the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ov_panoptic_ros.core.vision.teacher_net import ARCHITECTURE, TeacherNet

FORMAT = "ov_panoptic_ros.teacher"
FORMAT_VERSION = 1


class TeacherCheckpointError(ValueError):
    """A teacher checkpoint that cannot be used; the message names the file and the reason."""


def save_teacher(path: str | Path, net: TeacherNet, image_size: int, text_model: dict,
                 train_config: dict) -> Path:
    """Write atomically: a crash mid-save never leaves a truncated file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": net.architecture(),
        "image_size": int(image_size),
        "text_model": {"name": str(text_model["name"]), "model_id": str(text_model["model_id"])},
        "train_config": train_config,
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_teacher(path: str | Path) -> dict:
    """The checked checkpoint dict (format, version, architecture name); no network is built yet."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises assorted types for corrupt or foreign files
        raise TeacherCheckpointError(f"teacher checkpoint {str(path)!r} cannot be read: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise TeacherCheckpointError(f"{str(path)!r} is not a teacher checkpoint (format {found!r}, "
                                     f"expected {FORMAT!r}); train one with ov_panoptic_ros.train.teacher")
    if payload.get("format_version") != FORMAT_VERSION:
        raise TeacherCheckpointError(f"teacher checkpoint {str(path)!r} has format version "
                                     f"{payload.get('format_version')!r}; this code reads version {FORMAT_VERSION}")
    arch = payload.get("architecture", {}).get("name")
    if arch != ARCHITECTURE:
        raise TeacherCheckpointError(f"teacher checkpoint {str(path)!r} has architecture {arch!r}; "
                                     f"this code builds {ARCHITECTURE!r}")
    return payload


def build_net(payload: dict, path: str | Path) -> TeacherNet:
    """A TeacherNet with the checkpoint's weights, in eval mode."""
    arch = payload["architecture"]
    net = TeacherNet(arch["width"], arch["stride"], arch["embed_dim"])
    try:
        net.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise TeacherCheckpointError(f"teacher checkpoint {str(path)!r} weights do not fit its architecture "
                                     f"{arch}: {e}") from e
    return net.eval()
