"""Camera images -> one normalized, stride-padded batch, and the pixel -> feature-cell scale of each image.

Shared by every dense encoder so that `DenseFeatures.pixel_to_cell` means the same thing whichever model made
the maps: an image is resized (aspect kept) so its short side is `short_side`, normalized, and padded
bottom/right to a multiple of the stride; feature cell (j, i) covers resized pixels
[i*stride, (i+1)*stride) x [j*stride, (j+1)*stride).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def check_image(image, index: int) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image {index} must be an (H, W, 3) uint8 RGB array, got {desc}")
    return image


class ImagePreprocess:
    """Resize (short side = `short_side`, aspect kept, bicubic with antialias), normalize, pad to `stride`."""

    def __init__(self, short_side: int, stride: int, mean, std, device: torch.device):
        if short_side < stride:
            raise ValueError(f"clip.image_size {short_side} is smaller than the tower's stride {stride}")
        self.short_side = int(short_side)
        self.stride = int(stride)
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def __call__(self, images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H', W') float32 batch and the (B, 2) (x, y) scale from original pixels to feature cells."""
        resized = [self._resize(check_image(img, i)) for i, img in enumerate(images)]
        stride = self.stride
        pad_h = round_up(max(r.shape[2] for r in resized), stride)
        pad_w = round_up(max(r.shape[3] for r in resized), stride)
        # Replicating the border keeps padded cells close to the image edge they extend.
        batch = torch.cat([F.pad(r, (0, pad_w - r.shape[3], 0, pad_h - r.shape[2]), mode="replicate") for r in resized])
        scale = [[r.shape[3] / img.shape[1] / stride, r.shape[2] / img.shape[0] / stride]
                 for r, img in zip(resized, images)]
        return batch, torch.tensor(scale, dtype=torch.float32, device=self.device)

    def _resize(self, image: np.ndarray) -> torch.Tensor:
        h, w = image.shape[:2]
        s = self.short_side / min(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        if not image.flags.writeable:  # a view into a bag/message buffer: torch only wraps writable arrays
            image = image.copy()
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp_(0.0, 1.0)
        return (x - self.mean) / self.std
