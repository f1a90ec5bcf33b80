"""The CLIP feature cache on disk: one file per frame, the cache's key, and the atomic writes behind both.

    DIR/cache.json                the key: what made the features (CLIP weights, image size, dense method,
                                  precision, projection, source spec and options) and its hash; written first
    DIR/frames/NNNNNNN.feat       frame NNNNNNN of the source (its position in the source's order)
    DIR/shards/shard-R-of-W.json  rank R of W's frames, written once its shard is complete (feature_index.py)
    DIR/index.json                every frame's entry and the sizes: the manifest, written last (feature_index.py)

A frame file is one JSON header line, space-padded to a multiple of 64 bytes (key hash, frame index, stamp,
point count, seen count, width, payload bytes, CRC-32 of the payload), then the seen points' indices (int32)
and their features (float16), little-endian. The bytes depend only on the features: two extractions of a frame
give the same file. Every file is written atomically (core/files.py), so a reader sees a whole file or none; a
temporary left by a killed process is never read and is removed when its frame is redone.
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.files import atomic_write, is_temporary, temporaries
from ov_panoptic_ros.train.config import differences

FORMAT = 1
KEY_FILE, INDEX_FILE, FRAMES_DIR = "cache.json", "index.json", "frames"
_ALIGN = 64  # header padding: the payload starts aligned for the int32 and float16 views
_MAX_HEADER = 4096


class FeatureCacheError(ValueError):
    """A feature cache that cannot be used as asked; the message names the file or both settings."""


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def frame_path(root: Path, index: int) -> Path:
    return Path(root) / FRAMES_DIR / f"{index:07d}.feat"


def remove_stale_temporaries(path: Path) -> None:
    """Temporaries of `path` left by a killed writer (its frame is being redone now)."""
    for tmp in temporaries(path):
        tmp.unlink(missing_ok=True)


def write_json(path: Path, doc: dict) -> None:
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=True).encode())


def check_key(root: Path, key: dict, create: bool) -> str:
    """The key's hash when DIR/cache.json holds this key (written when absent and `create`); FeatureCacheError
    naming every differing setting, with both values, when the cache was made by another CLIP or config."""
    path = Path(root) / KEY_FILE
    if not path.exists():
        if not create:
            raise FeatureCacheError(f"{root} is not a feature cache (no {KEY_FILE}): run `ov-panoptic "
                                    "extract-features` to write it")
        if Path(root).is_dir() and any(not is_temporary(p) for p in Path(root).iterdir()):
            raise FeatureCacheError(f"{root} is not empty and holds no {KEY_FILE}: choose another directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"format": FORMAT, "key_hash": key_hash(key), "key": key})  # ranks write the same bytes
    try:
        saved = json.loads(path.read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FeatureCacheError(f"{path} cannot be read ({e}): remove the directory and extract again") from e
    if saved != key:
        diff = "; ".join(differences(saved, key, "the cache", "this config"))
        raise FeatureCacheError(f"feature cache {root} was made by another CLIP or config ({diff}): extract into "
                                "another directory, or use the config that made it")
    return key_hash(key)


def encode_frame(key: str, frame: int, stamp_ns: int, points: int, index: np.ndarray, features: np.ndarray
                 ) -> list[bytes]:
    """The header line and payload of a frame file: `index` (S,) point indices, `features` (S, D) rows."""
    payload = [np.ascontiguousarray(index, dtype="<i4").tobytes(),
               np.ascontiguousarray(features, dtype="<f2").tobytes()]
    crc = zlib.crc32(payload[1], zlib.crc32(payload[0]))
    head = {"format": FORMAT, "key": key, "frame": frame, "stamp_ns": int(stamp_ns), "points": int(points),
            "seen": int(index.shape[0]), "dim": int(features.shape[1]), "bytes": len(payload[0]) + len(payload[1]),
            "crc32": crc}
    text = json.dumps(head, sort_keys=True).encode()
    text += b" " * (-(len(text) + 1) % _ALIGN) + b"\n"
    return [text, *payload]


def read_header(path: Path) -> dict:
    """A frame file's header, with `offset` (payload start) and `size` (file bytes); FeatureCacheError when the
    file is missing, not a frame file, or not as long as its header says (truncated)."""
    try:
        with open(path, "rb") as f:
            line = f.readline(_MAX_HEADER)
            size = os.fstat(f.fileno()).st_size
        head = json.loads(line)
        head["offset"], head["size"] = len(line), size
        if head.get("format") != FORMAT or len(line) % _ALIGN or size != len(line) + head["bytes"]:
            raise ValueError(f"{size} bytes where its header promises {len(line) + head.get('bytes', 0)}")
        return head
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FeatureCacheError(f"feature cache frame {path} is unreadable ({e})") from e


def read_frame(path: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """(header, (S,) int32 point indices, (S, D) float16 features), the payload checked against its CRC-32."""
    head = read_header(path)
    with open(path, "rb") as f:
        f.seek(head["offset"])
        payload = bytearray(head["bytes"])  # writable: torch wraps it without a copy
        got = f.readinto(payload)
    if got != head["bytes"] or zlib.crc32(payload) != head["crc32"]:
        raise FeatureCacheError(f"feature cache frame {path} is corrupt (CRC-32 mismatch): run `ov-panoptic "
                                "extract-features --verify` on the cache to redo it")
    s, d = head["seen"], head["dim"]
    index = np.frombuffer(payload, dtype="<i4", count=s)
    features = np.frombuffer(payload, dtype="<f2", offset=4 * s).reshape(s, d)
    return head, index, features
