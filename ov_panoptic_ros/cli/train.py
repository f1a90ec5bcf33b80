"""`ov-panoptic train`: train the 3D network (ov_panoptic_ros/train/), alone or under torchrun (DDP)."""
from __future__ import annotations

from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import EXIT_INTERRUPTED, app


@app.command()
def train(
    config: str = typer.Option(..., "--config", "-c", help="Training config: a shipped one (synthetic) or a YAML "
                                                         "file (a pipeline config plus a `train:` section)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default: the config's train.out)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the run directory; an error when it "
                                                        "holds no checkpoint of it (without --resume a run continues "
                                                        "from its checkpoint when there is one)."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Optimizer steps (overrides train.steps)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train the 3D network: checkpoints, TensorBoard + CSV logs and validation reports in the run directory.
    Ctrl-C saves a checkpoint after the current step (exit 130); rerunning the command continues it."""
    from ov_panoptic_ros.train.config import load_train_config

    overrides = {k: v for k, v in (("out", str(out) if out else None), ("steps", steps)) if v is not None}
    pipeline_config, train_config = load_train_config(config, overrides)  # config errors before the slow imports
    from ov_panoptic_ros.train.loop import train as run_training
    from ov_panoptic_ros.train.trainer import NonFiniteLossError

    try:
        result = run_training(pipeline_config, train_config, resume=resume, progress=progress)
    except NonFiniteLossError as e:  # the run started; its last good checkpoint is on disk
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    if result.rank != 0:
        raise typer.Exit(EXIT_INTERRUPTED if result.interrupted else 0)
    state = "interrupted, saved" if result.interrupted else "done"
    typer.echo(f"{state} at step {result.step}/{train_config.steps}: {result.out}/network.pt "
               f"({result.steps_per_s:.2f} steps/s, {result.data_wait_share:.0%} of the time waiting for data)")
    if result.validation:
        typer.echo("validation: " + "  ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in result.validation.items()
                                               if v is not None) + f"  ({result.out}/val/)")
    raise typer.Exit(EXIT_INTERRUPTED if result.interrupted else 0)
