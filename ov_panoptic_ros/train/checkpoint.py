"""A run's directory and its training checkpoint: everything a resumed run needs to continue exactly.

    OUT/run.json         what the run is: its identity (the settings that shape the weights) and their hash
    OUT/checkpoint.pt    the training state: network, optimizer, scheduler, scaler, RNG states, data position
    OUT/network.pt       the network alone (core.model.checkpoint format), for the pipeline's `checkpoint:`

Every file is written to a temporary name and renamed, so a crash or Ctrl-C mid-save never leaves a truncated
file under the real name. Every check that can refuse a run happens before anything is written.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from ov_panoptic_ros.core.files import atomic_open, atomic_write, temporaries
from ov_panoptic_ros.core.model.checkpoint import CheckpointError
from ov_panoptic_ros.train.config import differences

FORMAT = "ov_panoptic_ros.training_state"
FORMAT_VERSION = 1
RUN_FILE, STATE_FILE, NETWORK_FILE = "run.json", "checkpoint.pt", "network.pt"


class RunDirError(ValueError):
    """An output directory that holds something this run must not write over."""


def check_run_dir(out: Path, identity: dict, config_hash: str) -> bool:
    """True when `out` already holds this run (resume), False when it is new or empty; RunDirError naming
    the differing settings when it holds another run, or files of something that is not a run."""
    run_file = out / RUN_FILE
    if not run_file.exists():
        if out.exists() and any(out.iterdir()):
            raise RunDirError(f"output directory {out} is not empty and holds no {RUN_FILE}: choose another --out")
        return False
    try:
        saved = json.loads(run_file.read_text())
        saved_hash, saved_identity = saved["config_hash"], saved["identity"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{run_file} cannot be read ({e}): choose another --out") from e
    if saved_hash != config_hash:
        diff = "; ".join(differences(saved_identity, identity, "that run", "this config")) or "same settings"
        raise RunDirError(f"output directory {out} holds another run (config hash {saved_hash}, this config"
                          f" {config_hash}): {diff}; choose another --out")
    return True


def write_run_file(out: Path, identity: dict, config_hash: str, full_config: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"config_hash": config_hash, "identity": identity, "config": full_config, "created_unix": time.time()}
    atomic_write(out / RUN_FILE, json.dumps(doc, indent=2).encode())


def rng_states(device: torch.device) -> dict:
    """Python, numpy, torch CPU and the training GPU's generator states, as weights_only-loadable values
    (only the training device's: asking for every GPU's would open a CUDA context on each)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_states(states: dict, device: torch.device) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)


def save_state(out: Path, state: dict) -> Path:
    path = out / STATE_FILE
    for stale in temporaries(path):  # a killed save's (rank 0 alone saves): a checkpoint may be gigabytes
        stale.unlink(missing_ok=True)
    with atomic_open(path) as f:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, f)
    return path


def load_state(out: Path, identity: dict, config_hash: str, clip_model_id: str) -> dict | None:
    """The saved training state, or None when `out` holds none; CheckpointError when it cannot be read or
    belongs to another config or CLIP (naming both values)."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises assorted types for truncated or foreign files
        reason = (str(e).strip().splitlines() or [""])[0]  # some of torch's messages run over many lines
        raise CheckpointError(f"training checkpoint {path} cannot be read ({type(e).__name__}: {reason});"
                              " delete it to start over, or choose another --out") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ov_panoptic_ros training checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"training checkpoint {path} has format version {state.get('format_version')!r};"
                              f" this code reads version {FORMAT_VERSION}")
    if state["config_hash"] != config_hash:
        diff = "; ".join(differences(state["identity"], identity, "the checkpoint", "this config"))
        raise CheckpointError(f"training checkpoint {path} is of another config (hash {state['config_hash']},"
                              f" this config {config_hash}): {diff}")
    if state["clip_model_id"] != clip_model_id:
        raise CheckpointError(f"training checkpoint {path} was trained with CLIP {state['clip_model_id']}, but the"
                              f" configured CLIP is {clip_model_id}")
    return state
