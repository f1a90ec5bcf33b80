"""`ov-panoptic convert nuscenes|semantickitti`: a dataset's drive as an evaluation bag, with TF as a vehicle
publishes it (data/convert/), so `replay` scores the real drive and `play` feeds it to the node."""
from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app, fail

convert_app = typer.Typer(no_args_is_help=True, help="Convert a dataset drive (a nuScenes scene, a SemanticKITTI "
                                                     "sequence) into an evaluation bag.")
app.add_typer(convert_app, name="convert")


class Storage(str, Enum):
    """data/bag/writer.py STORAGES, spelled out here: --help imports no rosbags."""

    mcap = "mcap"
    sqlite3 = "sqlite3"


OUT = typer.Option(..., "--out", "-o", help="The bag to write (.mcap, .db3, or a directory name); not overwritten.")
EVERY = typer.Option(1, "--every", min=1, help="Use every N-th frame.")
MAX_FRAMES = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames.")
STORAGE = typer.Option(None, "--storage", help="Bag storage (default: from the --out suffix, else mcap).")


def _report(conversion, what: str, replay_flags: str, t0: float) -> None:
    drive, problems = conversion.drive, conversion.problems
    n, cameras = len(drive.stamps_ns), len(drive.cameras)
    typer.echo(f"{drive.path}: {n} frames of {what} ({cameras} camera{'s' * (cameras != 1)}, "
               f"{sum(drive.num_points) // max(n, 1)} points a frame) in {time.perf_counter() - t0:.1f} s")
    left_out = {**problems.frames, **problems.cameras}  # frame kinds, and "camera: kind" for single images
    if left_out:
        typer.echo(f"left out, as the source cannot read them: {left_out}", err=True)
    if conversion.far_images:
        typer.echo(f"warning: {conversion.far_images} images lie more than 0.05 s (sync.max_offset_s) from their "
                   "cloud: replay leaves them out as sync_miss", err=True)
    typer.echo(f"evaluate it: ov-panoptic replay {drive.path}{replay_flags}")


@convert_app.command("nuscenes")
def nuscenes(
    dataroot: Path = typer.Option(..., "--dataroot", help="The nuScenes dataroot (VERSION/, samples/, panoptic/)."),
    version: str = typer.Option("v1.0-mini", "--version", help="The version folder of the tables."),
    scene: str = typer.Option(..., "--scene", help="The scene to convert, e.g. scene-0061."),
    out: Path = OUT, every: int = EVERY, max_frames: int | None = MAX_FRAMES, storage: Storage | None = STORAGE,
) -> None:
    """Write a nuScenes scene as an evaluation bag: its keyframes with Panoptic nuScenes ground truth, base_link ->
    LIDAR_TOP and CAM_* on /tf_static, map -> base_link at every sensor's timestamp on /tf, each image at its
    camera's timestamp. Replay it with --fixed-frame map."""
    from ov_panoptic_ros.data.bag.errors import BagError
    from ov_panoptic_ros.data.convert import convert_nuscenes
    from ov_panoptic_ros.data.nuscenes import NuScenesError

    t0 = time.perf_counter()
    try:
        conversion = convert_nuscenes(out, dataroot, scene, version, every, max_frames, storage and storage.value)
    except (NuScenesError, BagError) as e:
        fail(str(e))
    _report(conversion, f"{version} {scene}", " --fixed-frame map", t0)


@convert_app.command("semantickitti")
def semantickitti(
    root: Path = typer.Option(..., "--root", help="The SemanticKITTI root (holding sequences/)."),
    sequence: str = typer.Option(..., "--sequence", help="The sequence to convert, e.g. 08."),
    out: Path = OUT, every: int = EVERY, max_frames: int | None = MAX_FRAMES, storage: Storage | None = STORAGE,
) -> None:
    """Write a SemanticKITTI sequence as an evaluation bag: its scans with image_2 and the 19-class ground truth,
    velodyne -> image_2 on /tf_static."""
    from ov_panoptic_ros.data.bag.errors import BagError
    from ov_panoptic_ros.data.convert import convert_semantickitti
    from ov_panoptic_ros.data.semantickitti import SemanticKittiError

    t0 = time.perf_counter()
    try:
        conversion = convert_semantickitti(out, root, sequence, every, max_frames, storage and storage.value)
    except (SemanticKittiError, BagError) as e:
        fail(str(e))
    _report(conversion, f"sequence {sequence}", "", t0)
