"""Dense, per-location CLIP image features from a frozen open_clip model, and their lookup at LiDAR points.

CLIP is trained to embed a whole image, so its dense features need a trick:
- ViT towers (MaskCLIP, Zhou et al. ECCV 2022): every block but the last runs normally. In the last block the
  attention is replaced by its value path, `out_proj(v_proj(ln_1(x)))`, with no query/key softmax, so each
  patch token keeps its own content instead of mixing in the whole image. The block keeps its residual and
  its MLP branch exactly as MaskCLIP's reference code does (`v = x + attn_v(ln_1(x)); v = v + mlp(ln_2(v))`),
  then `ln_post` and `proj` map every patch token into the joint space.
- ConvNeXt towers (FC-CLIP, Yu et al. NeurIPS 2023): run the timm trunk to its last feature map and apply the
  CLIP head (the trunk head's norm, then the projection) at every location instead of after global pooling.

Feature-map geometry is the one every dense encoder shares (preprocess.py): an image is resized (aspect kept)
and padded to the tower's stride; feature cell (j, i) covers resized pixels [i*stride, (i+1)*stride) x
[j*stride, (j+1)*stride). `DenseFeatures.pixel_to_cell` maps original pixel coordinates (pixel-center
convention, see geometry.py) to continuous feature coordinates.
"""
from __future__ import annotations

import mmap
import os
import sys
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import ClipConfig
from ov_panoptic_ros.core.geometry import PointProjection
from ov_panoptic_ros.core.vision.features import DenseFeatures, PointFeatures
from ov_panoptic_ros.core.vision.preprocess import ImagePreprocess, round_up
from ov_panoptic_ros.core.vision.weights import checkpoint_path, compute_dtype, file_sha256

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
FLOAT32_EXACT_INT = 1 << 24  # integers up to this are exact in float32: index arithmetic may run in float32

_register_lock = threading.Lock()


def register_model_configs() -> None:
    """Make our tiny open_clip architectures (model_configs/*.json) known to open_clip, once per process."""
    import open_clip

    with _register_lock:
        ours = {p.stem for p in MODEL_CONFIG_DIR.glob("*.json")}
        if not ours <= set(open_clip.list_models()):
            open_clip.add_model_config(MODEL_CONFIG_DIR)


class DenseClipEncoder:
    """A frozen open_clip model: dense CLIP-space feature maps from camera images, and prompt embeddings.

    It is both towers of the open_clip backend (`DenseImageEncoder` and `TextTower`, see backend.py).

    Frozen: eval mode, no parameter requires grad, encoding runs under inference mode. `clip.precision`
    fp16/bf16 applies on CUDA only; on the CPU the model always runs in fp32.
    """

    def __init__(self, clip_cfg: ClipConfig, device: torch.device):
        import open_clip

        register_model_configs()
        name = clip_cfg.model_name
        if name not in open_clip.list_models():
            raise ValueError(f"clip.model_name {name!r} is not an open_clip model (e.g. {open_clip.list_models()[:5]})")
        weights = checkpoint_path(clip_cfg.checkpoint)
        self.device = torch.device(device)
        self.dtype = compute_dtype(clip_cfg.precision, self.device)
        if clip_cfg.pretrained:
            self.model = create_pretrained(name, clip_cfg.pretrained, weights)
            self.model_id = f"{name}@{clip_cfg.pretrained}"  # open_clip's tags name fixed releases
        else:
            self.model = open_clip.create_model(name, pretrained=str(weights) if weights else None)
            self.model_id = f"{name}@{file_sha256(weights)[:16] if weights else 'random'}"
        self.model.to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(name)
        self.model_name = name
        self.embed_dim = int(open_clip.get_model_config(name)["embed_dim"])
        self.tower = dense_tower(self.model.visual)
        norm = open_clip.get_model_preprocess_cfg(self.model)
        short_side = clip_cfg.image_size or min(_pair(self.model.visual.image_size))
        self.preprocess = ImagePreprocess(short_side, self.tower.stride, norm["mean"], norm["std"], self.device)

    @property
    def stride(self) -> int:
        return self.tower.stride

    def encode(self, images: list[np.ndarray]) -> DenseFeatures:
        """(H, W, 3) uint8 RGB images -> per-location unit CLIP features, batched over all cameras."""
        if not images:
            return DenseFeatures(torch.zeros(0, self.embed_dim, 0, 0, device=self.device),
                                 torch.zeros(0, 2, device=self.device))
        with torch.inference_mode():
            batch, pixel_to_cell = self.preprocess(images)
            tokens = self.tower(batch.to(self.dtype))  # (M, h, w, D)
            tokens = F.normalize(tokens.float(), dim=-1)
        return DenseFeatures(tokens.permute(0, 3, 1, 2), pixel_to_cell)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """The text half of the same CLIP: (P, D) unit embeddings, float32 on the CPU."""
        with torch.inference_mode():
            tokens = self.tokenizer(prompts).to(self.device)
            emb = self.model.encode_text(tokens, normalize=True)
        return emb.float().cpu().clone()  # a normal (non-inference) tensor, safe to use anywhere


def create_pretrained(name: str, tag: str, weights) -> torch.nn.Module:
    """open_clip's model `name` with its released weights `tag`, downloaded (or taken from open_clip's cache).
    Offline, the error names the tag and the way to use a local file instead."""
    import open_clip

    if weights is not None:
        raise ValueError(f"clip.pretrained {tag!r} and clip.checkpoint {str(weights)!r} both name weights: keep one")
    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag not in tags:
        raise ValueError(f"clip.pretrained {tag!r} is not a tag of {name} (open_clip has: {', '.join(tags) or 'none'})")
    try:
        return open_clip.create_model(name, pretrained=tag)
    except Exception as e:  # requests, huggingface_hub and urllib each raise their own kinds when offline
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(
            f"clip.pretrained {tag!r}: open_clip could not fetch the weights of {name} ({first}). Without internet,"
            f" fetch them on a machine that has it (python -c \"import open_clip; open_clip.create_model({name!r},"
            f" pretrained={tag!r})\" caches them under ~/.cache/huggingface), copy the file over and set"
            f" clip.checkpoint to it instead of clip.pretrained") from e


def _pair(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def dense_tower(visual: torch.nn.Module):
    """The dense-feature strategy for an open_clip image tower."""
    from open_clip.timm_model import TimmModel
    from open_clip.transformer import VisionTransformer

    if isinstance(visual, VisionTransformer):
        return ViTValuePathTower(visual)
    if isinstance(visual, TimmModel):
        return TimmConvDenseTower(visual)
    raise ValueError(f"no dense-feature method for image tower {type(visual).__name__} (supported: ViT, timm ConvNeXt)")


class ViTValuePathTower:
    """MaskCLIP dense features from an open_clip VisionTransformer (see the module docstring)."""

    def __init__(self, visual: torch.nn.Module):
        from open_clip.transformer import ResidualAttentionBlock

        blocks = visual.transformer.resblocks
        if visual.attn_pool is not None or not all(isinstance(b, ResidualAttentionBlock) for b in blocks):
            raise ValueError("MaskCLIP dense features need a plain open_clip ViT "
                             "(no attentional pooler, no custom blocks)")
        if blocks[-1].attn.in_proj_weight is None:
            raise ValueError("MaskCLIP dense features need the last block's packed in_proj_weight")
        ph, pw = _pair(visual.patch_size)
        if ph != pw:
            raise ValueError(f"non-square patches {ph}x{pw} are not supported")
        self.visual = visual
        self.stride = ph
        self._pos_cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H/stride, W/stride, D) projected patch tokens (not yet normalized)."""
        v = self.visual
        patches = v.conv1(images)  # (B, width, gh, gw)
        b, width, gh, gw = patches.shape
        cls = v.class_embedding.to(patches.dtype).view(1, 1, width).expand(b, 1, width)
        x = torch.cat([cls, patches.flatten(2).transpose(1, 2)], dim=1)
        x = v.ln_pre(x + self.positional_embedding(gh, gw).to(x.dtype))
        batch_first = v.transformer.batch_first
        x = x if batch_first else x.transpose(0, 1)
        for block in v.transformer.resblocks[:-1]:
            x = block(x)
        x = value_path_block(v.transformer.resblocks[-1], x)
        x = x if batch_first else x.transpose(0, 1)
        tokens = v.ln_post(x[:, 1:]) @ v.proj  # every patch token, not just the class token
        return tokens.reshape(b, gh, gw, -1)

    def positional_embedding(self, gh: int, gw: int) -> torch.Tensor:
        """The learned embedding, bicubically resized to a (gh, gw) patch grid (class position untouched)."""
        pos = self.visual.positional_embedding
        key = (gh, gw, pos.device, pos.dtype)
        if key not in self._pos_cache:
            h0, w0 = self.visual.grid_size
            if (gh, gw) == (h0, w0):
                self._pos_cache[key] = pos
            else:
                grid = pos[1:].float().reshape(1, h0, w0, -1).permute(0, 3, 1, 2)
                grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
                grid = grid.permute(0, 2, 3, 1).reshape(gh * gw, -1).to(pos.dtype)
                self._pos_cache[key] = torch.cat([pos[:1], grid])
        return self._pos_cache[key]


def value_path_block(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's last block: attention replaced by out_proj(v_proj(ln_1(x))), then residual and MLP as usual."""
    attn = block.attn
    d = attn.embed_dim
    w_v = attn.in_proj_weight[2 * d:]
    b_v = attn.in_proj_bias[2 * d:] if attn.in_proj_bias is not None else None
    values = F.linear(block.ln_1(x), w_v, b_v)
    x = x + block.ls_1(attn.out_proj(values))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


class TimmConvDenseTower:
    """FC-CLIP dense features from an open_clip TimmModel with a convolutional (ConvNeXt) trunk."""

    def __init__(self, visual: torch.nn.Module):
        trunk = visual.trunk
        info = getattr(trunk, "feature_info", None)
        if not info or not hasattr(trunk, "forward_head"):
            raise ValueError(f"timm trunk {type(trunk).__name__} exposes no feature_info/forward_head")
        self.visual = visual
        self.stride = int(info[-1]["reduction"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H/stride, W/stride, D): the pooled head applied to each 1x1 location."""
        fmap = self.visual.trunk.forward_features(images)
        if fmap.ndim != 4:
            raise ValueError(f"timm trunk gave a {fmap.ndim}-d feature tensor; dense features need a conv feature map")
        b, c, h, w = fmap.shape
        cells = fmap.permute(0, 2, 3, 1).reshape(b * h * w, c, 1, 1)  # pooling a 1x1 map is the identity
        out = self.visual.head(self.visual.trunk.forward_head(cells))
        return out.reshape(b, h, w, -1)


class RowBuffer:
    """Output memory for `sample_seen_point_features` on the CPU: huge pages, reused across frames.

    A 50k x 768 float32 output (the seen half of a 100k sweep) is 150 MB. Fresh memory costs a page fault
    per 4 KiB and a kernel zeroing pass per frame, more than the sampling itself; 2 MiB pages cut the faults, and reusing the
    previous frame's mapping drops the zeroing too. The mapping is handed out again only when no tensor
    or view from an earlier call is alive (CPython's reference count on it says so exactly); otherwise
    a new one is made and the old one stays with its owner. Every row of a handed-out tensor is
    overwritten by the caller. Thread-safe.
    """

    MIN_BYTES = 8 << 20  # smaller outputs come from torch.empty
    _HUGE_PAGE = 2 << 20

    def __init__(self):
        self._lock = threading.Lock()
        self._mapping: mmap.mmap | None = None

    def rows(self, n: int, d: int) -> torch.Tensor:
        """An uninitialized (n, d) float32 CPU tensor."""
        nbytes = n * d * 4
        if nbytes < self.MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
            return torch.empty(n, d)
        with self._lock:
            mapping = self._mapping
            # References while free: self._mapping, the local name and getrefcount's own argument.
            if mapping is None or len(mapping) < nbytes or sys.getrefcount(mapping) > 3:
                size = round_up(nbytes + nbytes // 8, self._HUGE_PAGE)  # headroom for varying point counts
                mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
                mapping.madvise(mmap.MADV_HUGEPAGE)
                self._mapping = mapping
            return torch.frombuffer(mapping, dtype=torch.float32, count=n * d).view(n, d)


_ROW_BUFFER = RowBuffer()


# Points per block in CPU sampling: each block's sums (block x D floats) stay in cache between the gather,
# the norm and the one write to the output, and the per-block dispatch is amortized.
SAMPLE_BLOCK_POINTS = 1024


def _block_points() -> int:
    """Points per block. Each op in a block is one OpenMP parallel region. When the workers sleep as soon
    as a region ends (OMP_WAIT_POLICY=PASSIVE and no GOMP_SPINCOUNT), waking them costs ~0.1 ms per op on
    a small VM, so with several threads the blocks grow with the thread count; workers that spin a little
    are still awake for the next op, and cache-sized blocks are faster."""
    threads = max(1, torch.get_num_threads())
    sleeping = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" and not os.environ.get("GOMP_SPINCOUNT")
    return SAMPLE_BLOCK_POINTS * threads if sleeping else SAMPLE_BLOCK_POINTS


def sample_seen_point_features(features: DenseFeatures, projection: PointProjection) -> PointFeatures:
    """Bilinear CLIP feature at each seen point's projection, averaged over the cameras that see it, re-normalized.

    Equivalent to `grid_sample(align_corners=False, padding_mode="border")` on each map at the point's
    continuous feature coordinate, but it gathers channels-last rows for the visible (point, camera) pairs
    only, so memory stays O(pairs) instead of O(cameras x points x D). On the CPU the points go in blocks
    (a loop over blocks, never over points) so every intermediate stays in cache and each output row is
    written once. Only seen points get a row (unseen ones are about half of a surround rig's sweep):
    returns PointFeatures with the (N,) bool `seen` mask, the (S,) seen point indices and (S, D) float32
    unit features. The maps are frozen CLIP features: no gradient flows back through sampling.
    """
    m, n = projection.num_cameras, projection.num_points
    if features.num_cameras != m:
        raise ValueError(f"{features.num_cameras} feature maps for {m} projected cameras")
    d = features.maps.shape[1]
    device = projection.uv.device
    if not projection.point.numel():
        return PointFeatures(torch.zeros(n, dtype=torch.bool, device=device),
                             torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, d, device=device))
    table = _channels_last_table(features.maps.to(device))
    rows, weights, offsets, cameras_per_point = bilinear_bags(features, projection)
    seen = cameras_per_point > 0
    index = seen.nonzero().squeeze(1)
    offsets = offsets.index_select(0, index)  # unseen points' bags are empty: no rows to drop
    if device.type == "cpu":
        out = _ROW_BUFFER.rows(offsets.numel(), d)
        _sum_and_normalize(table, rows, weights, offsets, out, _block_points())
    else:
        out = F.embedding_bag(rows, table, offsets, mode="sum", per_sample_weights=weights)
        out = F.normalize(out, dim=1, out=out)
    return PointFeatures(seen, index, out)


def _sum_and_normalize(table, rows, weights, offsets, out, block: int) -> None:
    """out[i] = normalized sum of weights * table rows over bag i, a block of bags at a time."""
    bounds = offsets[::block].tolist() + [rows.numel()]  # first bag entry of each block, and the end
    for i, start in enumerate(range(0, offsets.numel(), block)):
        lo, hi = bounds[i], bounds[i + 1]
        summed = F.embedding_bag(rows[lo:hi], table, offsets[start:start + block] - lo, mode="sum",
                                 per_sample_weights=weights[lo:hi])
        norm = torch.linalg.vector_norm(summed, dim=1, keepdim=True).clamp_min_(1e-12)  # as F.normalize
        torch.div(summed, norm, out=out[start:start + block])


def _channels_last_table(maps: torch.Tensor) -> torch.Tensor:
    """(M, D, h, w) -> (M*h*w, D) float32 rows; a view when the maps are already channels-last."""
    m, d, h, w = maps.shape
    return maps.permute(0, 2, 3, 1).reshape(m * h * w, d).float()


def bilinear_bags(features: DenseFeatures, projection: PointProjection):
    """Per point, the table rows and weights of its bilinear corners in every camera that sees it.

    Bags are ordered by point; a point seen by k cameras gets 4k entries. They are summed, not averaged:
    the result is normalized afterwards, and the sum has the direction of the average.
    The top-left corner is kept in [0, size - 2] so its neighbours are in the map; beyond the outer cell
    centers the fraction saturates at 0 or 1, which puts the whole weight on the border cell: the same
    value as clamping the corner indices (border padding). A map one cell wide or high has one corner
    per axis (both corners are the same row).
    Returns flat `rows` (long), `weights` (float32), per-point bag `offsets` (N,) for embedding_bag, and
    the number of cameras that see each point (N,).
    """
    m, _, h, w = features.maps.shape
    device = projection.uv.device
    pair = torch.argsort(projection.point, stable=True)  # the projection's pairs by point, cameras in order
    cam = projection.camera.index_select(0, pair)
    per_point = projection.cameras_per_point
    scale = features.pixel_to_cell.to(device=device, dtype=torch.float32)
    frac, corner = [], []
    for axis, size in ((0, w), (1, h)):  # one contiguous vector per axis: x, then y
        # Continuous feature coordinate relative to the cell centers, its top-left corner and fraction.
        f = projection.uv[:, axis].index_select(0, pair).float().add_(0.5)
        f = f.mul_(scale[:, axis].index_select(0, cam)).sub_(0.5)
        f0 = f.floor().clamp_(0, max(size - 2, 0))
        frac.append(f.sub_(f0).clamp_(0, 1))
        corner.append(f0)
    step_x, step_y = int(w > 1), w * int(h > 1)
    corners = torch.tensor([0, step_x, step_y, step_y + step_x], device=device)
    if m * h * w <= FLOAT32_EXACT_INT:  # row index in float32 is exact: one conversion at the end
        base = corner[1].mul_(w).add_(corner[0]).add_(cam.to(torch.float32), alpha=h * w)
        rows = (base.unsqueeze(1) + corners.to(base.dtype)).long()
    else:
        rows = (cam * (h * w) + corner[1].long() * w + corner[0].long()).unsqueeze(1) + corners
    (fx, fy), weights = frac, torch.empty(rows.shape, device=device)
    gx, gy = 1 - fx, 1 - fy
    for k, (wy, wx) in enumerate(((gy, gx), (gy, fx), (fy, gx), (fy, fx))):  # corners (y0 x0, y0 x1, y1 x0, y1 x1)
        torch.mul(wy, wx, out=weights[:, k])
    offsets = torch.cumsum(per_point, dim=0).sub_(per_point).mul_(4)
    return rows.reshape(-1), weights.reshape(-1), offsets, per_point
