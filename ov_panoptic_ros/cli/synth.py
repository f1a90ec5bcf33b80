"""`ov-panoptic synth`: a drive of the synthetic world recorded in the evaluation bag layout."""
from __future__ import annotations

import time
from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app, fail


def parse_image_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        fail(f"--image-size expects WIDTHxHEIGHT (e.g. 480x320), got {text!r}")
    return int(width), int(height)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="The bag to write (.mcap, .db3, or a directory name)."),
    frames: int = typer.Option(100, "--frames", min=1, help="Frames at 10 Hz."),
    seed: int = typer.Option(0, "--seed", help="The world's seed: the same seed gives the same drive."),
    start: int = typer.Option(0, "--start", min=0, help="First frame of the drive."),
    cameras: int = typer.Option(2, "--cameras", min=1, max=6, help="Cameras around the ego vehicle."),
    image_size: str = typer.Option("480x320", "--image-size", help="WIDTHxHEIGHT of every camera."),
    compressed: bool = typer.Option(False, "--compressed", help="JPEG images (CompressedImage) instead of raw."),
) -> None:
    """Record a drive of the synthetic world (16 nuScenes classes, 32-beam LiDAR, distorted cameras, exact
    panoptic ground truth) as a bag that `replay` evaluates and `play` feeds to the node."""
    from ov_panoptic_ros.data.bag.recording import record_drive
    from ov_panoptic_ros.data.world.generator import WorldConfig
    from ov_panoptic_ros.data.world.source import WorldSource

    if out.exists():
        fail(f"{out} exists already; not overwriting it")
    duration_s = (start + frames) / 10.0
    config = WorldConfig(duration_s=max(duration_s, WorldConfig().duration_s), cameras=cameras,
                         image_size=parse_image_size(image_size))
    source = WorldSource(seed, frames, config, start)
    t0 = time.perf_counter()
    drive = record_drive(out, source, source.classes, compressed=compressed)
    typer.echo(f"{out}: {len(drive.stamps_ns)} frames of world seed {seed} ({cameras} cameras, "
               f"{sum(drive.num_points) // len(drive.stamps_ns)} points a frame) in {time.perf_counter() - t0:.1f} s")
