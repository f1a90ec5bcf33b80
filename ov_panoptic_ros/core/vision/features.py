"""The contracts around feature sampling: dense maps in (from any dense encoder), per-point features out."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DenseFeatures:
    """Unit-norm CLIP features per feature-map location, one map per camera image.

    `maps` is stored channels-last in memory so a location's feature vector is contiguous.
    Continuous feature coordinates of pixel (u, v) are `(uv + 0.5) * pixel_to_cell`; cell (j, i) spans
    [i, i+1) x [j, j+1), so its center is at (i + 0.5, j + 0.5).
    """

    maps: torch.Tensor  # (M, D, h, w) float32
    pixel_to_cell: torch.Tensor  # (M, 2) float32: (x, y) scale from original pixels to feature cells

    @property
    def num_cameras(self) -> int:
        return int(self.maps.shape[0])


@dataclass
class PointFeatures:
    """CLIP features of the seen points only: row k of `features` belongs to point `index[k]`.

    Unseen points (no camera sees them) have no row; in dense (N, D) terms they are zero, so
    `dense()[index] == features` and `dense()[~seen] == 0`.
    """

    seen: torch.Tensor  # (N,) bool
    index: torch.Tensor  # (S,) long, ascending: the points with seen[i]
    features: torch.Tensor  # (S, D) float32, unit rows

    def dense(self) -> torch.Tensor:
        """The (N, D) form, zeros where unseen."""
        out = torch.zeros(self.seen.shape[0], self.features.shape[1], device=self.features.device,
                          dtype=self.features.dtype)
        return out.index_copy_(0, self.index, self.features)


def check_point_features(sampled, n: int, dim: int | None = None) -> None:
    """ValueError naming the mismatch unless `sampled` is PointFeatures for `n` points (with `dim`-wide rows
    when given): an (N,) bool `seen`, an (S,) long `index` and (S, D) `features`, S = the seen count."""
    if not isinstance(sampled, PointFeatures):  # e.g. the old dense (features, seen) pair
        raise ValueError(f"point features must be PointFeatures (seen, index, features), got {type(sampled).__name__}")
    seen, index, features = sampled.seen, sampled.index, sampled.features
    if seen.shape != (n,) or seen.dtype != torch.bool:
        raise ValueError(f"seen must be an (N,) = ({n},) bool tensor, got {tuple(seen.shape)} {seen.dtype}")
    if index.ndim != 1 or index.dtype != torch.long:
        raise ValueError(f"index must be an (S,) long tensor, got {tuple(index.shape)} {index.dtype}")
    s = index.shape[0]
    if dim is not None and (features.ndim != 2 or features.shape != (s, dim)):
        raise ValueError(f"point_features.features must be (S, {dim}) = ({s}, {dim}): one row per seen point, "
                         f"as wide as the CLIP embeddings, got {tuple(features.shape)}")
    if features.ndim != 2 or features.shape[0] != s:
        raise ValueError(f"point_features.features must be (S, D) with S = {s} (one row per seen point), "
                         f"got {tuple(features.shape)}")
    seen_count = int(seen.sum())
    if seen_count != s:
        raise ValueError(f"seen marks {seen_count} points but index lists {s}")
