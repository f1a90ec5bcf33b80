"""Which frames a feature cache holds: per-rank shard manifests, merged into DIR/index.json by whoever
completes the set.

Rank R of W extracts the frames i with i % W == R (feature_extract.py). Ranks never write the same file: each
writes its own frames and, once its shard is complete, its own manifest DIR/shards/shard-R-of-W.json (an
atomic rename). Then it lists the manifests of the W ranks; the rank that finds all W merges them into
DIR/index.json. No lock and no process group: every rank writes its manifest before it looks, so the last one
to finish always finds all W; two that finish together may both merge, from the same manifests into the same
bytes, each by an atomic rename, so a reader sees one whole index or none. A rank removes its own manifest
when it starts, so a manifest always stands for a complete shard, and the merge checks that the shards agree
on the key and the frame count and that every frame file is there with its recorded size.
"""
from __future__ import annotations

import json
from pathlib import Path

from ov_panoptic_ros.train.feature_store import INDEX_FILE, FeatureCacheError, frame_path, write_json

SHARDS_DIR = "shards"
Entry = list  # [frame, stamp_ns, points, seen, bytes]


def shard_path(root: Path, rank: int, world: int) -> Path:
    return Path(root) / SHARDS_DIR / f"shard-{rank}-of-{world}.json"


def start_shard(root: Path, rank: int, world: int) -> None:
    path = shard_path(root, rank, world)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)


def finish_shard(root: Path, key: str, rank: int, world: int, frames: int, entries: list[Entry]) -> dict | None:
    """Record this rank's complete shard; the merged index when this rank completed the set, else None."""
    write_json(shard_path(root, rank, world), {"key_hash": key, "rank": rank, "world": world, "frames": frames,
                                               "entries": sorted(entries)})
    return merge(root, key, world)


def merge(root: Path, key: str, world: int) -> dict | None:
    paths = [shard_path(root, r, world) for r in range(world)]
    if not all(p.exists() for p in paths):
        return None
    docs = [json.loads(p.read_text()) for p in paths]
    if {d["key_hash"] for d in docs} != {key} or len({d["frames"] for d in docs}) != 1:
        found = ", ".join(f"rank {d['rank']}: key {d['key_hash']}, {d['frames']} frames" for d in docs)
        raise FeatureCacheError(f"the shard manifests in {Path(root) / SHARDS_DIR} disagree ({found}): the source "
                                "changed between ranks; extract again")
    frames = docs[0]["frames"]
    entries = sorted(e for d in docs for e in d["entries"])
    missing = sorted(set(range(frames)) - {e[0] for e in entries})
    gone = [e[0] for e in entries if not _has_size(frame_path(root, e[0]), e[4])]
    if missing or gone:
        raise FeatureCacheError(f"feature cache {root}: frame(s) {(missing + gone)[:10]} missing or changed after "
                                "their shard finished; run extract-features again to redo them")
    index = summary(key, frames, entries)
    write_json(Path(root) / INDEX_FILE, {**index, "world": world})
    return index


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def summary(key: str, frames: int, entries: list[Entry]) -> dict:
    """Sizes for the report: per frame (mean, min, max) and the whole dataset."""
    sizes = [e[4] for e in entries] or [0]
    points, seen = sum(e[2] for e in entries), sum(e[3] for e in entries)
    return {"key_hash": key, "frames": frames, "points": points, "seen_points": seen,
            "seen_share": round(seen / points, 4) if points else 0.0, "bytes": sum(sizes),
            "bytes_per_frame": {"mean": round(sum(sizes) / len(sizes)), "min": min(sizes), "max": max(sizes)},
            "entries": entries}


def read_index(root: Path, key: str) -> dict:
    """The merged index of a complete cache; FeatureCacheError when it is not complete or of another key."""
    path = Path(root) / INDEX_FILE
    if not path.exists():
        raise FeatureCacheError(f"feature cache {root} is incomplete (no {INDEX_FILE}): run `ov-panoptic "
                                "extract-features` again to finish it (frames already written are kept)")
    index = json.loads(path.read_text())
    if index.get("key_hash") != key:
        raise FeatureCacheError(f"{path} belongs to key {index.get('key_hash')}, the cache to {key}: extract again")
    return index
