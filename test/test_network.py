"""The whole 3D network on the tiny preset: shapes, gradients, frozen CLIP, open vocabulary, determinism, predict()."""
import dataclasses
import math
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import HeadConfig, load_config
from ov_panoptic_ros.core.frame import UNLABELED, PanopticResult, Vocabulary
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.core.model.fusion import pool_clip_features
from ov_panoptic_ros.core.model.head import DecoderLayer, QueryHead, attention_block_mask
from ov_panoptic_ros.core.model.losses import PanopticLoss
from ov_panoptic_ros.core.model.network import _NoTimer, build_network
from ov_panoptic_ros.core.model.position import fourier_coordinates
from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.core.vision.features import PointFeatures
from ov_panoptic_ros.core.vision.open_clip_dense import DenseClipEncoder, sample_seen_point_features
from ov_panoptic_ros.data.synthetic import (CLASSES, NOVEL, STUFF, make_scene, network_inputs,
                                            random_class_embeddings, scene_vocabulary)

# The tiny preset trained on the synthetic scene's classes, its novel ones held out.
SCENE_VOCABULARY = {"classes": list(scene_vocabulary().classes), "stuff": STUFF, "novel": NOVEL}
CFG = load_config("tiny", overrides={"vocabulary": SCENE_VOCABULARY})
SPLIT = ClassSplit.from_config(CFG.vocabulary)
BASE_STUFF = ("driveable_surface", "sidewalk", "manmade")
NUM_POINTS = 4000
ROAD = CLASSES.index("driveable_surface")


def _build(seed=0, dim=64, cfg=CFG):
    torch.manual_seed(seed)
    return build_network(cfg, dim)


def _scene(num_points):
    scene = make_scene(seed=0, num_points=num_points, image_size=(64, 48))
    assert scene.frame.points.shape == (num_points, 3)
    return scene


@pytest.fixture(scope="module")
def scene():
    return _scene(NUM_POINTS)


@pytest.fixture(scope="module")
def class_emb():
    return random_class_embeddings(scene_vocabulary(), 64)


def _inputs(scene, class_emb):
    points, features, _, _ = network_inputs(scene, class_emb)
    return points, features


def _intensity(scene):
    return torch.from_numpy(scene.frame.intensity)


def compact(features, seen):
    """PointFeatures of the seen rows of (N, D) `features` (rows of unseen points are dropped)."""
    index = seen.nonzero().squeeze(1)
    return PointFeatures(seen, index, features[index])


def _targets(scene):
    return SPLIT.targets(torch.from_numpy(scene.gt_labels.astype(np.int64)),
                         torch.from_numpy(scene.gt_instance_ids.astype(np.int64)))


def _in_voxel_range(points):
    """Points inside the tiny preset's voxel range (the scene's buildings rise above its z_max of 3 m)."""
    lo, hi = torch.tensor(CFG.voxel.range_min), torch.tensor(CFG.voxel.range_max)
    return ((points >= lo) & (points < hi)).all(dim=1)


def _seen(scene):
    """Points inside some camera image of the scene (the same geometry the pipeline uses, no occlusion)."""
    no_occlusion = dataclasses.replace(CFG.projection, occlusion=False)
    return project_points(torch.from_numpy(scene.frame.points), scene.frame.cameras, no_occlusion).seen


class RecordingTimer:
    """The StageTimer protocol (a callable giving a context manager per stage), recording stage order."""

    def __init__(self):
        self.stages = []

    @contextmanager
    def __call__(self, stage):
        self.stages.append(stage)
        yield


# --- real frozen CLIP features from the scene's two cameras -----------------------------------------

@pytest.fixture(scope="module")
def clip_setup(scene):
    encoder = DenseClipEncoder(CFG.clip, torch.device("cpu"))
    images = scene.frame.images
    assert len(images) == 2
    # No occlusion test: at 64x48 px its 8 px blocks would leave a few points per block; visibility is
    # geometry's business, here it only has to give the network two cameras' worth of seen points.
    no_occlusion = dataclasses.replace(CFG.projection, occlusion=False)
    projection = project_points(torch.from_numpy(scene.frame.points), scene.frame.cameras, no_occlusion)
    return encoder, images, projection


def clip_point_features(encoder, images, projection):
    """The pipeline's path: frozen encoder (inference mode) + sample_seen_point_features."""
    return sample_seen_point_features(encoder.encode(images), projection)


def clip_point_features_with_graph(encoder, images, projection):
    """Point features whose autograd graph reaches the CLIP weights (requires_grad switched on for this test),
    so only the network's own handling can keep gradients out of CLIP. sample_seen_point_features writes in place
    (no autograd), so the lookup here is grid_sample at the same continuous feature coordinates."""
    encoder.model.requires_grad_(True)
    for p in encoder.model.parameters():
        p.grad = None
    batch, pixel_to_cell = encoder.preprocess(images)
    maps = F.normalize(encoder.tower(batch), dim=-1).permute(0, 3, 1, 2)  # (M, D, h, w)
    size = torch.tensor([maps.shape[3], maps.shape[2]], dtype=torch.float32)
    cells = (projection.dense_uv() + 0.5) * pixel_to_cell[:, None, :]  # (M, N, 2) continuous feature coordinates
    grid = (2 * cells / size - 1).unsqueeze(1)  # (M, 1, N, 2), align_corners=False convention
    sampled = F.grid_sample(maps, grid, align_corners=False, padding_mode="border")[:, :, 0]  # (M, D, N)
    visible = projection.visible.float()
    summed = (sampled * visible[:, None, :]).sum(dim=0).T  # (N, D)
    seen = projection.visible.any(dim=0)
    sampled = compact(F.normalize(summed, dim=1), seen)
    assert sampled.features.requires_grad
    return sampled


def test_forward_shapes_and_dtypes_with_two_cameras_of_clip_features(scene, clip_setup):
    encoder, images, projection = clip_setup
    sampled = clip_point_features(encoder, images, projection)
    assert 0.1 < sampled.seen.float().mean() < 0.9  # two cameras' worth of points
    train_emb = SPLIT.train_embeddings(random_class_embeddings(scene_vocabulary(), encoder.embed_dim))
    net = _build(dim=encoder.embed_dim)
    out = net(torch.from_numpy(scene.frame.points), sampled, train_emb, _intensity(scene))
    n, v = NUM_POINTS, int(out.point_to_voxel.max()) + 1
    q, c, d = CFG.head.num_queries + len(BASE_STUFF), len(CLASSES) - len(NOVEL), encoder.embed_dim
    assert len(out.mask_logits) == CFG.head.num_layers + 1  # initial queries + each layer
    for masks, logits, embed in zip(out.mask_logits, out.class_logits, out.class_embed):
        assert masks.shape == (q, v) and logits.shape == (q, c) and embed.shape == (q, d)
        assert masks.dtype == logits.dtype == embed.dtype == torch.float32
        assert torch.isfinite(masks).all() and torch.isfinite(logits).all()
    assert out.num_learned_queries == CFG.head.num_queries and out.stuff_names == BASE_STUFF
    assert out.vocabulary == SPLIT.train_vocabulary and out.num_voxels == v
    assert out.voxel_seen.shape == (v,) and out.voxel_seen.dtype == torch.bool
    assert out.point_to_voxel.shape == (n,) and out.point_to_voxel.dtype == torch.long
    assert out.voxel_coords.shape == (v, 3) and out.voxel_coords.dtype == torch.int32
    norms = out.voxel_clip.norm(dim=1)
    torch.testing.assert_close(norms[out.voxel_seen], torch.ones(int(out.voxel_seen.sum())))
    assert (norms[~out.voxel_seen] == 0).all() and 0 < out.voxel_seen.float().mean() < 1


def _assert_every_parameter_trained_and_clip_untouched(net, encoder, out, scene):
    PanopticLoss(CFG.loss)(out, _targets(scene))["total"].backward()
    for name, p in net.named_parameters():
        assert p.requires_grad, name
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in encoder.model.parameters())


def test_backward_on_pipeline_clip_features_reaches_every_parameter_and_not_clip(scene, clip_setup):
    encoder, images, projection = clip_setup
    sampled = clip_point_features(encoder, images, projection)
    train_emb = SPLIT.train_embeddings(random_class_embeddings(scene_vocabulary(), encoder.embed_dim))
    net = _build(dim=encoder.embed_dim)
    out = net(torch.from_numpy(scene.frame.points), sampled, train_emb, _intensity(scene))
    _assert_every_parameter_trained_and_clip_untouched(net, encoder, out, scene)


def test_network_itself_keeps_gradients_out_of_clip(scene, clip_setup):
    encoder, images, projection = clip_setup
    sampled = clip_point_features_with_graph(encoder, images, projection)
    train_emb = SPLIT.train_embeddings(random_class_embeddings(scene_vocabulary(), encoder.embed_dim))
    net = _build(dim=encoder.embed_dim)
    out = net(torch.from_numpy(scene.frame.points), sampled, train_emb)
    try:
        _assert_every_parameter_trained_and_clip_untouched(net, encoder, out, scene)
    finally:
        encoder.model.requires_grad_(False)


def test_vocabulary_size_does_not_change_the_weights_or_shared_scores(scene):
    small = Vocabulary(("car", "road", "building"), ("road", "building"))
    large = Vocabulary(small.classes + tuple(f"thing{i}" for i in range(27)), small.stuff)
    emb_small = random_class_embeddings(small, 64, seed=1)
    emb_large = random_class_embeddings(large, 64, seed=2)
    emb_large.embeddings[:3] = emb_small.embeddings  # the same three classes, 27 more things
    points = torch.from_numpy(scene.frame.points)
    features = F.normalize(torch.randn(NUM_POINTS, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    features = compact(features, _seen(scene))
    net = _build().eval()
    with torch.no_grad():
        a = net(points, features, emb_small)
        b = net(points, features, emb_large)
    assert a.class_logits[-1].shape[1] == 3 and b.class_logits[-1].shape[1] == 30
    torch.testing.assert_close(a.class_logits[-1], b.class_logits[-1][:, :3])
    torch.testing.assert_close(a.mask_logits[-1], b.mask_logits[-1])
    for emb in (emb_small, emb_large):
        assert_valid_result(net.predict(points, features, emb), emb, points.numpy())


@pytest.mark.parametrize("vocabulary", [
    Vocabulary(("car", "truck")),  # no stuff: every query's segment is a thing
    Vocabulary(("road", "building"), ("road", "building")),  # only stuff: no instances
], ids=["things-only", "stuff-only"])
def test_vocabularies_without_things_or_without_stuff_work(scene, vocabulary):
    emb = random_class_embeddings(vocabulary, 64)
    points = torch.from_numpy(scene.frame.points)
    features = F.normalize(torch.randn(NUM_POINTS, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    features = compact(features, _seen(scene))
    net = _build()
    out = net(points, features, emb)
    assert out.mask_logits[-1].shape[0] == CFG.head.num_queries + len(BASE_STUFF)  # fixed by training, not by emb
    with torch.inference_mode():  # how the pipeline calls it
        result = net.predict(points, features, emb)
    assert_valid_result(result, emb, scene.frame.points)


def test_same_seed_same_network_same_outputs(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    a, b = _build(seed=3), _build(seed=3)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    out_a = a(points, features, class_emb)
    out_b = b(points, features, class_emb)
    for key in ("mask_logits", "class_logits", "class_embed"):
        for x, y in zip(getattr(out_a, key), getattr(out_b, key)):
            assert torch.equal(x, y), key
    r1, r2 = a.predict(points, features, class_emb), a.predict(points, features, class_emb)
    assert np.array_equal(r1.labels, r2.labels) and np.array_equal(r1.scores, r2.scores)
    assert not torch.equal(_build(seed=4).head.queries, a.head.queries)


def assert_valid_result(result, class_emb, points):
    n, num_classes = len(points), class_emb.num_classes
    assert isinstance(result, PanopticResult) and result.vocabulary == class_emb.vocabulary
    assert result.labels.shape == result.instance_ids.shape == result.scores.shape == (n,)
    assert result.labels.dtype == np.uint16 and result.instance_ids.dtype == np.uint32
    assert result.scores.dtype == np.float32
    labelled = result.labels != UNLABELED
    assert (result.labels[labelled] < num_classes).all()
    assert ((result.scores >= 0) & (result.scores <= 1)).all() and (result.scores[~labelled] == 0).all()
    is_stuff = class_emb.is_stuff.cpu().numpy()
    stuff_points = labelled & is_stuff[np.minimum(result.labels, num_classes - 1)]
    assert (result.instance_ids[stuff_points] == 0).all() and (result.instance_ids[~labelled] == 0).all()
    ids = set(np.unique(result.instance_ids[result.instance_ids > 0]).tolist())
    assert ids == {i.instance_id for i in result.instances} and len(result.instances) == len(ids)
    for inst in result.instances:
        members = result.instance_ids == inst.instance_id
        assert set(result.labels[members].tolist()) == {inst.label} and not is_stuff[inst.label]
        assert inst.num_points == int(members.sum()) and 0 < inst.score <= 1
        assert np.all(np.abs(points[members, :2] - inst.center[:2]) <= np.linalg.norm(inst.size[:2]) / 2 + 1e-4)


def test_predict_after_short_training_gives_a_valid_panoptic_result(class_emb):
    """Trained on the base classes only, predicting with the full vocabulary (base + novel)."""
    scene = _scene(2500)
    points, features = _inputs(scene, class_emb)
    in_range = _in_voxel_range(points).numpy()
    net = _build()
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    loss_fn = PanopticLoss(CFG.loss)
    train_emb = SPLIT.train_embeddings(class_emb)
    for _ in range(30):
        loss = loss_fn(net(points, features, train_emb, _intensity(scene)), _targets(scene))["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    timer = RecordingTimer()
    result = net.predict(points, features, class_emb, _intensity(scene), timer)
    assert timer.stages[:3] == ["voxelize", "backbone", "head"] and timer.stages[-1] == "merge"
    assert net.training  # predict runs in eval mode and restores the caller's mode
    assert_valid_result(result, class_emb, scene.frame.points)
    assert len(result.instances) >= 1  # it learned some things...
    # ...and the road, through its base-stuff query
    assert (result.labels == ROAD).mean() > 0.2
    # Points above the grid (building tops) cannot be labelled; the accuracy is over the points the net can see.
    assert 0.95 < in_range.mean() < 1 and (result.labels[~in_range] == UNLABELED).all()
    base = in_range & ~np.isin(scene.gt_labels, [CLASSES.index(n) for n in NOVEL])
    accuracy = (result.labels[base] == scene.gt_labels[base]).mean()
    assert accuracy > 0.5, accuracy


def test_points_outside_the_grid_are_unlabeled(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    net = _build()
    in_range = _in_voxel_range(points)
    assert 0 < int((~in_range).sum()) < 0.05 * NUM_POINTS  # the scene's building tops, above z = 3 m
    p2v = net(points, features, class_emb).point_to_voxel
    assert (p2v[in_range] >= 0).all() and (p2v[~in_range] == -1).all()
    moved = torch.nonzero(in_range).squeeze(1)[:100]
    rest = in_range.clone()
    rest[moved] = False
    points = points.clone()
    points[moved, 0] += 500.0  # far beyond the tiny preset's 51.2 m
    out = net(points, features, class_emb)
    assert (out.point_to_voxel[moved] == -1).all() and (out.point_to_voxel[rest] >= 0).all()
    assert (out.point_to_voxel[~in_range] == -1).all()
    result = net.predict(points, features, class_emb)
    assert (result.labels[moved] == UNLABELED).all() and (result.instance_ids[moved] == 0).all()
    assert (result.labels[~in_range] == UNLABELED).all() and (result.instance_ids[~in_range] == 0).all()


def test_frame_with_no_point_in_range_predicts_all_unlabeled(class_emb):
    points = torch.full((50, 3), 1000.0)
    features = compact(F.normalize(torch.ones(50, 64), dim=1), torch.ones(50, dtype=torch.bool))
    result = _build().predict(points, features, class_emb)
    assert (result.labels == UNLABELED).all() and result.instances == []
    assert_valid_result(result, class_emb, points.numpy())  # the same types and vocabulary as any result
    with pytest.raises(ValueError, match="none of the 50 points"):
        _build()(points, features, class_emb)


def test_bad_inputs_are_named(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    seen, index, rows = features.seen, features.index, features.features
    net = _build()
    with pytest.raises(ValueError, match=r"point_features.features must be \(S, 64\)"):
        net.predict(points, PointFeatures(seen, index, rows[:, :32]), class_emb)
    with pytest.raises(ValueError, match=r"point_features.features must be \(S, 64\)"):
        net.predict(points, PointFeatures(seen, index, rows[1:]), class_emb)
    with pytest.raises(ValueError, match="seen must be"):
        net.predict(points, PointFeatures(seen.float(), index, rows), class_emb)
    with pytest.raises(ValueError, match="seen marks"):
        net.predict(points, PointFeatures(torch.ones_like(seen), index, rows), class_emb)
    with pytest.raises(ValueError, match="must be PointFeatures"):
        net.predict(points, features.dense(), class_emb)
    with pytest.raises(ValueError, match="32-d"):
        net.predict(points, features, random_class_embeddings(scene_vocabulary(), 32))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        net.predict(points[:, :2], features, class_emb)
    with pytest.raises(ValueError, match=r"intensity must be \(N,\) = \(4000,\)"):
        net.predict(points, features, class_emb, torch.zeros(10))


def test_voxel_distillation_trains_the_mask_and_class_embedding_branches(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    net = _build()
    out = net(points, features, SPLIT.train_embeddings(class_emb))
    PanopticLoss(CFG.loss)(out, _targets(scene))["voxel_distill"].backward()
    for module in (net.head.mask_embed, net.head.mask_features, net.head.class_embed):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert net.head.queries.grad.abs().sum() > 0 and net.head.stuff_queries.grad.abs().sum() > 0
    assert net.head.logit_scale.grad is None  # L_V does not touch the classifier's temperature


def test_intensity_is_an_input(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    net = _build().eval()
    with torch.no_grad():
        dark = net(points, features, class_emb).mask_logits[-1]
        zeros = net(points, features, class_emb, torch.zeros(NUM_POINTS)).mask_logits[-1]
        lit = net(points, features, class_emb, _intensity(scene)).mask_logits[-1]
    torch.testing.assert_close(dark, zeros)  # no intensity field: zeros
    assert not torch.allclose(dark, lit)


def test_clip_features_are_fused_into_the_ov_network_only(scene, class_emb):
    """The paper's network sees CLIP; the PFC baseline is LiDAR-only (CLIP only classifies its masks)."""
    points, features = _inputs(scene, class_emb)
    other = PointFeatures(features.seen, features.index, torch.roll(features.features, 1, dims=0))
    pfc_cfg = load_config("tiny", overrides={"vocabulary": SCENE_VOCABULARY, "model": "pfc",
                                            "loss": {"object_distill_weight": 0, "voxel_distill_weight": 0}})
    for cfg, sees_clip in ((CFG, True), (pfc_cfg, False)):
        net = _build(cfg=cfg).eval()
        with torch.no_grad():
            a = net(points, features, class_emb).mask_logits[-1]
            b = net(points, other, class_emb).mask_logits[-1]
        assert torch.allclose(a, b) != sees_clip, cfg.model


# --- parts of the network on hand-made inputs (what the mutations found) ----------------------------

def test_attention_mask_blocks_below_one_half_and_frees_an_empty_query():
    logits = torch.tensor([[0.0, -1.0, 1.0], [-5.0, -5.0, -5.0], [3.0, -3.0, -3.0]])
    assert attention_block_mask(logits).tolist() == [[False, True, False], [False, False, False], [False, True, True]]


def _identity_decoder_layer(d=8, heads=2):
    """Attention projections and the FFN set to identities (FFN: ReLU), LayerNorms plain: outputs by hand."""
    layer = DecoderLayer(HeadConfig(hidden_dim=d, num_heads=heads, ffn_dim=d))
    eye = torch.eye(d)
    with torch.no_grad():
        for attn in (layer.cross_attn, layer.self_attn):
            attn.in_proj_weight.copy_(torch.cat([eye, eye, eye]))
            attn.in_proj_bias.zero_()
            attn.out_proj.weight.copy_(eye)
            attn.out_proj.bias.zero_()
        for linear in (layer.ffn[0], layer.ffn[2]):
            linear.weight.copy_(eye)
            linear.bias.zero_()
    return layer


def _attention(q, kv, blocked, heads):
    """Multi-head attention with identity projections, written out: per head, softmax(q.k / sqrt(dh)) v."""
    dh = q.shape[1] // heads
    out = torch.zeros_like(q)
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        scores = (q[:, cols] @ kv[:, cols].T) / math.sqrt(dh)
        out[:, cols] = scores.masked_fill(blocked, float("-inf")).softmax(dim=1) @ kv[:, cols]
    return out


def test_decoder_layer_is_masked_cross_attention_self_attention_ffn_with_post_norm_residuals():
    d, heads = 8, 2
    layer = _identity_decoder_layer(d, heads)
    gen = torch.Generator().manual_seed(0)
    q, kv = torch.randn(2, d, generator=gen), 2 * torch.randn(3, d, generator=gen)
    blocked = torch.tensor([[False, True, False], [True, True, False]])
    ln = lambda x: F.layer_norm(x, (d,))  # noqa: E731
    y = ln(q + _attention(q, kv, blocked, heads))  # masked cross-attention over the voxels
    x = ln(y + _attention(y, y, torch.zeros(2, 2, dtype=torch.bool), heads))  # self-attention among the queries
    expected = ln(x + torch.relu(x))  # FFN
    torch.testing.assert_close(layer(q, kv, blocked), expected, rtol=1e-4, atol=1e-5)
    unmasked = layer(q, kv, torch.zeros(2, 3, dtype=torch.bool))
    assert (unmasked - expected).abs().max() > 1e-2  # the mask is what kept the blocked voxels out


def test_head_mlps_are_linear_relu_linear_and_the_head_is_validated():
    from torch import nn

    from ov_panoptic_ros.core.model.head import NO_OBJECT_PRIOR, _mlp

    assert [type(m) for m in _mlp([4, 5, 6, 7])] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    torch.manual_seed(0)
    head = QueryHead(HeadConfig(num_queries=1, hidden_dim=32, num_layers=1, num_heads=4, ffn_dim=8), 64, 50)
    assert len(head.layers) == 1 and head.queries.shape == (1, 32)  # one query, one layer: allowed
    assert 0.015 < head.stuff_queries.std().item() < 0.025  # queries start small (std 0.02)
    big = QueryHead(HeadConfig(num_queries=50, hidden_dim=32, num_layers=1, num_heads=4, ffn_dim=8), 64, 1)
    assert 0.015 < big.queries.std().item() < 0.025
    # an unaligned query (cosine 0) starts at the focal-loss prior
    assert torch.sigmoid(-head.no_object_bias).item() == pytest.approx(NO_OBJECT_PRIOR)
    for bad, message in ((dict(num_queries=0), "head needs num_queries >= 1 and num_layers >= 1, got 0 and 1"),
                         (dict(num_layers=0), "head needs num_queries >= 1 and num_layers >= 1, got 1 and 0"),
                         (dict(hidden_dim=30), "head.hidden_dim 30 is not divisible by head.num_heads 4")):
        cfg = HeadConfig(**{**dict(num_queries=1, hidden_dim=32, num_layers=1, num_heads=4, ffn_dim=8), **bad})
        with pytest.raises(ValueError, match=f"^{message}$"):
            QueryHead(cfg, 64, 1)


def test_network_defaults_to_the_cpu_and_needs_a_clip_width():
    from ov_panoptic_ros.core.model.network import PanopticNetwork

    net = PanopticNetwork(CFG, 1, SPLIT.train_vocabulary)  # 1-d CLIP features are odd, but allowed
    assert net.device_type == "cpu" and net.clip_dim == 1
    with pytest.raises(ValueError, match="^clip_dim must be positive, got 0$"):
        PanopticNetwork(CFG, 0, SPLIT.train_vocabulary)


def test_class_logits_are_scaled_cosines_minus_the_no_object_bias():
    head = QueryHead(HeadConfig(num_queries=3, hidden_dim=8, num_layers=1, num_heads=2, ffn_dim=8), 64, 1)
    emb = random_class_embeddings(scene_vocabulary(), 64)
    with torch.no_grad():
        head.logit_scale.fill_(math.log(10.0))
        head.no_object_bias.fill_(2.0)
    queries, features = torch.randn(4, 8), torch.randn(5, 8)
    _, embedding, logits, position_logits = head.predict(queries, features, emb)
    assert position_logits is None  # no head.position_aware
    torch.testing.assert_close(logits, 10.0 * emb.cosine(embedding) - 2.0)
    with torch.no_grad():
        head.logit_scale.fill_(math.log(1000.0))  # clamped to CLIP's 100
    torch.testing.assert_close(head.predict(queries, features, emb)[2], 100.0 * emb.cosine(embedding) - 2.0)


def test_head_returns_every_layer_by_default_and_the_last_alone_for_inference():
    torch.manual_seed(0)
    head = QueryHead(HeadConfig(num_queries=3, hidden_dim=8, num_layers=3, num_heads=2, ffn_dim=8), 64, 1)
    emb = random_class_embeddings(scene_vocabulary(), 64)
    features = torch.randn(6, 8)
    every = head(features, emb)
    assert [len(every[k]) for k in ("mask_logits", "class_embed", "class_logits")] == [4, 4, 4]
    last = head(features, emb, all_layers=False)
    assert [len(last[k]) for k in ("mask_logits", "class_embed", "class_logits")] == [1, 1, 1]
    for key in last:
        torch.testing.assert_close(last[key][0], every[key][-1])


def test_each_decoder_layer_attends_through_the_mask_predicted_before_it():
    torch.manual_seed(0)
    head = QueryHead(HeadConfig(num_queries=3, hidden_dim=8, num_layers=3, num_heads=2, ffn_dim=8), 64, 1)
    seen_masks = []
    for layer in head.layers:
        layer.register_forward_pre_hook(lambda module, args: seen_masks.append(args[2].clone()))
    out = head(torch.randn(6, 8), random_class_embeddings(scene_vocabulary(), 64))
    assert len(seen_masks) == 3
    for blocked, mask_logits in zip(seen_masks, out["mask_logits"]):
        assert torch.equal(blocked, attention_block_mask(mask_logits))
    assert any(b.any() for b in seen_masks)  # something was blocked: the case is not trivial


def test_clip_features_are_pooled_per_voxel_over_seen_points_in_range():
    seen = torch.tensor([True, False, True, True, False])
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])  # rows of points 0, 2 and 3
    mean, count = pool_clip_features(PointFeatures(seen, torch.tensor([0, 2, 3]), features),
                                     torch.tensor([0, 0, 1, -1, 2]), 3)  # point 3 is outside the grid
    torch.testing.assert_close(mean, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    assert count.tolist() == [1, 1, 0]  # voxel 2's only point was never seen


def test_predict_times_its_stages_and_forward_returns_every_decoder_output(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    net = _build()
    timer = RecordingTimer()
    net.predict(points, features, class_emb, _intensity(scene), timer)
    assert timer.stages == ["voxelize", "backbone", "head", "head", "merge"]
    out = net(points, features, SPLIT.train_embeddings(class_emb), _intensity(scene))
    assert len(out.mask_logits) == len(out.class_logits) == CFG.head.num_layers + 1


def test_forward_checks_intensity_and_points_name_what_they_got(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    net = _build()
    train = SPLIT.train_embeddings(class_emb)
    with pytest.raises(ValueError, match=rf"^intensity must be \(N,\) = \({NUM_POINTS},\), got \(7,\)$"):
        net(points, features, train, torch.zeros(7))
    with pytest.raises(ValueError, match=rf"^points must be an \(N, 3\) tensor, got torch.Size\(\[{NUM_POINTS}, 4\]\)$"):
        net(torch.zeros(NUM_POINTS, 4), features, train)
    with pytest.raises(ValueError, match=r"^points must be an \(N, 3\) tensor, got \(4000, 3\)$"):
        net(points.numpy(), features, train)
    with pytest.raises(ValueError, match=r"^points must be an \(N, 3\) tensor, got <class 'list'>$"):
        net([[0.0, 0.0, 0.0]], features, train)


def test_class_probabilities_are_sigmoids_for_ov_and_the_clip_ensemble_for_pfc(scene, class_emb):
    """PFC: p_net^(1-e) x p_clip^e with e by whether the class is in the training vocabulary."""
    gen = torch.Generator().manual_seed(3)
    num_classes = class_emb.num_classes
    logits, masks = torch.randn(2, num_classes, generator=gen), torch.tensor([[5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    clip = F.normalize(torch.randn(3, 64, generator=gen), dim=1)
    enc = {"voxel_clip": clip, "voxel_seen": torch.tensor([True, True, False])}
    torch.testing.assert_close(_build().class_probabilities(logits, masks, enc, class_emb), logits.sigmoid())
    pfc_cfg = load_config("tiny", overrides={"vocabulary": SCENE_VOCABULARY, "model": "pfc",
                                             "loss": {"object_distill_weight": 0, "voxel_distill_weight": 0},
                                             "pfc": {"base_clip_exponent": 0.25, "novel_clip_exponent": 0.75}})
    pfc = _build(cfg=pfc_cfg)
    got = pfc.class_probabilities(logits, masks, enc, class_emb)
    novel = torch.tensor([c.split(",")[0] in NOVEL for c in class_emb.vocabulary.classes])
    assert novel.any() and not novel.all()
    exponent = torch.where(novel, 0.75, 0.25)
    p_clip = (class_emb.cosine(F.normalize(clip[0] + clip[1], dim=0).unsqueeze(0)) / pfc_cfg.pfc.clip_temperature)
    expected_0 = logits[0].sigmoid() ** (1 - exponent) * p_clip.softmax(dim=1)[0] ** exponent
    torch.testing.assert_close(got[0], expected_0)
    torch.testing.assert_close(got[1], logits[1].sigmoid())  # its only voxel is unseen: no CLIP


def test_fusion_widens_lidar_with_linear_batchnorm_relu_and_mixes_with_an_mlp():
    """The layout trained checkpoints hold (their state dicts name these layers)."""
    from torch import nn

    from ov_panoptic_ros.core.config import FusionConfig
    from ov_panoptic_ros.core.model.fusion import Fusion

    fusion = Fusion(16, FusionConfig(lidar_channels=1), hidden_dim=8, clip_dim=4, with_clip=True)  # 1 is allowed
    assert [type(m) for m in fusion.lidar] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] and fusion.lidar[0].bias is None
    assert [type(m) for m in fusion.mlp] == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear]
    assert fusion.mlp[0].in_features == 1 + 4 + 1 and fusion.mlp[3].out_features == 8
    with pytest.raises(ValueError, match="^fusion.lidar_channels must be positive, got 0$"):
        Fusion(16, FusionConfig(lidar_channels=0), hidden_dim=8, clip_dim=4, with_clip=True)


def test_merge_clip_ensemble_switches_the_ov_network_to_the_pfc_ensemble(scene, class_emb):
    """merge.clip_ensemble (off by default: the paper's network scores with its own head) gives the 'ov' network
    FC-CLIP's ensemble, computed exactly as for the PFC baseline."""
    from ov_panoptic_ros.core.model.pfc import ensemble_probabilities, in_training_vocabulary

    points, features = _inputs(scene, class_emb)
    plain = _build().eval()
    on = _build(cfg=load_config("tiny", overrides={"vocabulary": SCENE_VOCABULARY,
                                                   "merge": {"clip_ensemble": True}})).eval()
    on.load_state_dict(plain.state_dict())
    with torch.no_grad():
        enc = plain.encode(points, features, None, _NoTimer())
        out = plain.head(enc["fused"], class_emb, all_layers=False)
        logits, masks = out["class_logits"][-1], out["mask_logits"][-1]
        expected = ensemble_probabilities(logits, masks, enc["voxel_clip"], enc["voxel_seen"], class_emb,
                                          in_training_vocabulary(class_emb.vocabulary, plain.train_vocabulary),
                                          plain.pfc_cfg)
        torch.testing.assert_close(on.class_probabilities(logits, masks, enc, class_emb), expected)
        torch.testing.assert_close(plain.class_probabilities(logits, masks, enc, class_emb), logits.float().sigmoid())
    assert not torch.allclose(expected, logits.float().sigmoid())


PA_CFG = load_config("tiny", overrides={"vocabulary": SCENE_VOCABULARY, "head": {"position_aware": True}})


def test_position_aware_masks_add_a_position_term_that_its_own_dice_trains(scene, class_emb):
    points, features = _inputs(scene, class_emb)
    net = _build(cfg=PA_CFG)
    out = net(points, features, SPLIT.train_embeddings(class_emb))
    assert len(out.position_mask_logits) == len(out.mask_logits) == PA_CFG.head.num_layers + 1
    assert all(p.shape == m.shape for p, m in zip(out.position_mask_logits, out.mask_logits))
    PanopticLoss(PA_CFG.loss)(out, _targets(scene))["position_dice"].backward()
    for module in (net.head.position, net.head.position_mask_embed):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    content = net.head.mask_embed[0].weight.grad
    assert content is None or not content.any()  # the position term alone: nothing reaches the content branch
    plain = _build()
    assert plain.head.position is None
    assert plain(points, features, SPLIT.train_embeddings(class_emb)).position_mask_logits is None


def test_position_aware_head_moves_masks_with_positions_and_needs_them():
    torch.manual_seed(0)
    cfg = HeadConfig(num_queries=3, hidden_dim=8, num_layers=2, num_heads=2, ffn_dim=8)
    emb = random_class_embeddings(scene_vocabulary(), 64)
    features, here, there = torch.randn(6, 8), torch.rand(6, 3) - 0.5, torch.rand(6, 3) - 0.5
    plain = QueryHead(cfg, 64, 1)
    torch.testing.assert_close(plain(features, emb, here)["mask_logits"][-1],
                               plain(features, emb, there)["mask_logits"][-1])
    aware = QueryHead(dataclasses.replace(cfg, position_aware=True), 64, 1)
    a, b = aware(features, emb, here), aware(features, emb, there)
    assert not torch.allclose(a["mask_logits"][-1], b["mask_logits"][-1])
    # P3Former adds the embedding to the voxel features too: the initial queries' content term (mask minus its
    # position term) already depends on where the voxels are
    content = [out["mask_logits"][0] - out["position_mask_logits"][0] for out in (a, b)]
    assert not torch.allclose(*content)
    assert len(a["position_mask_logits"]) == 3
    with pytest.raises(ValueError, match="head.position_aware needs the voxel positions"):
        aware(features, emb)


def test_position_features_are_continuous_across_the_azimuth_seam_and_resolve_under_a_metre():
    """phi jumps from pi to -pi behind the car; only its sines and cosines are features, so the embedding does
    not. The finest period is 2 / 2**7 of the range: 0.8 m on the synthetic preset's 51.2 m."""
    eps = 1e-6
    feats = fourier_coordinates(torch.tensor([[-0.5, eps, 0.0], [-0.5, -eps, 0.0]]))
    assert feats.shape == (2, 4 + 5 * 2 * 8)
    assert (feats[0] - feats[1]).abs().max() < 0.01
    metre = 1.0 / 51.2
    apart = fourier_coordinates(torch.tensor([[0.2, 0.1, 0.0], [0.2 + 0.4 * metre, 0.1, 0.0]]))
    assert (apart[0] - apart[1]).abs().max() > 0.5  # 40 cm apart: the finest frequency sees it
