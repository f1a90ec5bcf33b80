"""`ov-panoptic demo`: record a synthetic drive, replay it, say where the report is."""
from __future__ import annotations

from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output directory."),
    frames: int = typer.Option(6, help="Synthetic frames to record and replay."),
    config: str = typer.Option("tiny", help="Preset name or YAML file."),
) -> None:
    """Record a synthetic drive to a rosbag2, replay it through the pipeline, write the evaluation report."""
    from ov_panoptic_ros.data.synthetic_drive import write_synthetic_bag
    from ov_panoptic_ros.eval.replay import replay_offline

    out.mkdir(parents=True, exist_ok=True)
    bag, predictions = out / "synthetic_drive.mcap", out / "predictions.mcap"
    for stale in (bag, predictions):  # the demo recreates both; the replay tool itself never overwrites a bag
        stale.unlink(missing_ok=True)
    typer.echo(f"[demo] writing {frames} synthetic frames to {bag}")
    write_synthetic_bag(bag, n_frames=frames)
    report_dir = out / "report"
    typer.echo(f"[demo] replaying {bag} through the '{config}' pipeline")
    summary = replay_offline(bag, config=config, out=report_dir, output_bag=predictions)
    typer.echo("")
    typer.echo(f"input bag:        {bag}")
    typer.echo(f"report:           {report_dir}/metrics.json, {report_dir}/per_class.csv, {report_dir}/*.png")
    typer.echo(f"predictions bag:  {predictions}  (open in Foxglove, or `ov-panoptic play` it into RViz)")
    m = summary.get("metrics", {}) if isinstance(summary, dict) else {}
    if m:
        keys = [k for k in ("PQ", "PQ_dagger", "mIoU") if k in m]
        typer.echo("metrics:          " + ", ".join(f"{k}={m[k]:.3f}" for k in keys))
