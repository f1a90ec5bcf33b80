"""P3Former's position embedding for position-aware segmentation (PA-Seg).

LiDAR instances look alike (one pedestrian's points resemble the next one's), so P3Former lets position guide
the masks: each voxel gets a position embedding, added to its features, and each query predicts a second mask
term from that embedding alone (head.py). Like P3Former's mixed embedding, it sees both cartesian (x, y, z)
and polar (rho, phi) coordinates. Unlike P3Former's, which projects the raw coordinates linearly, it expands
them into sines and cosines (periods from the whole range down to about a metre on a 51.2 m range, as
Mask2Former's and Mask3D's sine embeddings do), so a query's position term can be one compact bump at its
object rather than a ramp across the scene.
"""
from __future__ import annotations

import math

import torch
from torch import nn

NUM_FREQUENCIES = 8  # periods 2, 1, ..., 2 / 2**7 in normalised units: 0.8 m on a 51.2 m range


def fourier_coordinates(positions: torch.Tensor) -> torch.Tensor:
    """(V, 3) positions normalised to about [-1, 1] -> (V, 4 + 5 * 2 * NUM_FREQUENCIES) features."""
    x, y, z = positions.float().unbind(-1)
    rho, phi = torch.hypot(x, y), torch.atan2(y, x) / math.pi  # phi only inside sines: no jump at the seam
    coords = torch.stack([x, y, z, rho, phi], dim=-1)
    freqs = math.pi * 2.0 ** torch.arange(NUM_FREQUENCIES, device=positions.device, dtype=torch.float32)
    angles = (coords.unsqueeze(-1) * freqs).flatten(1)
    return torch.cat([coords[:, :4], angles.sin(), angles.cos()], dim=1)


class PositionEmbedding(nn.Module):
    """(V, 3) normalised voxel positions -> (V, d) embedding: Fourier features, linear, LayerNorm, ReLU."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(4 + 10 * NUM_FREQUENCIES, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.proj(fourier_coordinates(positions))))
