"""Sparse 3D UNet on spconv: the learnable LiDAR half of the fused features.

Level l has `channels[l]` channels and `blocks_per_level` residual blocks of two 3x3x3 submanifold
convs (BatchNorm1d + ReLU). Between levels a strided 2x2x2 SparseConv3d halves the grid; on the way up
a SparseInverseConv3d (sharing the down conv's indice_key, so it restores exactly the finer level's
voxels in their original order) brings features back, they are concatenated with the skip from the
encoder and fused by a submanifold conv. Output: one feature row per input voxel, same order.

Conv algorithm follows the device, decided once at construction and passed to every conv:
`ConvAlgo.Native` on CPU (spconv's default calls torch.cuda and fails there), spconv's default
`ConvAlgo.MaskImplicitGemm` on CUDA.
"""
from __future__ import annotations

import spconv.pytorch as spconv
import torch
from torch import nn

from ov_panoptic_ros.core.config import BackboneConfig


def conv_algo_for(device: torch.device | str) -> spconv.ConvAlgo:
    return spconv.ConvAlgo.Native if torch.device(device).type == "cpu" else spconv.ConvAlgo.MaskImplicitGemm


def _norm_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU(inplace=True))


def _tag(conv: nn.Module, level: int) -> nn.Module:
    """Remember which grid level a conv writes to (for FLOP estimates)."""
    conv.output_level = level
    return conv


def _subm(in_channels: int, out_channels: int, level: int, algo: spconv.ConvAlgo) -> nn.Module:
    """3x3x3 submanifold conv at `level` (all convs of a level share its indice pairs)."""
    conv = spconv.SubMConv3d(in_channels, out_channels, 3, padding=1, bias=False, indice_key=f"subm{level}", algo=algo)
    return _tag(conv, level)


class ResidualBlock(nn.Module):
    """Two submanifold 3x3x3 convs with an identity shortcut."""

    def __init__(self, channels: int, level: int, algo: spconv.ConvAlgo):
        super().__init__()
        self.conv1 = _subm(channels, channels, level, algo)
        self.norm1 = _norm_relu(channels)
        self.conv2 = _subm(channels, channels, level, algo)
        self.norm2 = nn.BatchNorm1d(channels)

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        out = self.conv1(x)
        out = out.replace_feature(self.norm1(out.features))
        out = self.conv2(out)
        return out.replace_feature(torch.relu(self.norm2(out.features) + x.features))


class ConvNormRelu(nn.Module):
    """One spconv conv followed by BatchNorm1d + ReLU on its features."""

    def __init__(self, conv: nn.Module, out_channels: int):
        super().__init__()
        self.conv = conv
        self.norm = _norm_relu(out_channels)

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        out = self.conv(x)
        return out.replace_feature(self.norm(out.features))


class SparseUNet(nn.Module):
    def __init__(self, in_channels: int, cfg: BackboneConfig, device: torch.device | str):
        super().__init__()
        channels = tuple(int(c) for c in cfg.channels)
        if not channels or any(c <= 0 for c in channels):
            raise ValueError(f"backbone.channels must be a non-empty list of positive ints, got {list(cfg.channels)}")
        if cfg.blocks_per_level < 1:
            raise ValueError(f"backbone.blocks_per_level must be >= 1, got {cfg.blocks_per_level}")
        self.algo = conv_algo_for(device)
        self.channels = channels
        self.out_channels = channels[0]
        algo, levels = self.algo, len(channels)
        self.stem = ConvNormRelu(_subm(in_channels, channels[0], 0, algo), channels[0])
        self.encoders = nn.ModuleList(self._blocks(channels[lv], lv, cfg.blocks_per_level) for lv in range(levels))
        self.downs = nn.ModuleList(
            ConvNormRelu(
                _tag(spconv.SparseConv3d(channels[lv], channels[lv + 1], 2, stride=2, bias=False,
                                         indice_key=f"down{lv}", algo=algo), lv + 1),
                channels[lv + 1],
            )
            for lv in range(levels - 1)
        )
        self.ups = nn.ModuleList(
            ConvNormRelu(
                _tag(spconv.SparseInverseConv3d(channels[lv + 1], channels[lv], 2, bias=False,
                                                indice_key=f"down{lv}", algo=algo), lv),
                channels[lv],
            )
            for lv in range(levels - 1)
        )
        self.merges = nn.ModuleList(
            ConvNormRelu(_subm(2 * channels[lv], channels[lv], lv, algo), channels[lv]) for lv in range(levels - 1)
        )
        self.decoders = nn.ModuleList(
            self._blocks(channels[lv], lv, cfg.blocks_per_level - 1) for lv in range(levels - 1)
        )

    def _blocks(self, channels: int, level: int, count: int) -> nn.Sequential:
        return nn.Sequential(*(ResidualBlock(channels, level, self.algo) for _ in range(count)))

    @property
    def grid_multiple(self) -> int:
        """Each axis of the grid is padded to a multiple of this so no stride-2 level drops edge cells."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, features: torch.Tensor, coords: torch.Tensor, spatial_shape) -> torch.Tensor:
        """(V, in) features at (V, 3) int32 cells -> (V, channels[0]) features, same row order."""
        m = self.grid_multiple
        shape = [-(-int(s) // m) * m for s in spatial_shape]
        batch = torch.zeros((coords.shape[0], 1), dtype=torch.int32, device=coords.device)
        x = spconv.SparseConvTensor(features, torch.cat([batch, coords.int()], dim=1).contiguous(), shape, 1)
        x = self.stem(x)
        skips = []
        for lv, encoder in enumerate(self.encoders):
            x = encoder(x)
            if lv < len(self.downs):
                skips.append(x)
                x = self.downs[lv](x)
        for lv in reversed(range(len(self.ups))):
            up = self.ups[lv](x)
            x = up.replace_feature(torch.cat([up.features, skips[lv].features], dim=1))
            x = self.decoders[lv](self.merges[lv](x))
        return x.features
