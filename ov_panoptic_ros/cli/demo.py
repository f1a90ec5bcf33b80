"""`ov-panoptic demo`: a fresh drive of the synthetic world, replayed live through the real node over DDS with
the shipped models, scored; prints PQ (base / novel), mIoU, latency and where the report is."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app

DEMO_SEED = 9000  # demo drives start here: never a training (100-129), validation (1000+) or table (5000+) seed


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output directory (recreated)."),
    frames: int = typer.Option(30, help="Frames of the drive (10 Hz)."),
    seed: int = typer.Option(DEMO_SEED, help="World seed of the drive (9000+ were never trained or tuned on)."),
    config: str = typer.Option("synthetic", help="Pipeline preset or YAML file the node runs."),
    rate: float = typer.Option(0.5, help="Playback speed: 0.5 gives a CPU-only node 200 ms a frame."),
) -> None:
    """Record a drive of the synthetic world, play it live into the node (as on a vehicle), score what the node
    publishes against the exact ground truth, and write the report with figures."""
    from ov_panoptic_ros.data.bag.recording import record_drive
    from ov_panoptic_ros.data.world.source import WorldSource
    from ov_panoptic_ros.eval.live import replay_live

    t0 = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)  # the demo recreates its folder; replay itself never overwrites a bag
    out.mkdir(parents=True)
    bag, predictions, report = out / "synthetic_drive.mcap", out / "predictions.mcap", out / "report"
    typer.echo(f"[demo] recording {frames} frames of world seed {seed} to {bag}")
    source = WorldSource(seed, frames)
    record_drive(bag, source, source.classes)
    typer.echo(f"[demo] playing {bag} into ov_panoptic_node ('{config}' preset) over DDS at rate {rate}")
    doc = replay_live(bag, config, report, rate=rate, output_bag=predictions)
    m, live = doc["metrics"], doc["live"]
    typer.echo("")
    if m:
        g = m["groups"]
        typer.echo(f"PQ {m['PQ']:.3f}   PQ_base {g['base']['PQ']:.3f}   PQ_novel {g['novel']['PQ']:.3f}   "
                   f"mIoU {m['mIoU']:.3f}   ({m['n_frames']} frames; novel: "
                   f"{', '.join(c['name'] for c in doc['gt_classes'] if c['novel'])})")
    e2e = live["end_to_end_latency_ms"]
    if e2e["n"]:
        typer.echo(f"latency (cloud published -> labels received): p50 {e2e['p50']:.0f} ms, p99 {e2e['p99']:.0f} ms;"
                   f" {live['dropped']} of {live['clouds_sent']} clouds dropped")
    typer.echo(f"drive:        {bag}")
    typer.echo(f"report:       {report}/metrics.json, {report}/per_class.csv, figures {report}/*.png")
    typer.echo(f"predictions:  {predictions}  (open in Foxglove, or `ov-panoptic play` it into RViz)")
    typer.echo(f"demo took {time.perf_counter() - t0:.0f} s")
