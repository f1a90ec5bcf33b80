"""Training from a CLIP feature cache (`train.data.feature_cache: DIR`, written by `ov-panoptic extract-features`):
each frame's per-point CLIP features read from disk instead of running the frozen encoder every step.

The cache is keyed to what made its features (`cache_key`): the encoder's weights (model id: name and
pretrained tag or checkpoint hash; a digest of the weights of a randomly initialized one), the image size,
the dense-feature method, the precision it ran in, the projection settings and the source's spec and options.
A cache of another key is refused with every differing setting named. Each frame is checked against the
source's frame (stamp and point count) and its payload against its CRC-32 before it is used. The features
come back as the pipeline's `point_features` gives them, up to float16 rounding (re-normalized rows).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.core.vision.features import PointFeatures
from ov_panoptic_ros.train.config import SourceConfig, plain
from ov_panoptic_ros.train.feature_index import read_index
from ov_panoptic_ros.train.feature_store import FORMAT, FeatureCacheError, check_key, frame_path, read_frame


def cache_key(pipeline, source: SourceConfig) -> dict:
    """Everything that changes a frame's cached features, for `pipeline` (core.pipeline.PanopticPipeline)
    reading `source`."""
    encoder, config = pipeline.encoder, pipeline.config
    method = getattr(encoder, "tower", None) or getattr(encoder, "net", None) or encoder
    return {"format": FORMAT,
            "encoder": {"model_id": encoder.model_id, "model_name": config.clip.model_name,
                        "pretrained": config.clip.pretrained, "random_weights": _random_weights_digest(encoder),
                        "image_size": encoder.preprocess.short_side, "stride": encoder.preprocess.stride,
                        "dense_method": f"{type(encoder).__name__}/{type(method).__name__}",
                        "precision": str(getattr(encoder, "dtype", torch.float32)).removeprefix("torch."),
                        "embed_dim": encoder.embed_dim},
            "projection": plain(config.projection),
            "source": {"spec": source.spec, "options": json.loads(json.dumps(source.options))},
            "stored": "float16"}


def _random_weights_digest(encoder) -> str | None:
    """A random-init encoder's model id says nothing of its weights (they follow the pipeline's seed)."""
    if not encoder.model_id.endswith("@random"):
        return None
    digest = hashlib.sha256()
    for name, tensor in encoder.model.visual.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """A complete cache, checked against `key` (cache_key of the training pipeline and source)."""

    def __init__(self, root: str | Path, key: dict):
        self.root = Path(root)
        self.key = check_key(self.root, key, create=False)
        index = read_index(self.root, self.key)
        self.frames = index["frames"]
        self.entries = {e[0]: e for e in index["entries"]}

    def point_features(self, i: int, frame: Frame, device: torch.device) -> PointFeatures:
        """Frame `i` of the source (its position in the source's order) as PointFeatures on `device`."""
        path = frame_path(self.root, i)
        entry = self.entries.get(i)
        if entry is None:
            raise FeatureCacheError(f"frame {i} is not in the feature cache {self.root} ({self.frames} frames)")
        _, stamp, points = entry[:3]
        if (points, stamp) != (frame.num_points, frame.stamp_ns):
            raise FeatureCacheError(f"frame {i} of the source has {frame.num_points} points (stamp {frame.stamp_ns})"
                                    f" but the feature cache {path} has {points} (stamp {stamp}): the source is not"
                                    " the one cached; extract again")
        head, index, features = read_frame(path)
        if (head["key"], head["frame"], head["points"]) != (self.key, i, points):
            raise FeatureCacheError(f"{path} is frame {head['frame']} of key {head['key']} with {head['points']} "
                                    f"points, not frame {i} of {self.key} with {points}: extract again")
        index = torch.from_numpy(index).to(device=device, dtype=torch.long)
        seen = torch.zeros(points, dtype=torch.bool, device=device).index_fill_(0, index, True)
        rows = F.normalize(torch.from_numpy(features).to(device).float(), dim=1)
        return PointFeatures(seen, index, rows)
