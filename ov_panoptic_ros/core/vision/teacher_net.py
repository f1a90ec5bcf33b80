"""The teacher's image network: a small FPN-style CNN giving one embedding per cell at stride 4 or 8.

It plays CLIP's image tower on the synthetic world (see teacher.py). Four levels at strides 2, 4, 8 and 16
(widths w/2, w, 2w, 4w; a residual block per level, two at the coarsest, whose receptive field spans most of
a training crop) are fused top-down to the output stride, as in FPN, so each cell sees both its own texture
and the context that tells a grey road from a grey wall. A 3x3 conv and a 1x1 projection then map each cell
to the text space. Width 32 has 0.86 M parameters (3.4 MB in float32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "fpn-cnn-v1"  # recorded in checkpoints: change it when the layers change
STRIDES = (4, 8)
_LEVEL = {4: 1, 8: 2}  # output stride -> index of the level the top-down path stops at


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class TeacherNet(nn.Module):
    """(B, 3, H, W) RGB in [0, 1], H and W multiples of the stride -> (B, embed_dim, H/stride, W/stride), not unit."""

    def __init__(self, width: int = 32, stride: int = 8, embed_dim: int = 384):
        super().__init__()
        if stride not in STRIDES:
            raise ValueError(f"teacher stride {stride} is not one of {STRIDES}")
        if width < 2 or width % 2:
            raise ValueError(f"teacher width {width} must be an even number >= 2")
        self.width, self.stride, self.embed_dim = width, stride, embed_dim
        c = (width // 2, width, 2 * width, 4 * width)
        self.levels = nn.ModuleList([
            conv_bn(3, c[0], 2),
            nn.Sequential(conv_bn(c[0], c[1], 2), Residual(c[1])),
            nn.Sequential(conv_bn(c[1], c[2], 2), Residual(c[2])),
            nn.Sequential(conv_bn(c[2], c[3], 2), Residual(c[3]), Residual(c[3])),
        ])
        self.out_level = _LEVEL[stride]
        fpn = c[2]
        self.lateral = nn.ModuleList([nn.Conv2d(c[i], fpn, 1) for i in range(self.out_level, 4)])
        self.head = nn.Sequential(conv_bn(fpn, fpn), nn.Conv2d(fpn, embed_dim, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x, skips = (rgb - 0.5) / 0.25, []
        for level in self.levels:
            x = level(x)
            skips.append(x)
        top = self.lateral[-1](skips[-1])
        for i in range(2, self.out_level - 1, -1):  # top-down to the output level
            lateral = self.lateral[i - self.out_level](skips[i])
            top = lateral + F.interpolate(top, size=lateral.shape[2:], mode="bilinear", align_corners=False)
        return self.head(top)

    def architecture(self) -> dict:
        """What a checkpoint records to rebuild this network."""
        return {"name": ARCHITECTURE, "width": self.width, "stride": self.stride, "embed_dim": self.embed_dim}
