"""Local weight files and the precision a frozen encoder runs in, shared by every vision-language backend."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def checkpoint_path(checkpoint: str | None) -> Path | None:
    """The configured local weights file; a missing one is an error that names it (nothing is downloaded)."""
    if not checkpoint:
        return None
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CLIP checkpoint {str(path)!r} does not exist (clip.checkpoint)")
    return path


def file_sha256(path: Path) -> str:
    """Hex digest of a file's bytes: the identity of a set of weights (a 3D network records it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Half precisions apply on CUDA only; CPU half-precision kernels are slow or missing, so CPU stays fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"clip.precision {precision!r} is not one of {sorted(PRECISIONS)}")
    return PRECISIONS[precision] if device.type == "cuda" else torch.float32
