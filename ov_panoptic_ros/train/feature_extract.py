"""`extract_features`: the frozen CLIP run once over a source, each frame's per-point features stored
(feature_store.py) for training to read instead of running the encoder every step (feature_cache.py).

The features are the trainer's own: `PanopticPipeline.point_features` of the pipeline config without a 3D
checkpoint, as the trainer builds it. Rank R of W (torchrun's RANK and WORLD_SIZE, see distributed.py) takes
the frames i with i % W == R; the index of the whole cache is merged by whichever rank completes it
(feature_index.py). A frame whose file is already there and whole (its header names this key and frame and
the file is as long as it says; with `verify` its CRC-32 too) is kept: an interrupted extraction resumes where
it stopped, and a deleted or damaged frame is redone alone. An indexed source (len and [i]) is read only at
the frames to do; a plain iterable one is read through by every rank, each computing only its own frames.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ov_panoptic_ros.core.config import PipelineConfig
from ov_panoptic_ros.core.files import atomic_write
from ov_panoptic_ros.core.pipeline import PanopticPipeline, resolve_device
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.train.config import SourceConfig
from ov_panoptic_ros.train.feature_cache import cache_key
from ov_panoptic_ros.train.feature_index import finish_shard, start_shard
from ov_panoptic_ros.train.feature_store import (FRAMES_DIR, FeatureCacheError, check_key, encode_frame,
                                                 frame_path, read_frame, read_header, remove_stale_temporaries)


@dataclass
class ExtractResult:
    root: Path
    rank: int
    world: int
    frames: int  # in the source
    written: list[int]  # the frames this process computed
    kept: int  # frames of this shard already in the cache
    shard_bytes: int  # this shard's frame files
    index: dict | None  # the merged index, when this process completed the cache
    wall_s: float


def extract_features(pipeline_config: PipelineConfig, source: SourceConfig, root: str | Path, *, rank: int = 0,
                     world: int = 1, local_rank: int = 0, verify: bool = False, progress: bool = True
                     ) -> ExtractResult:
    """Write (or complete) the feature cache `root` of `source`; this process does rank `rank` of `world`."""
    from tqdm import tqdm

    start, root = time.perf_counter(), Path(root)
    device = resolve_device(pipeline_config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
    pipeline = PanopticPipeline(dataclasses.replace(pipeline_config, checkpoint=None, device=str(device)))
    key = check_key(root, cache_key(pipeline, source), create=True)  # another key: refused, nothing written
    (root / FRAMES_DIR).mkdir(exist_ok=True)
    start_shard(root, rank, world)
    frames = open_source(source.spec, **source.options)
    total = len(frames) if hasattr(frames, "__len__") else None
    bar = tqdm(total=None if total is None else len(range(rank, total, world)), unit="frame",
               desc="extract" if world == 1 else f"extract {rank}/{world}", dynamic_ncols=True, disable=not progress)
    entries, written, count, stored = [], [], [0], 0
    try:
        for i, get in _shard(frames, rank, world, count):
            path = frame_path(root, i)
            head = _kept(path, key, i, verify)
            frame = get() if head is None or not _indexed(frames) else None
            if head is not None and frame is not None and (head["stamp_ns"], head["points"]) != \
                    (frame.stamp_ns, frame.num_points):
                raise FeatureCacheError(f"{path} holds a frame of {head['points']} points at stamp {head['stamp_ns']}"
                                        f", the source's frame {i} has {frame.num_points} at {frame.stamp_ns}: the "
                                        "source changed under the same spec; extract into another directory")
            if head is None:
                remove_stale_temporaries(path)
                _, sampled = pipeline.point_features(frame)
                seen = sampled.index.cpu().numpy()
                size = atomic_write(path, encode_frame(key, i, frame.stamp_ns, frame.num_points, seen,
                                                       sampled.features.to(torch.float16).cpu().numpy()))
                head = {"stamp_ns": int(frame.stamp_ns), "points": int(frame.num_points), "seen": int(seen.shape[0]),
                        "size": size}  # what the header just written says, and the file's length
                written.append(i)
            entries.append([i, head["stamp_ns"], head["points"], head["seen"], head["size"]])
            stored += head["size"]
            bar.set_postfix({"new": len(written), "kept": len(entries) - len(written), "MB": f"{stored / 1e6:.1f}"},
                            refresh=False)
            bar.update(1)
    finally:
        bar.close()
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if count[0] == 0:
        raise FeatureCacheError(f"the source {source.spec!r} yields no frames")
    index = finish_shard(root, key, rank, world, count[0], entries)
    return ExtractResult(root, rank, world, count[0], written, len(entries) - len(written), stored, index,
                         time.perf_counter() - start)


def _indexed(source) -> bool:
    return hasattr(source, "__getitem__") and hasattr(source, "__len__")


def _shard(source, rank: int, world: int, count: list[int]):
    """(frame index, () -> Frame) of this rank's frames; count[0] = the source's frame count at the end."""
    if _indexed(source):
        count[0] = len(source)
        for i in range(rank, len(source), world):
            yield i, (lambda i=i: source[i][0])
        return
    for i, (frame, _) in enumerate(source):
        count[0] = i + 1
        if i % world == rank:
            yield i, (lambda frame=frame: frame)


def _kept(path: Path, key: str, i: int, verify: bool) -> dict | None:
    """The header of frame i's file when it is there, whole and of this key; None when it must be (re)done."""
    if not path.exists():
        return None
    try:
        head = read_frame(path)[0] if verify else read_header(path)
    except FeatureCacheError:
        return None
    return head if (head["key"], head["frame"]) == (key, i) else None
