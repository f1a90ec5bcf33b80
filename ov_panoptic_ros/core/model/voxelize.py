"""Points to sparse voxels in torch, on whatever device the points live on.

Grid axes: a cartesian grid indexes (x, y, z); a cylindrical grid (Cylinder3D / P3Former) indexes
(rho, phi, z) with rho = hypot(x, y) and phi = atan2(y, x). `Voxels.coords` keeps that axis order and
`spatial_shape` uses the same order; spconv only needs the two to agree.

The grid has round((max - min) / size) cells per axis (at least one), so a range that is not a whole
number of cells (the presets' 50.26 m / 0.1047 m = 480.04) does not grow a sliver cell; the last
cell absorbs the remainder. Points outside [min, max) are not dropped: they keep their row and get
`point_to_voxel = -1`, and the network reports them UNLABELED. A cylindrical grid whose phi range spans
the full circle wraps every angle into it, so no direction falls out at the seam.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ov_panoptic_ros.core.config import VoxelConfig

GRIDS = ("cartesian", "cylindrical")
FULL_TURN_TOLERANCE = 1e-4  # a phi range this close to 2*pi is treated as the whole circle


@dataclass
class Voxels:
    """The occupied cells of one sweep and how points map to them."""

    coords: torch.Tensor  # (V, 3) int32 cell index per axis, grid axis order; rows sorted by linear index
    point_to_voxel: torch.Tensor  # (N,) long, row of `coords` per point, -1 where the point is out of range
    counts: torch.Tensor  # (V,) long, points per voxel
    spatial_shape: tuple[int, int, int]  # cells per axis, grid axis order
    grid_points: torch.Tensor  # (N, 3) float32, each point in grid coordinates (cartesian or rho/phi/z)

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])

    @property
    def in_range(self) -> torch.Tensor:
        return self.point_to_voxel >= 0


def check_voxel_config(cfg: VoxelConfig) -> None:
    """Reject grids that cannot work, naming the offending field."""
    if cfg.grid not in GRIDS:
        raise ValueError(f"voxel.grid {cfg.grid!r} is not one of {GRIDS}")
    for name in ("size", "range_min", "range_max"):
        if len(getattr(cfg, name)) != 3:
            raise ValueError(f"voxel.{name} needs 3 values, got {list(getattr(cfg, name))}")
    if any(s <= 0 for s in cfg.size):
        raise ValueError(f"voxel.size must be positive, got {list(cfg.size)}")
    if any(hi <= lo for lo, hi in zip(cfg.range_min, cfg.range_max)):
        raise ValueError(
            f"voxel.range_max {list(cfg.range_max)} must exceed range_min {list(cfg.range_min)} on every axis")
    if cfg.grid == "cylindrical" and cfg.range_min[0] < 0:
        raise ValueError(f"cylindrical voxel.range_min radius must be >= 0, got {cfg.range_min[0]}")


def grid_shape(cfg: VoxelConfig) -> tuple[int, int, int]:
    """Cells per axis: the range in voxel sizes, rounded (see module docstring)."""
    return tuple(max(1, round((hi - lo) / s)) for lo, hi, s in zip(cfg.range_min, cfg.range_max, cfg.size))


def to_grid_space(points: torch.Tensor, grid: str) -> torch.Tensor:
    """(N, 3) xyz -> (N, 3) coordinates along the grid's axes."""
    if grid == "cartesian":
        return points.float()
    x, y, z = points.float().unbind(-1)
    return torch.stack([torch.hypot(x, y), torch.atan2(y, x), z], dim=-1)


def voxelize(points: torch.Tensor, cfg: VoxelConfig) -> Voxels:
    """Assign each point to its cell and list the occupied cells once each."""
    check_voxel_config(cfg)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3) xyz, got shape {tuple(points.shape)}")
    shape = grid_shape(cfg)
    grid_points = to_grid_space(points, cfg.grid)
    lo = grid_points.new_tensor(cfg.range_min)
    hi = grid_points.new_tensor(cfg.range_max)
    if cfg.grid == "cylindrical" and cfg.range_max[1] - cfg.range_min[1] >= 2 * math.pi - FULL_TURN_TOLERANCE:
        # A full-circle grid takes every direction: wrap atan2's [-pi, pi] into [min, min + 2 pi), so a
        # [0, 2 pi) grid works too and the seam (phi = +pi on a [-pi, pi) grid) lands in the first cell.
        wrapped = lo[1] + torch.remainder(grid_points[:, 1] - lo[1], 2 * math.pi)
        below_max = torch.nextafter(hi[1], hi.new_tensor(-math.inf))  # in the points' float precision
        grid_points[:, 1] = torch.minimum(wrapped, below_max)
    inside = ((grid_points >= lo) & (grid_points < hi)).all(dim=1) & torch.isfinite(grid_points).all(dim=1)
    cell = torch.floor((grid_points - lo) / grid_points.new_tensor(cfg.size)).long()
    cell = torch.minimum(cell.clamp_min(0), torch.tensor(shape, device=cell.device) - 1)
    linear = (cell[:, 0] * shape[1] + cell[:, 1]) * shape[2] + cell[:, 2]
    unique, inverse, counts = torch.unique(linear[inside], sorted=True, return_inverse=True, return_counts=True)
    point_to_voxel = torch.full((points.shape[0],), -1, dtype=torch.long, device=points.device)
    point_to_voxel[inside] = inverse
    coords = torch.stack([unique // (shape[1] * shape[2]), (unique // shape[2]) % shape[1], unique % shape[2]], dim=1)
    return Voxels(coords.int(), point_to_voxel, counts, shape, grid_points)


def scatter_mean(values: torch.Tensor, index: torch.Tensor, num_segments: int) -> torch.Tensor:
    """(N, D) values averaged per segment; rows with index -1 are ignored, empty segments give zeros."""
    keep = index >= 0
    sums = values.new_zeros((num_segments, values.shape[1]))
    sums.index_add_(0, index[keep], values[keep])
    counts = torch.bincount(index[keep], minlength=num_segments).clamp_min(1).to(values.dtype)
    return sums / counts.unsqueeze(1)


def voxel_centers(voxels: Voxels, cfg: VoxelConfig) -> torch.Tensor:
    """(V, 3) cell centers in grid coordinates."""
    lo = torch.tensor(cfg.range_min, device=voxels.coords.device)
    size = torch.tensor(cfg.size, device=voxels.coords.device)
    return lo + (voxels.coords.float() + 0.5) * size


def voxel_input_features(points: torch.Tensor, voxels: Voxels, cfg: VoxelConfig,
                         intensity: torch.Tensor | None = None) -> torch.Tensor:
    """(V, 8) backbone input: where the points sit inside their cell, where the cell is, how full it is, and
    how bright its points are.

    Channels: mean offset of the points from the cell center in cell sizes (3, in [-0.5, 0.5]);
    mean cartesian xyz divided by the largest absolute range bound (3, about [-1, 1], so the network
    knows height and distance, which a pure offset loses); log1p(point count) (1); mean LiDAR intensity
    times `cfg.intensity_scale` (1; zeros when the cloud has no intensity, so such a cloud looks like a
    uniformly dark one, and a network trained with intensity should be fed clouds that have it).
    """
    size = voxels.grid_points.new_tensor(cfg.size)
    centers = voxel_centers(voxels, cfg)
    p2v = voxels.point_to_voxel
    offsets = torch.zeros_like(voxels.grid_points)
    inside = p2v >= 0
    offsets[inside] = (voxels.grid_points[inside] - centers[p2v[inside]]) / size
    scale = max(max(abs(v) for v in cfg.range_min), max(abs(v) for v in cfg.range_max))
    if intensity is None:
        brightness = offsets.new_zeros((points.shape[0], 1))
    else:
        brightness = intensity.float().unsqueeze(1) * cfg.intensity_scale
    per_point = torch.cat([offsets, points.float() / scale, brightness], dim=1)
    means = scatter_mean(per_point, p2v, voxels.num_voxels)
    return torch.cat([means[:, :6], torch.log1p(voxels.counts.float()).unsqueeze(1), means[:, 6:]], dim=1)


VOXEL_INPUT_CHANNELS = 8
