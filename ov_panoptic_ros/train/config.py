"""The training config: a pipeline config (a preset or a file under `preset:`, as in core/config.py) plus a
typed `train:` section. Unknown keys are errors naming them, in both parts.

    preset: tiny                      # or a pipeline YAML, relative to this file
    device: cpu
    train:
      data: {spec: "synthetic:0", options: {frames: 16, num_points: 8000}}
      val: {spec: "synthetic:1000", options: {frames: 4}}
      steps: 2000
      optimizer: {lr: 0.003}

`load_train_config(NAME_OR_PATH)` resolves NAME against the configs shipped in train/configs/.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ov_panoptic_ros.core.config import ConfigError, PipelineConfig, from_dict, load_config

CONFIG_DIR = Path(__file__).parent / "configs"
SCHEDULES = ("multistep", "cosine")
AMP_MODES = ("off", "bf16", "fp16")
# Keys that do not change the weights a run produces: a run may be resumed with other values.
UNHASHED_TRAIN_KEYS = ("val", "val_every", "val_figures", "log_every", "checkpoint_every", "prefetch", "cache_frames",
                       "out")
UNHASHED_PIPELINE_KEYS = ("name", "checkpoint")  # training always starts from a fresh network


@dataclass
class SourceConfig:
    """A FrameSource for data.factory.open_source ('world[:SEED]', 'synthetic[:SEED]', a bag path) and its options."""

    spec: str | None = None  # None: no source (validation off)
    options: dict = field(default_factory=dict)  # e.g. frames, num_points, image_size (synthetic); every (bag)
    # train.data only: a directory written by `ov-panoptic extract-features` for this source and CLIP; training
    # reads each frame's CLIP point features from it instead of running the encoder (train/feature_cache.py)
    feature_cache: str | None = None

    def __post_init__(self) -> None:
        if self.spec is not None and not isinstance(self.spec, str):
            raise ConfigError(f"source spec must be a string, got {self.spec!r}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"source options must be a mapping, got {self.options!r}")
        if self.feature_cache is not None and not isinstance(self.feature_cache, str):
            raise ConfigError(f"source feature_cache must be a directory path, got {self.feature_cache!r}")


@dataclass
class OptimizerConfig:
    """AdamW (P3Former's optimizer)."""

    lr: float = 8e-4  # the paper's
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class ScheduleConfig:
    kind: str = "multistep"  # multistep | cosine
    milestones: tuple[int, ...] = ()  # multistep: lr x gamma at each of these steps
    gamma: float = 0.1
    final_lr_ratio: float = 0.0  # cosine: lr at the last step, as a fraction of optimizer.lr
    warmup_steps: int = 0  # linear warm-up: step s < warmup_steps runs at lr x (s + 1) / warmup_steps


@dataclass
class TrainConfig:
    data: SourceConfig = field(default_factory=lambda: SourceConfig("synthetic:0"))
    val: SourceConfig = field(default_factory=SourceConfig)  # held out: never the training source (or seed)
    steps: int = 1000  # optimizer steps
    batch_frames: int = 1  # frames per step and process, gradients accumulated (DDP: x world size)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    grad_clip_norm: float = 0.0  # clip the global gradient norm to this; 0: off
    amp: str = "bf16"  # off | bf16 | fp16: mixed precision on CUDA (fp16 with a gradient scaler); CPU runs fp32
    seed: int = 0
    checkpoint_every: int = 500  # steps; also on Ctrl-C and at the end
    val_every: int = 0  # steps; 0: at the end only (when val.spec is set)
    val_figures: bool = False  # draw the report's figures at each validation (slow on a CPU)
    log_every: int = 10  # steps between logged scalars
    prefetch: int = 4  # prepared frames the background worker may hold ahead of training
    cache_frames: int = 0  # frames read from the source kept in memory for later epochs (0: none)
    out: str = "runs/train"

    def __post_init__(self) -> None:
        for key in ("steps", "batch_frames", "checkpoint_every", "log_every", "prefetch"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.val_every < 0 or self.cache_frames < 0:
            raise ConfigError(f"train.val_every and train.cache_frames must be >= 0, got {self.val_every} and"
                              f" {self.cache_frames}")
        if self.schedule.kind not in SCHEDULES:
            raise ConfigError(f"train.schedule.kind {self.schedule.kind!r} is not one of {SCHEDULES}")
        if list(self.schedule.milestones) != sorted(self.schedule.milestones):
            raise ConfigError(f"train.schedule.milestones must ascend, got {list(self.schedule.milestones)}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp {self.amp!r} is not one of {AMP_MODES}")
        if self.data.spec is None:
            raise ConfigError("train.data.spec: a training source is required")
        if self.val.feature_cache is not None:
            raise ConfigError("train.val.feature_cache: validation runs the pipeline's own CLIP; a feature cache "
                              "is read for train.data only")
        if self.val.spec is not None and _shared_data(self.val, self.data):
            raise ConfigError(f"train.val.spec {self.val.spec!r} shares data with the training source "
                              f"{self.data.spec!r}: validate on held-out data (other seeds or recordings)")


def _source_key(spec: str) -> tuple:
    """What data a spec names: (generator, seeds) for 'NAME[:SEED]' or 'NAME:FIRST:STOP' (no seed = 0, as
    open_source reads it), the resolved path for a recording."""
    match = re.fullmatch(r"([A-Za-z_][\w-]*)(?::(\d+))?(?::(\d+))?", spec)
    if match and not Path(spec).exists():
        first = int(match.group(2) or 0)
        stop = int(match.group(3)) if match.group(3) else first + 1
        return ("generator", match.group(1), frozenset(range(first, stop)))
    return ("path", str(Path(spec).resolve()), frozenset())


DATASETS = ("nuscenes", "semantickitti")  # one root holds train and val: the options select the part
DISJOINT_SPLITS = ({"train", "val"}, {"mini_train", "mini_val"})


def _dataset_parts_disjoint(a: SourceConfig, b: SourceConfig) -> bool:
    """Whether two selections of one dataset root are known not to overlap: the same nuScenes version with
    the official train/val (or mini) splits or disjoint scene lists, or disjoint SemanticKITTI sequences."""
    oa, ob = a.options, b.options
    if a.spec.startswith("semantickitti:"):
        seqs = [{int(x) if x.isdigit() else x for x in _names(o.get("sequences"))} for o in (oa, ob)]
        return all(seqs) and not (seqs[0] & seqs[1])
    if oa.get("version", "v1.0-mini") != ob.get("version", "v1.0-mini"):
        return False  # v1.0-mini's scenes are trainval scenes: never assume apart
    if {oa.get("split"), ob.get("split")} in DISJOINT_SPLITS:
        return True
    scenes = [_names(o.get("scenes")) for o in (oa, ob)]
    return all(scenes) and not (scenes[0] & scenes[1])


def _names(value) -> set[str]:
    """An option given as a list or as 'a,b' text -> its names (empty: the whole dataset)."""
    items = value if isinstance(value, (list, tuple)) else str(value or "").replace(",", " ").split()
    return {str(x).strip("[]'\" ") for x in items} - {""}


def _shared_data(a: SourceConfig, b: SourceConfig) -> bool:
    if a.spec.partition(":")[0] in DATASETS and a.spec == b.spec:
        return not _dataset_parts_disjoint(a, b)
    ka, kb = _source_key(a.spec), _source_key(b.spec)
    return ka[:2] == kb[:2] and (ka[0] == "path" or bool(ka[2] & kb[2]))


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_train_config(name_or_path: str | Path, train_overrides: dict | None = None
                      ) -> tuple[PipelineConfig, TrainConfig]:
    """A shipped config name or a YAML file -> (pipeline config, training config); `train_overrides` replace
    keys of the `train:` section (the CLI's --steps, --out, ...)."""
    text = str(name_or_path)
    path = CONFIG_DIR / f"{text}.yaml" if text in config_names() else Path(text)
    if not path.is_file():
        raise ConfigError(f"training config {text!r} is neither a shipped one ({', '.join(config_names())}) nor a file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"training config {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("train"), dict):
        raise ConfigError(f"training config {path}: needs a `train:` mapping beside the pipeline keys")
    train = {**data.pop("train"), **(train_overrides or {})}
    preset = data.pop("preset", None)
    try:
        if preset is None:
            pipeline = from_dict(PipelineConfig, data)
        else:
            base = str(preset) if Path(str(preset)).suffix == "" else str(path.parent / str(preset))
            pipeline = load_config(base, overrides=data)
        return pipeline, from_dict(TrainConfig, train, "train")
    except ConfigError as e:
        raise ConfigError(f"training config {path}: {e}") from e


def plain(cfg) -> dict:
    """A config dataclass as JSON values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def run_identity(pipeline: PipelineConfig, train: TrainConfig) -> dict:
    """The settings that shape the weights: equal for a run and its resumption."""
    pipe = {k: v for k, v in plain(pipeline).items() if k not in UNHASHED_PIPELINE_KEYS}
    tr = {k: v for k, v in plain(train).items() if k not in UNHASHED_TRAIN_KEYS}
    # The cache's place is no setting of the weights, but its float16 features are (rounding): a run trained
    # with one is another run. Left out when unset, so the identities of runs without one stay as they were.
    cache = tr["data"].pop("feature_cache")
    if cache is not None:
        tr["data"]["feature_cache"] = "float16"
    return {"pipeline": pipe, "train": tr}


def config_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def differences(saved, current, saved_as: str, current_as: str, where: str = "") -> list[str]:
    """'key: A in <saved_as>, B in <current_as>' for every leaf where two identities differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for k in sorted(set(saved) | set(current))
                for d in differences(saved.get(k), current.get(k), saved_as, current_as,
                                     f"{where}.{k}" if where else k)]
    return [] if saved == current else [f"{where}: {saved!r} in {saved_as}, {current!r} in {current_as}"]
