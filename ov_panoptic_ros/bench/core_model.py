"""Cost of the trainable 3D network: measured per-stage times on the tiny preset (CPU), and parameter counts
plus analytic FLOP estimates for the full presets (nuscenes, semantickitti).

Times are medians over repeated `predict` calls after a warm-up, in milliseconds, on the synthetic street
(data.synthetic) with class-aligned random CLIP features for the points its cameras see (the network's cost
does not depend on what the features say).
FLOPs count a multiply-add as 2 and are estimates under the assumptions stated in the output.
"""
from __future__ import annotations

import os
import time

import numpy as np
import spconv.pytorch as spconv
import torch

from ov_panoptic_ros.core.config import PipelineConfig, load_config
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.core.model.losses import PanopticLoss
from ov_panoptic_ros.core.model.network import PanopticNetwork, build_network
from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.core.model.voxelize import voxelize
from ov_panoptic_ros.core.pipeline import StageTimer
from ov_panoptic_ros.data.synthetic import (NOVEL, STUFF, make_scene, network_inputs, random_class_embeddings,
                                            scene_vocabulary)

STAGES = ("voxelize", "backbone", "head", "merge")
# Active voxels at the finest level per full preset: a nuScenes 32-beam sweep has ~34k points, a SemanticKITTI
# 64-beam scan ~120k; cylindrical cells of 0.1 m x 1 deg x 0.14-0.25 m merge roughly a quarter of them.
ASSUMED_LEVEL0_VOXELS = {"nuscenes": 30_000, "semantickitti": 90_000}
ASSUMED_LEVEL_SHRINK = 4.0  # LiDAR returns lie on surfaces: halving each axis leaves ~1/4 of the cells


def clip_embed_dim(model_name: str) -> int:
    """CLIP feature width from open_clip's model config (no weights needed)."""
    import open_clip

    from ov_panoptic_ros.core.vision.open_clip_dense import register_model_configs

    register_model_configs()
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ValueError(f"open_clip has no model config {model_name!r}")
    return int(config["embed_dim"])


def parameter_counts(net: PanopticNetwork) -> dict:
    def count(module):
        return int(sum(p.numel() for p in module.parameters()))

    return {"total": count(net), "backbone": count(net.backbone), "fusion": count(net.fusion), "head": count(net.head)}


def backbone_flops(net: PanopticNetwork, level_voxels: list[float]) -> float:
    """Conv FLOPs from each conv's kernel, channels and the active voxels of the level it reads/writes.

    Submanifold 3x3x3: 2 x 27 x Cin x Cout x V (upper bound: every neighbour counted as active).
    Strided 2x2x2 down / inverse up: each fine voxel meets exactly one kernel tap, 2 x Cin x Cout x V_fine.
    """
    total = 0.0
    for conv in net.backbone.modules():
        if isinstance(conv, spconv.SubMConv3d):
            taps = int(np.prod(conv.kernel_size))
            total += 2 * taps * conv.in_channels * conv.out_channels * level_voxels[conv.output_level]
        elif isinstance(conv, spconv.SparseInverseConv3d):
            total += 2 * conv.in_channels * conv.out_channels * level_voxels[conv.output_level]
        elif isinstance(conv, spconv.SparseConv3d):
            total += 2 * conv.in_channels * conv.out_channels * level_voxels[conv.output_level - 1]
    return total


def head_flops(cfg: PipelineConfig, clip_dim: int, voxels: float) -> dict:
    """Fusion and decoder FLOPs from their matmul sizes (LayerNorm, softmax and activations ignored)."""
    h, L, F = cfg.head.hidden_dim, cfg.head.num_layers, cfg.head.ffn_dim
    num_classes = len(cfg.vocabulary.classes)
    synonyms = sum(len(c.split(",")) for c in cfg.vocabulary.classes)
    Q = cfg.head.num_queries + len(ClassSplit.from_config(cfg.vocabulary).train_vocabulary.stuff)
    c0, c1, D, V = cfg.backbone.channels[0], cfg.fusion.lidar_channels, clip_dim, voxels
    fusion = 2 * V * (c0 * c1 + (c1 + D + 1) * h + h * h)
    mask_features = 2 * V * h * h
    cross = 2 * (2 * Q * h * h + 2 * V * h * h + 2 * Q * V * h)  # q/out proj, k/v proj, scores + weighted sum
    self_attn = 2 * (4 * Q * h * h + 2 * Q * Q * h)
    ffn = 2 * 2 * Q * h * F
    prediction = 2 * (2 * Q * h * h + Q * V * h + Q * h * h + Q * h * D + Q * D * synonyms)
    decoder = L * (cross + self_attn + ffn) + (L + 1) * prediction
    return {"fusion": fusion, "decoder": mask_features + decoder, "classes": num_classes, "queries": Q}


def full_preset_cost(name: str) -> dict:
    cfg = load_config(name)
    clip_dim = clip_embed_dim(cfg.clip.model_name)
    net = build_network(cfg, clip_dim, device="cpu")
    levels = len(cfg.backbone.channels)
    level_voxels = [ASSUMED_LEVEL0_VOXELS[name] / ASSUMED_LEVEL_SHRINK ** lv for lv in range(levels)]
    conv = backbone_flops(net, level_voxels)
    head = head_flops(cfg, clip_dim, level_voxels[0])
    return {
        "clip_model": cfg.clip.model_name,
        "clip_dim": clip_dim,
        "parameters": parameter_counts(net),
        "assumed_active_voxels_per_level": [round(v) for v in level_voxels],
        "gflops": {
            "backbone_conv_upper_bound": round(conv / 1e9, 2),
            "fusion": round(head["fusion"] / 1e9, 2),
            "decoder": round(head["decoder"] / 1e9, 2),
            "total": round((conv + head["fusion"] + head["decoder"]) / 1e9, 2),
        },
        "queries": head["queries"],
        "classes": head["classes"],
    }


def measured_level_voxels(net: PanopticNetwork, points: torch.Tensor, features, class_emb) -> list[int]:
    """Active voxels per UNet level on a real input, to check the shrink assumption."""
    counts: dict[int, int] = {}

    def record(module, _inputs, output):
        counts[module.output_level] = int(output.features.shape[0])

    hooks = [m.register_forward_hook(record) for m in net.backbone.modules() if isinstance(m, spconv.SparseConv3d)]
    try:
        net.predict(points, features, class_emb)
    finally:
        for hook in hooks:
            hook.remove()
    counts[0] = voxelize(points, net.voxel_cfg).num_voxels
    return [counts[lv] for lv in sorted(counts)]


def tiny_timings(num_points: int, repeats: int, train_steps: int) -> dict:
    """Train briefly on the frame (so queries clear the score threshold and merge does real work), then time."""
    vocabulary = {"classes": list(scene_vocabulary().classes), "stuff": STUFF, "novel": NOVEL}
    cfg = load_config("tiny", overrides={"vocabulary": vocabulary})
    clip_dim = clip_embed_dim(cfg.clip.model_name)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, clip_dim, device="cpu")
    scene = make_scene(seed=0, num_points=num_points, image_size=(64, 48))
    class_emb = random_class_embeddings(scene_vocabulary(), clip_dim)
    points, features, labels, instance_ids = network_inputs(scene, class_emb)
    intensity = torch.from_numpy(scene.frame.intensity)
    split = ClassSplit.from_config(cfg.vocabulary)
    step_ms = train(net, cfg, split.targets(labels, instance_ids), points, features, intensity,
                    split.train_embeddings(class_emb), train_steps)
    result = net.predict(points, features, class_emb, intensity)  # warm-up
    runs = []
    for _ in range(repeats):
        timer = StageTimer(torch.device("cpu"))
        net.predict(points, features, class_emb, intensity, timer)
        runs.append(timer.ms)
    stages = {s: round(float(np.median([r.get(s, 0.0) for r in runs])), 2) for s in STAGES}
    voxels = voxelize(points, cfg.voxel)
    in_range = voxels.in_range.numpy()  # the scene's building tops rise above the tiny grid's z range
    return {
        "num_points": num_points,
        "in_range_fraction": round(float(in_range.mean()), 3),
        "seen_fraction": round(float(features.seen.float().mean()), 3),
        "num_voxels": voxels.num_voxels,
        "measured_active_voxels_per_level": measured_level_voxels(net, points, features, class_emb),
        "stage_ms": stages,
        "total_ms": round(sum(stages.values()), 2),
        "segments_after_training": {
            "train_steps": train_steps,
            "instances": len(result.instances),
            "labelled_fraction": round(float((result.labels != UNLABELED).mean()), 3),
            "point_accuracy_in_range": round(float((result.labels == scene.gt_labels)[in_range].mean()), 3),
            "trained_on": "base classes; novel: " + ", ".join(NOVEL),
        },
        "train_step_ms": round(step_ms, 2),
        "parameters": parameter_counts(net),
    }


def train(net, cfg: PipelineConfig, targets, points, features, intensity, train_emb, steps: int) -> float:
    """AdamW steps on the one frame (base classes only); returns the median step time (forward + loss +
    backward + update)."""
    loss_fn = PanopticLoss(cfg.loss)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    net.train()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = loss_fn(net(points, features, train_emb, intensity), targets)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append((time.perf_counter() - start) * 1e3)
    net.eval()
    return float(np.median(times[1:] or times))


def bench_core_model(quick: bool = False, threads: int = 1) -> dict:
    """`threads`: torch CPU threads for the timings. One by default: on 2 shared cores, two spinning OpenMP
    workers made every stage several times slower and its time erratic (voxelize 5 ms vs 15-290 ms)."""
    load_before = os.getloadavg()[0]
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tiny = tiny_timings(num_points=5_000 if quick else 30_000, repeats=2 if quick else 5,
                            train_steps=4 if quick else 25)
    finally:
        torch.set_num_threads(threads_before)
    report = {
        "device": "cpu",
        "torch_threads": threads,
        "tiny": tiny,
        "full_presets": {name: full_preset_cost(name) for name in ("nuscenes", "semantickitti")},
        "assumptions": {
            "flops": "multiply-add = 2 FLOPs; BatchNorm, ReLU, LayerNorm, softmax and merge not counted",
            "backbone": "submanifold 3x3x3 convs counted with all 27 neighbours active (upper bound); strided "
                        "2x2x2 down/inverse convs exactly (one kernel tap per fine voxel)",
            "active_voxels": f"level 0: {ASSUMED_LEVEL0_VOXELS} per preset; each coarser level has "
                             f"1/{ASSUMED_LEVEL_SHRINK:g} of the voxels of the finer one (compare "
                             "tiny.measured_active_voxels_per_level)",
            "head": "queries = num_queries + base stuff classes of the preset vocabulary; masked cross-attention "
                    "counted as dense over all voxels; predictions from the initial queries and every layer",
            "inputs": "synthetic street scene (ov_panoptic_ros.data.synthetic, 2 cameras), CLIP features = class "
                      "text direction + noise for the points the cameras see, zero for the others; the tiny "
                      "network is first trained on that frame for a few steps so that merge sees real segments; "
                      "timings are medians after a warm-up; point accuracy counts the points inside the voxel "
                      "range only",
        },
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return report


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(bench_core_model(quick="--quick" in sys.argv), indent=2))
