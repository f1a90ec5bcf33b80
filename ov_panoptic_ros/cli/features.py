"""`ov-panoptic extract-features`: the frozen CLIP run once over a training source, its per-point features
stored for training to read (`train.data.feature_cache`) instead of running CLIP every step."""
from __future__ import annotations

from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app, fail, yaml_assignments


def _configs(config: str):
    """(pipeline config, the training config's train.data or None): a training config or a pipeline one."""
    import yaml

    from ov_panoptic_ros.core.config import load_config
    from ov_panoptic_ros.train.config import config_names, load_train_config

    path, doc = Path(config), None
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            pass  # load_config says what is wrong with it
    is_train = config in config_names() or (isinstance(doc, dict) and "train" in doc)
    if is_train:
        pipeline_config, train_config = load_train_config(config)
        return pipeline_config, train_config.data
    return load_config(config), None


@app.command("extract-features")
def extract_features(
    config: str = typer.Option(..., "--config", "-c", help="A training config (its pipeline; its train.data is the "
                                                         "default source and cache) or a pipeline preset / YAML."),
    source: str | None = typer.Option(None, "--source", "-s", help="world:SEED, synthetic:SEED, a bag path, ... "
                                                                 "(default: the training config's train.data.spec)."),
    option: list[str] = typer.Option([], "--option", help="Source option KEY=VALUE, e.g. frames=10 (added to "
                                                         "train.data.options when --source is not given)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Cache directory (default: train.data.feature_cache)."),
    verify: bool = typer.Option(False, "--verify", help="Check the CRC-32 of every frame already in the cache (reads "
                                                        "it all); without it a kept frame is checked by its header "
                                                        "and length."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Run the frozen CLIP once over a source and store each frame's per-point features (float16), for
    training to read with `train.data.feature_cache: DIR`. Rerun to resume: frames already written are kept.
    Under torchrun each process extracts every WORLD_SIZE-th frame."""
    from ov_panoptic_ros.train.config import SourceConfig

    pipeline_config, data = _configs(config)
    options = yaml_assignments(option, "--option expects KEY=VALUE (a YAML value)")
    if source is None and data is None:
        fail(f"--source is required: {config!r} is a pipeline config, not a training config with train.data")
    src = SourceConfig(source, options) if source else SourceConfig(data.spec, {**data.options, **options})
    out = out or (Path(data.feature_cache) if data is not None and data.feature_cache else None)
    if out is None:
        fail("--out is required (the training config sets no train.data.feature_cache)")
    from ov_panoptic_ros.core.ranks import env_ranks
    from ov_panoptic_ros.train.feature_extract import extract_features as run_extraction

    rank, world, local_rank = env_ranks()
    result = run_extraction(pipeline_config, src, out, rank=rank, world=world, local_rank=local_rank,
                            verify=verify, progress=progress and rank == 0)
    who = f"rank {rank}/{world}: " if world > 1 else ""
    typer.echo(f"{who}{len(result.written) + result.kept} frames ({len(result.written)} extracted, {result.kept} "
               f"kept) in {result.wall_s:.1f} s, {size(result.shard_bytes)}")
    index = result.index
    if index is None:
        typer.echo(f"{who}shard complete; the rank that finishes last writes {out}/index.json")
        return
    per = index["bytes_per_frame"]
    typer.echo(f"feature cache {out}: {index['frames']} frames, {index['seen_share']:.0%} of the points seen; "
               f"{size(per['mean'])} a frame (min {size(per['min'])}, max {size(per['max'])}), "
               f"{size(index['bytes'])} in all. Train with train.data.feature_cache: {out}")


def size(n: float) -> str:
    """Bytes in decimal units: 29.5 kB, 1.47 TB."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"
