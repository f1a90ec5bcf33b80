"""`ov-panoptic train-teacher`: the 2D vision-language teacher, trained on synthetic-world views."""
from __future__ import annotations

from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app, fail


def seed_range(text: str) -> list[int]:
    """'100:130' -> 100..129; '5' -> [5]; '1,4,9' -> those."""
    try:
        if ":" in text:
            first, last = text.split(":")
            return list(range(int(first), int(last)))
        return [int(s) for s in text.split(",")]
    except ValueError:
        fail(f"seeds {text!r}: expected FIRST:STOP, or a comma-separated list of integers")


@app.command("train-teacher")
def train_teacher_command(
    out: Path = typer.Option(..., "--out", "-o", help="The teacher checkpoint to write."),
    config: str = typer.Option("synthetic", "--config", "-c",
                               help="Pipeline preset or YAML whose vocabulary names the world's classes."),
    seeds: str = typer.Option("100:130", "--seeds", help="World seeds rendered for training (FIRST:STOP)."),
    frames_per_seed: int = typer.Option(8, "--frames-per-seed", min=1),
    cameras: int = typer.Option(6, "--cameras", min=1, max=6, help="Views per frame (all around the car)."),
    image_size: str = typer.Option("480x320", "--image-size", help="WIDTHxHEIGHT, as the node's cameras."),
    epochs: int = typer.Option(8, "--epochs", min=1),
    crop: int = typer.Option(160, "--crop", help="Square training crop (a multiple of 16)."),
    width: int = typer.Option(32, "--width", help="TeacherNet width."),
    stride: int = typer.Option(8, "--stride", help="Feature stride, 4 or 8."),
    balance: float = typer.Option(0.5, "--balance", help="Class balance of the sampled pixels: 0 uniform, 1 equal."),
    lr: float = typer.Option(2e-3, "--lr", help="AdamW learning rate (cosine decay over the epochs)."),
    seed: int = typer.Option(0, "--seed", help="Training seed (init, shuffling, augmentation)."),
) -> None:
    """Train the teacher (LSeg-style, MiniLM text) on views of synthetic-world drives; see docs/teacher.md."""
    from ov_panoptic_ros.cli.synth import parse_image_size
    from ov_panoptic_ros.core.config import load_config
    from ov_panoptic_ros.train.teacher import TeacherTrainConfig, train_teacher
    from ov_panoptic_ros.train.teacher_world import world_views

    if out.exists():
        fail(f"{out} exists already; not overwriting it")
    vocabulary = load_config(config).vocabulary
    size = parse_image_size(image_size)
    train_cfg = TeacherTrainConfig(image_size=min(size), crop=crop, stride=stride, width=width, epochs=epochs,
                                   seed=seed, balance=balance, lr=lr, templates=tuple(vocabulary.templates))
    samples = world_views(seed_range(seeds), frames_per_seed, cameras, size, vocabulary.classes,
                          log=lambda m: typer.echo(m, err=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    train_teacher(samples, out, train_cfg, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"teacher: {out}")
