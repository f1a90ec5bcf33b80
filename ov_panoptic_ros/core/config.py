"""Typed pipeline configuration, loaded from YAML, with named presets.

`load_config("tiny")` gives a preset; `load_config("my.yaml")` reads a file whose optional
`preset:` key names the preset it overrides. Unknown keys are errors, so typos never pass silently.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PRESET_DIR = Path(__file__).parent / "presets"

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
    "a blurry photo of a {}.",
    "a cropped photo of a {}.",
    "a photo of a {} in the scene.",
    "a photo of many {}.",
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "a dark photo of a {}.",
    "a bright photo of a {}.",
    "a good photo of a {}.",
)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key or file."""


@dataclass
class ClipConfig:
    """The frozen vision-language model: an open_clip model, or the teacher trained here (core/vision/backend.py)."""

    # an open_clip model name (built-in or registered from model_configs/), or "teacher" (checkpoint required)
    model_name: str = "ov-tiny-vit"
    # local weights file; None = random init (open_clip only, and only sensible for tiny models)
    checkpoint: str | None = None
    # an open_clip pretrained tag (e.g. laion2b_s34b_b88k for ViT-B-32), downloaded and cached by open_clip where
    # the machine has internet; instead of `checkpoint`, never with it. Every preset uses a local file.
    pretrained: str | None = None
    # short side the images are resized to; None = the model's own size (the teacher: the size it was trained at)
    image_size: int | None = None
    precision: str = "fp32"  # fp32 | fp16 | bf16 (half precisions apply on CUDA only)


@dataclass
class ProjectionConfig:
    """Which camera pixels a LiDAR point takes its CLIP feature from."""

    image_margin_px: float = 0.0  # points projecting closer than this to the border are not seen
    min_depth_m: float = 0.5  # z > min_depth in the camera frame
    occlusion: bool = True  # depth-buffer test: nearest point per pixel block wins
    occlusion_block_px: int = 8
    occlusion_tolerance_m: float = 0.5  # points this far behind the nearest in their block still count


@dataclass
class VoxelConfig:
    grid: str = "cartesian"  # cartesian | cylindrical
    size: tuple[float, float, float] = (0.2, 0.2, 0.2)  # metres (cylindrical: radius m, angle rad, z m)
    range_min: tuple[float, float, float] = (-51.2, -51.2, -5.0)  # cylindrical: (r, theta, z)
    range_max: tuple[float, float, float] = (51.2, 51.2, 3.0)
    intensity_scale: float = 1.0  # LiDAR intensity x this is an input channel (drivers differ: 0-1, 0-255, ...)


@dataclass
class BackboneConfig:
    """spconv sparse UNet."""

    channels: tuple[int, ...] = (16, 32, 64, 128)  # one entry per level; len-1 strided downsamplings
    blocks_per_level: int = 1


@dataclass
class FusionConfig:
    """How the learned LiDAR features meet the frozen CLIP voxel features before the decoder."""

    lidar_channels: int = 64  # the LiDAR branch is widened to this (linear + BatchNorm + ReLU) before fusion


@dataclass
class HeadConfig:
    """P3Former-style query decoder: learnable queries (any class) plus one learned query per base stuff class."""

    num_queries: int = 32
    hidden_dim: int = 64
    num_layers: int = 3
    num_heads: int = 4
    ffn_dim: int = 128
    # P3Former's position-aware segmentation (PA-Seg): a voxel position embedding is added to the voxel features
    # and each mask gets a second, position-only term from its query (docs/method.md). Off in checkpoints made
    # before the key existed.
    position_aware: bool = False


@dataclass
class MergeConfig:
    score_threshold: float = 0.4  # a query is kept when its (thing-scaled) score is strictly above this
    overlap_threshold: float = 0.8  # kept only if it wins at least this share of its own mask
    thing_score_scale: float = 2.0  # P3Former doubles thing scores for the threshold and the voxel competition
    # 'ov' only, not the paper's method: also ensemble the class scores with CLIP pooled in each mask, as the PFC
    # baseline does (its pfc.* exponents). An inference-time switch, to tell naming errors from mask errors.
    clip_ensemble: bool = False
    # Not the paper's (0 = off): split each predicted thing instance into its connected components (points linked
    # within this many metres); components under zeroshot.min_cluster_points points lose their label. An
    # inference-time diagnostic for masks that spread over several objects (docs/results.md).
    split_radius_m: float = 0.0


MODELS = ("ov", "pfc")
VOXEL_DISTILL_DISTANCES = ("cosine", "l1")
OBJECT_DISTILL_POOLINGS = ("soft", "binary")


@dataclass
class LossConfig:
    """Training loss weights, focal parameters and matching costs (P3Former's values; distillation: the paper's)."""

    class_weight: float = 1.0
    mask_weight: float = 1.0
    dice_weight: float = 2.0
    object_distill_weight: float = 0.1  # small: the paper warns that a large L_O weight disrupts training
    voxel_distill_weight: float = 1.0
    voxel_distill_distance: str = "cosine"  # cosine | l1 (the reimplementation's), reconstructed vs CLIP voxel feature
    object_distill_pooling: str = "soft"  # soft | binary: the query's own mask probabilities, or mask > 0.5
    class_focal_alpha: float = 0.25
    class_focal_gamma: float = 4.0
    mask_focal_alpha: float = 0.25
    mask_focal_gamma: float = 2.0
    match_class_weight: float = 1.0  # not used for the first decoder output (initial queries): masks only
    match_mask_weight: float = 1.0
    match_dice_weight: float = 2.0
    deep_supervision: bool = True  # supervise every decoder output, not only the last
    position_dice_weight: float = 0.2  # head.position_aware: dice on the position-only mask term (P3Former's 0.2)
    # Not the paper's (default off): the base-stuff queries' masks also learn "not mine" on voxels without a base
    # label (novel or void), so a base-stuff query cannot spread over novel stuff. No novel label is used: those
    # voxels are only negatives, for the base-stuff queries only (docs/results.md: why).
    stuff_masks_exclusive: bool = False

    def __post_init__(self) -> None:
        if self.voxel_distill_distance not in VOXEL_DISTILL_DISTANCES:
            raise ConfigError(f"loss.voxel_distill_distance {self.voxel_distill_distance!r} is not one of"
                              f" {VOXEL_DISTILL_DISTANCES}")
        if self.object_distill_pooling not in OBJECT_DISTILL_POOLINGS:
            raise ConfigError(f"loss.object_distill_pooling {self.object_distill_pooling!r} is not one of"
                              f" {OBJECT_DISTILL_POOLINGS}")


@dataclass
class PfcConfig:
    """The PFC baseline's FC-CLIP geometric ensemble: p = p_net^(1 - e) * p_clip^e per class."""

    base_clip_exponent: float = 0.4  # e for classes of the network's training vocabulary (FC-CLIP's alpha)
    novel_clip_exponent: float = 0.8  # e for every other class (FC-CLIP's beta)
    clip_temperature: float = 0.01  # softmax temperature of the mask-pooled CLIP cosines (CLIP's logit scale 100)


@dataclass
class ZeroShotConfig:
    """The CLIP-only baseline: per-point classification plus Euclidean clustering for things."""

    cluster_radius_m: float = 0.6
    min_cluster_points: int = 5
    temperature: float = 0.01  # softmax temperature over cosine similarities
    propagate_radius_m: float = 1.0  # points no camera sees take the nearest seen point's label within this; 0: off


@dataclass
class VocabularyConfig:
    classes: tuple[str, ...] = ("car", "truck", "bus", "pedestrian,person", "road,driveable surface", "sidewalk",
                                "building,manmade structure", "vegetation,tree")
    stuff: tuple[str, ...] = ("road", "sidewalk", "building", "vegetation")
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    novel: tuple[str, ...] = ()  # classes held out of training (names of `classes` entries); the rest are base


@dataclass
class PipelineConfig:
    name: str = "custom"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    checkpoint: str | None = None  # trained 3D network; None = the zero-shot baseline
    model: str = "ov"  # ov: the paper's network (CLIP fusion + distillation) | pfc: the P3Former + FC-CLIP baseline
    clip: ClipConfig = field(default_factory=ClipConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    voxel: VoxelConfig = field(default_factory=VoxelConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    pfc: PfcConfig = field(default_factory=PfcConfig)
    zeroshot: ZeroShotConfig = field(default_factory=ZeroShotConfig)
    vocabulary: VocabularyConfig = field(default_factory=VocabularyConfig)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"model {self.model!r} is not one of {MODELS}")
        distill = {"loss.object_distill_weight": self.loss.object_distill_weight,
                   "loss.voxel_distill_weight": self.loss.voxel_distill_weight}
        if self.model == "pfc" and any(distill.values()):
            raise ConfigError(f"model 'pfc' is the baseline without distillation, but {distill}: set both to 0")

    def to_dict(self) -> dict:
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value):
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass `cls` from a plain dict, recursing into nested dataclasses; unknown keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, f"{where}.{key}")
        elif typing.get_origin(hint) is tuple:
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}.{key}: expected a list, got {value!r}")
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: top level must be a mapping")
    return data


def _read_preset(name: str) -> dict:
    """A preset's YAML, its relative weight paths (`models/...`) resolved to the package's shipped files."""
    from ov_panoptic_ros.core.assets import package_file

    data = {"name": name, **_read_yaml(PRESET_DIR / f"{name}.yaml")}
    if isinstance(data.get("checkpoint"), str) and not Path(data["checkpoint"]).is_absolute():
        data["checkpoint"] = str(package_file(data["checkpoint"]))
    clip = data.get("clip")
    if isinstance(clip, dict) and isinstance(clip.get("checkpoint"), str) and not Path(clip["checkpoint"]).is_absolute():
        clip["checkpoint"] = str(package_file(clip["checkpoint"]))
    return data


def load_config(name_or_path: str | Path, overrides: dict | None = None) -> PipelineConfig:
    """A preset name or a YAML file (which may say `preset: NAME` to start from one), plus overrides.

    Relative weight paths in a preset are the package's shipped models; in your own YAML file they are relative
    to the working directory."""
    text = str(name_or_path)
    if text in preset_names():
        data = _read_preset(text)
    else:
        path = Path(text)
        if not path.exists():
            raise ConfigError(f"config {text!r} is neither a preset ({', '.join(preset_names())}) nor a file")
        data = _read_yaml(path)
        preset = data.pop("preset", None)
        if preset is not None:
            if preset not in preset_names():
                raise ConfigError(f"config {path}: unknown preset {preset!r}")
            data = _merge(_read_preset(preset), data)
    if overrides:
        data = _merge(data, overrides)
    return from_dict(PipelineConfig, data)
