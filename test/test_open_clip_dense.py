"""Dense CLIP features (MaskCLIP value path, FC-CLIP ConvNeXt head), the checkpoint loader, point sampling."""
import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import ClipConfig
from ov_panoptic_ros.core.geometry import PointProjection
from ov_panoptic_ros.core.vision import open_clip_dense
from ov_panoptic_ros.core.vision.features import PointFeatures
from ov_panoptic_ros.core.vision.open_clip_dense import (DenseClipEncoder, DenseFeatures, compute_dtype,
                                                         sample_seen_point_features)

CPU = torch.device("cpu")


def sample_dense(feats, proj):
    """(N, D) features (zeros where unseen) and the seen mask, built from the compact sampling output."""
    sampled = sample_seen_point_features(feats, proj)
    return sampled.dense(), sampled.seen


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return DenseClipEncoder(ClipConfig(model_name="ov-tiny-vit"), CPU)


def random_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_encode_shapes_dtypes_and_unit_norm(vit):
    # 120x160 -> short side 96 -> 96x128 (6x8 patches); 100x150 -> 96x144 (6x9); batch padded to 6x9.
    feats = vit.encode([random_image(120, 160), random_image(100, 150, 1)])
    assert feats.maps.shape == (2, 64, 6, 9) and feats.maps.dtype == torch.float32
    assert torch.allclose(feats.maps.norm(dim=1), torch.ones(2, 6, 9), atol=1e-5)
    expected = [[128 / 160 / 16, 96 / 120 / 16], [144 / 150 / 16, 96 / 100 / 16]]
    assert torch.allclose(feats.pixel_to_cell, torch.tensor(expected))
    assert vit.embed_dim == 64 and vit.model_id == "ov-tiny-vit@random"


def test_read_only_images_encode_like_writable_ones(vit):
    """Images from bags and messages are read-only views; they must encode without torch's warning."""
    import warnings

    image = random_image(40, 56)
    frozen = image.copy()
    frozen.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = vit.encode([frozen]).maps
    assert torch.equal(maps, vit.encode([image]).maps)


def test_zero_images_give_zero_maps(vit):
    feats = vit.encode([])
    assert feats.maps.shape[:2] == (0, 64) and feats.pixel_to_cell.shape == (0, 2)
    empty = PointProjection.from_dense(torch.zeros(0, 4, 2), torch.zeros(0, 4, dtype=torch.bool))
    sampled = sample_seen_point_features(feats, empty)
    assert isinstance(sampled, PointFeatures)
    assert sampled.features.shape == (0, 64) and sampled.index.numel() == 0
    point_features, seen = sampled.dense(), sampled.seen
    assert point_features.shape == (4, 64) and not seen.any() and not point_features.any()


def test_bad_images_are_named(vit):
    with pytest.raises(ValueError, match="image 1 must be an \\(H, W, 3\\) uint8"):
        vit.encode([random_image(96, 96), np.zeros((96, 96), np.uint8)])


def test_model_is_frozen_and_gradients_stop_at_clip(vit):
    params = list(vit.model.parameters())
    assert params and not any(p.requires_grad for p in params)
    assert not vit.model.training
    feats = vit.encode([random_image(96, 96)])
    uv = torch.tensor([[[10.0, 20.0], [50.0, 60.0]]])
    proj = PointProjection.from_dense(uv, torch.ones(1, 2, dtype=torch.bool))
    point_features = sample_seen_point_features(feats, proj).features
    head = torch.nn.Linear(64, 3)  # stands in for anything trainable downstream
    head(point_features).sum().backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in params)


def test_precision_applies_on_cuda_only():
    assert compute_dtype("fp16", CPU) == torch.float32
    assert compute_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ValueError, match="precision 'fp8'"):
        compute_dtype("fp8", CPU)


# ---- MaskCLIP, computed by hand from the raw weights -------------------------------------------------

def layer_norm(x, ln):
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def mlp(x, block):
    assert isinstance(block.mlp.gelu, torch.nn.GELU)
    h = F.gelu(x @ block.mlp.c_fc.weight.T + block.mlp.c_fc.bias)
    return h @ block.mlp.c_proj.weight.T + block.mlp.c_proj.bias


def full_attention(x, attn):
    """Multi-head self-attention from in_proj_weight / out_proj, batch-first (B, L, C)."""
    b, length, c = x.shape
    heads = attn.num_heads
    qkv = x @ attn.in_proj_weight.T + attn.in_proj_bias
    q, k, v = (t.reshape(b, length, heads, c // heads).transpose(1, 2) for t in qkv.split(c, dim=-1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(b, length, c)
    return out @ attn.out_proj.weight.T + attn.out_proj.bias


def value_path(x, attn):
    """MaskCLIP: the value projection then the output projection, no query/key softmax."""
    c = x.shape[-1]
    v = x @ attn.in_proj_weight[2 * c:].T + attn.in_proj_bias[2 * c:]
    return v @ attn.out_proj.weight.T + attn.out_proj.bias


def hand_dense_features(visual, pixels, pos, last_attention=value_path):
    """The ViT tower run block by block from its parameters, every patch token through ln_post and proj."""
    patches = F.conv2d(pixels, visual.conv1.weight, stride=visual.conv1.stride)
    b, c, gh, gw = patches.shape
    tokens = patches.flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(b, 1, c), tokens], dim=1) + pos
    x = layer_norm(x, visual.ln_pre)
    blocks = visual.transformer.resblocks
    for i, block in enumerate(blocks):
        attention = last_attention if i == len(blocks) - 1 else full_attention
        x = x + attention(layer_norm(x, block.ln_1), block.attn)
        x = x + mlp(layer_norm(x, block.ln_2), block)
    out = layer_norm(x[:, 1:], visual.ln_post) @ visual.proj
    return F.normalize(out, dim=-1).reshape(b, gh, gw, -1).permute(0, 3, 1, 2)


def normalized_pixels(encoder, image):
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    return (x - mean) / std


def test_maskclip_features_match_hand_computation_at_native_grid(vit):
    image = random_image(96, 96, 5)  # the model's own size: no resize, no padding, 6x6 grid
    visual = vit.model.visual
    with torch.no_grad():
        expected = hand_dense_features(visual, normalized_pixels(vit, image), visual.positional_embedding)
        with_softmax = hand_dense_features(visual, normalized_pixels(vit, image), visual.positional_embedding,
                                           last_attention=full_attention)
    got = vit.encode([image]).maps
    assert got.shape == expected.shape == (1, 64, 6, 6)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, with_softmax, atol=1e-2)  # the value path really differs from attention


def test_maskclip_interpolates_positions_for_non_square_grid(vit):
    image = random_image(96, 160, 6)  # short side already 96: 6x10 patches, positions resized from 6x6
    visual = vit.model.visual
    with torch.no_grad():
        pos = visual.positional_embedding
        grid = pos[1:].reshape(1, 6, 6, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(6, 10), mode="bicubic", align_corners=False)
        pos = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(60, -1)])
        expected = hand_dense_features(visual, normalized_pixels(vit, image), pos)
    got = vit.encode([image]).maps
    assert got.shape == (1, 64, 6, 10)
    assert torch.allclose(got, expected, atol=1e-5)


def test_convnext_tower_applies_clip_head_per_location():
    torch.manual_seed(0)
    enc = DenseClipEncoder(ClipConfig(model_name="ov-tiny-convnext"), CPU)
    assert enc.stride == 32
    feats = enc.encode([random_image(96, 128), random_image(120, 120, 1)])
    assert feats.maps.shape == (2, 64, 3, 4)  # 96x128 and 96x96 at stride 32, padded to 3x4
    assert torch.allclose(feats.maps.norm(dim=1), torch.ones(2, 3, 4), atol=1e-5)
    # On a 1x1 feature map global pooling is the identity, so the dense feature IS the image embedding.
    small = DenseClipEncoder(ClipConfig(model_name="ov-tiny-convnext", image_size=32), CPU)
    small.model.load_state_dict(enc.model.state_dict())
    image = random_image(32, 32, 2)
    with torch.no_grad():
        pooled = F.normalize(small.model.encode_image(normalized_pixels(small, image)), dim=-1)
    dense = small.encode([image]).maps
    assert dense.shape == (1, 64, 1, 1)
    assert torch.allclose(dense[:, :, 0, 0], pooled, atol=1e-5)


# ---- loader -----------------------------------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_features(vit, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(vit.model.state_dict(), path)
    torch.manual_seed(123)  # a different random init, overwritten by the checkpoint
    loaded = DenseClipEncoder(ClipConfig(model_name="ov-tiny-vit", checkpoint=str(path)), CPU)
    fresh = DenseClipEncoder(ClipConfig(model_name="ov-tiny-vit"), CPU)
    image = random_image(96, 128, 3)
    assert torch.equal(loaded.encode([image]).maps, vit.encode([image]).maps)
    assert not torch.allclose(fresh.encode([image]).maps, vit.encode([image]).maps)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert loaded.model_id == f"ov-tiny-vit@{digest}"


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        DenseClipEncoder(ClipConfig(model_name="ov-tiny-vit", checkpoint=str(missing)), CPU)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="'no-such-clip'"):
        DenseClipEncoder(ClipConfig(model_name="no-such-clip"), CPU)


def test_pretrained_tags_are_checked_and_never_mixed_with_a_local_file(vit, tmp_path):
    with pytest.raises(ValueError, match="clip.pretrained 'laion9' is not a tag of ViT-B-32 .*laion2b_s34b_b79k"):
        DenseClipEncoder(ClipConfig(model_name="ViT-B-32", pretrained="laion9"), CPU)
    with pytest.raises(ValueError, match="is not a tag of ov-tiny-vit \\(open_clip has: none\\)"):
        DenseClipEncoder(ClipConfig(model_name="ov-tiny-vit", pretrained="openai"), CPU)
    local = tmp_path / "clip.pt"
    local.write_bytes(b"weights")
    with pytest.raises(ValueError, match="both name weights: keep one"):
        DenseClipEncoder(ClipConfig(model_name="ViT-B-32", pretrained="openai", checkpoint=str(local)), CPU)


def test_an_offline_pretrained_tag_is_one_error_naming_the_tag_and_the_local_file_way(tmp_path):
    """No internet here: open_clip's download fails, and the message says how to use clip.checkpoint instead.
    HF_HUB_OFFLINE makes the hub fail at once rather than after its network timeouts."""
    import os
    import subprocess
    import sys

    code = ("from ov_panoptic_ros.core.config import ClipConfig\n"
            "from ov_panoptic_ros.core.vision.open_clip_dense import DenseClipEncoder\n"
            "import torch\n"
            "try:\n"
            "    DenseClipEncoder(ClipConfig(model_name='ViT-B-32', pretrained='laion2b_s34b_b79k'), torch.device('cpu'))\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    message = out.stdout.strip()
    assert message.startswith("clip.pretrained 'laion2b_s34b_b79k': open_clip could not fetch the weights of"
                              " ViT-B-32 ("), (message, out.stderr[-2000:])
    assert "set clip.checkpoint to it instead of clip.pretrained" in message and "\n" not in message


def test_the_teacher_has_no_pretrained_tags():
    from ov_panoptic_ros.core.vision.teacher import load_teacher

    with pytest.raises(ValueError, match="clip.pretrained 'openai' is an open_clip tag; the teacher has none"):
        load_teacher(ClipConfig(model_name="teacher", checkpoint="models/teacher.pt", pretrained="openai"), CPU)


# ---- sampling on constructed maps -------------------------------------------------------------------

def coordinate_maps(m, h, w):
    """Channels (x, y, 1) where x / y are each cell center's own feature coordinate."""
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    one = torch.stack([xs, ys, torch.ones(h, w)])
    return one.expand(m, 3, h, w).contiguous()


def projection(uv, visible):
    uv = torch.as_tensor(uv, dtype=torch.float32)
    return PointProjection.from_dense(uv, torch.as_tensor(visible))


def test_bilinear_sampling_is_exact_on_a_coordinate_map():
    h, w, scale = 4, 6, 0.125  # 8 original pixels per feature cell
    feats = DenseFeatures(coordinate_maps(1, h, w), torch.tensor([[scale, scale]]))
    u = torch.tensor([-0.5, 3.5, 10.0, 17.3, 40.0, 47.49])
    v = torch.tensor([0.0, 12.0, 20.25, 31.4, 5.0, 9.0])
    proj = projection(torch.stack([u, v], dim=1)[None], torch.ones(1, 6, dtype=torch.bool))
    got, seen = sample_dense(feats, proj)
    assert seen.all()
    # Bilinear interpolation of a linear ramp is the ramp itself, clamped to the outer cell centers.
    fx = ((u + 0.5) * scale).clamp(0.5, w - 0.5)
    fy = ((v + 0.5) * scale).clamp(0.5, h - 0.5)
    assert torch.allclose(got[:, 0] / got[:, 2], fx, atol=1e-5)
    assert torch.allclose(got[:, 1] / got[:, 2], fy, atol=1e-5)
    assert torch.allclose(got.norm(dim=1), torch.ones(6), atol=1e-6)


def test_sampling_matches_grid_sample_with_align_corners_false():
    gen = torch.Generator().manual_seed(0)
    m, d, h, w = 2, 16, 5, 7
    maps = F.normalize(torch.randn(m, d, h, w, generator=gen), dim=1)
    scale = torch.tensor([[0.1, 0.1], [0.05, 0.05]])
    feats = DenseFeatures(maps, scale)
    n = 50
    uv = torch.rand(m, n, 2, generator=gen) * torch.tensor([w, h]) / scale[:, None, :] - 0.5
    visible = torch.zeros(m, n, dtype=torch.bool)
    visible[0, :25] = True
    visible[1, 25:] = True
    sampled = sample_seen_point_features(feats, projection(uv, visible))
    seen = sampled.seen
    assert seen.all() and torch.equal(sampled.index, torch.arange(n))
    got = torch.empty(n, d)
    got[sampled.index] = sampled.features  # row k belongs to point index[k]
    for cam, rows in [(0, slice(0, 25)), (1, slice(25, 50))]:
        f = (uv[cam, rows] + 0.5) * scale[cam]
        grid = (2 * f / torch.tensor([w, h]) - 1).view(1, 1, -1, 2)
        ref = F.grid_sample(maps[cam:cam + 1], grid, mode="bilinear", padding_mode="border", align_corners=False)
        ref = F.normalize(ref[0, :, 0].T, dim=1)
        assert torch.allclose(got[rows], ref, atol=1e-5)


def reference_point_features(maps, scale, uv, visible):
    """grid_sample in every camera, masked to the cameras that see each point, averaged, normalized."""
    m, _, h, w = maps.shape
    f = (uv + 0.5) * scale[:, None, :]
    grid = (2 * f / torch.tensor([w, h]) - 1).unsqueeze(1)  # (M, 1, N, 2)
    per_camera = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)
    per_camera = per_camera[:, :, 0].permute(0, 2, 1) * visible.unsqueeze(-1)  # (M, N, D)
    mean = per_camera.sum(0) / visible.sum(0).clamp(min=1).unsqueeze(-1)
    return F.normalize(mean, dim=1)


def test_sampling_many_points_in_blocks_matches_reference():
    # More points than one sampling block and a large output (the huge-page path), 3 overlapping cameras.
    gen = torch.Generator().manual_seed(1)
    m, d, h, w, n = 3, 512, 6, 9, 6000
    maps = F.normalize(torch.randn(m, d, h, w, generator=gen), dim=1)
    scale = torch.tensor([[0.05, 0.05], [0.06, 0.06], [0.04, 0.04]])
    uv = torch.rand(m, n, 2, generator=gen) * torch.tensor([w, h]) / scale[:, None, :] - 0.5
    visible = torch.rand(m, n, generator=gen) < 0.4
    sampled = sample_seen_point_features(DenseFeatures(maps, scale), projection(uv, visible))
    assert sampled.features.numel() * 4 >= open_clip_dense.RowBuffer.MIN_BYTES  # the huge-page path
    got, seen = sampled.dense(), sampled.seen
    assert got.shape == (n, d) and got.dtype == torch.float32
    assert torch.equal(seen, visible.any(0)) and 0 < int(seen.sum()) < n
    expected = reference_point_features(maps, scale, uv, visible)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(got[~seen], torch.zeros(int((~seen).sum()), d))


def test_large_outputs_reuse_memory_only_when_released():
    gen = torch.Generator().manual_seed(2)
    m, d, h, w, n = 1, 512, 4, 4, 10000  # ~5000 seen rows, 10 MB output: the huge-page buffer path
    scale = torch.tensor([[0.1, 0.1]])
    uv = torch.rand(m, n, 2, generator=gen) * 40 - 0.5
    visible = torch.rand(m, n, generator=gen) < 0.5
    feats_a = DenseFeatures(F.normalize(torch.randn(m, d, h, w, generator=gen), dim=1), scale)
    feats_b = DenseFeatures(F.normalize(torch.randn(m, d, h, w, generator=gen), dim=1), scale)
    first = sample_seen_point_features(feats_a, projection(uv, visible)).features
    assert first.numel() * 4 >= open_clip_dense.RowBuffer.MIN_BYTES
    kept = first.clone()
    second = sample_seen_point_features(feats_b, projection(uv, visible)).features  # `first` alive: new memory
    assert second.data_ptr() != first.data_ptr() and torch.equal(first, kept)
    address = second.data_ptr()
    del first, kept, second
    third = sample_seen_point_features(feats_a, projection(uv, visible))  # nothing alive: memory reused
    assert third.features.data_ptr() == address
    assert torch.allclose(third.dense(), reference_point_features(feats_a.maps, scale, uv, visible), atol=1e-5)


def test_cameras_are_averaged_and_unseen_points_are_zero():
    a = F.normalize(torch.tensor([1.0, 0.0, 0.0, 1.0]), dim=0)
    b = torch.tensor([0.0, 1.0, 0.0, 0.0])
    maps = torch.stack([a.view(4, 1, 1).expand(4, 3, 3), b.view(4, 1, 1).expand(4, 3, 3)])
    feats = DenseFeatures(maps, torch.full((2, 2), 0.1))
    visible = torch.tensor([[True, True, False, False], [True, False, True, False]])
    got, seen = sample_dense(feats, projection(torch.full((2, 4, 2), 5.0), visible))
    assert seen.tolist() == [True, True, True, False]
    assert torch.allclose(got[0], F.normalize(a + b, dim=0), atol=1e-6)  # both cameras, averaged
    assert torch.allclose(got[1], a, atol=1e-6) and torch.allclose(got[2], b, atol=1e-6)
    assert torch.equal(got[3], torch.zeros(4))
    assert got.dtype == torch.float32


def random_case(m, d, h, w, n, seed, p_visible=0.4, overshoot=0.0):
    """Unit maps, one scale per camera, and pixels spread over each image; `overshoot` (in cells) puts
    points beyond the outer cell centers, where border padding applies."""
    gen = torch.Generator().manual_seed(seed)
    maps = F.normalize(torch.randn(m, d, h, w, generator=gen), dim=1)
    scale = 0.02 + 0.08 * torch.rand(m, 2, generator=gen)
    cells = torch.rand(m, n, 2, generator=gen) * (torch.tensor([w, h]) + 2 * overshoot) - overshoot
    uv = cells / scale[:, None, :] - 0.5
    visible = torch.rand(m, n, generator=gen) < p_visible
    return maps, scale, uv, visible


@pytest.mark.parametrize("h, w", [(1, 1), (1, 5), (4, 1), (2, 2), (5, 7)])
def test_sampling_matches_grid_sample_on_thin_maps_and_beyond_the_border(h, w):
    # One-cell-wide/-high maps have a single corner per axis; beyond the outer cell centers the whole
    # weight goes to the border cell (the corner is kept inside the map, the fraction saturates).
    maps, scale, uv, visible = random_case(2, 16, h, w, 400, seed=h * 10 + w, overshoot=1.5)
    got, seen = sample_dense(DenseFeatures(maps, scale), projection(uv, visible))
    assert torch.allclose(got, reference_point_features(maps, scale, uv, visible), atol=1e-5)
    assert torch.equal(got[~seen], torch.zeros(int((~seen).sum()), 16))


@pytest.mark.parametrize("block", [1, 3, 64, 5000])
def test_sampling_is_the_same_for_any_block_size(monkeypatch, block):
    # Blocks that start and end anywhere: inside a run of unseen points, mid-way through bags, past the end.
    maps, scale, uv, visible = random_case(3, 32, 6, 9, 700, seed=3, p_visible=0.3)
    visible[:, 100:260] = False  # a long unseen run
    monkeypatch.setattr(open_clip_dense, "SAMPLE_BLOCK_POINTS", block)
    compact = sample_seen_point_features(DenseFeatures(maps, scale), projection(uv, visible))
    expected = reference_point_features(maps, scale, uv, visible)
    assert torch.allclose(compact.dense(), expected, atol=1e-5)
    assert torch.allclose(compact.features, expected[compact.index], atol=1e-5)


def test_seen_only_sampling_gives_the_rows_of_the_seen_points():
    maps, scale, uv, visible = random_case(3, 64, 6, 9, 3000, seed=4)
    feats, proj = DenseFeatures(maps, scale), projection(uv, visible)
    dense = reference_point_features(maps, scale, uv, visible)
    seen = visible.any(0)
    compact = sample_seen_point_features(feats, proj)
    assert torch.equal(compact.seen, seen)
    assert torch.equal(compact.index, seen.nonzero().squeeze(1))
    assert compact.features.shape == (int(seen.sum()), 64) and compact.features.dtype == torch.float32
    assert torch.allclose(compact.features, dense[seen], atol=1e-5)
    assert torch.allclose(compact.dense(), dense, atol=1e-5)
    assert torch.equal(compact.dense()[~seen], torch.zeros(int((~seen).sum()), 64))
    none_seen = sample_seen_point_features(feats, projection(uv, torch.zeros_like(visible)))
    assert none_seen.features.shape == (0, 64) and none_seen.index.numel() == 0 and not none_seen.seen.any()


def test_row_indices_are_the_same_in_float_and_integer_arithmetic(monkeypatch):
    maps, scale, uv, visible = random_case(2, 8, 5, 6, 500, seed=5, overshoot=0.5)
    feats, proj = DenseFeatures(maps, scale), projection(uv, visible)
    in_float = open_clip_dense.bilinear_bags(feats, proj)
    monkeypatch.setattr(open_clip_dense, "FLOAT32_EXACT_INT", 0)  # force the int64 path
    in_int = open_clip_dense.bilinear_bags(feats, proj)
    for a, b in zip(in_float, in_int):
        assert torch.equal(a, b)


def test_sampling_rejects_mismatched_cameras():
    feats = DenseFeatures(torch.ones(2, 4, 3, 3), torch.ones(2, 2))
    with pytest.raises(ValueError, match="2 feature maps for 1 projected cameras"):
        sample_seen_point_features(feats, projection(torch.zeros(1, 3, 2), torch.ones(1, 3, dtype=torch.bool)))
