"""`ov-panoptic`: demo, offline/live bag replay, bag playback, benchmarks, config inspection."""
from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

import typer
import yaml

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

# name -> (module, function); each returns a JSON-able dict. Kept as data so `--only` can pick.
BENCHMARKS = {
    "core_vision": ("ov_panoptic_ros.bench.core_vision", "bench_core_vision"),
    "core_model": ("ov_panoptic_ros.bench.core_model", "bench_core_model"),
    "ros": ("ov_panoptic_ros.bench.ros", "bench_ros"),
    "metrics": ("ov_panoptic_ros.bench.metrics", "bench_metrics"),
    "replay": ("ov_panoptic_ros.bench.replay", "bench_replay"),
}


@app.command()
def bench(
    out: Path = typer.Option(Path("runs/bench/bench.json"), help="Where the JSON report goes."),
    only: list[str] = typer.Option([], help=f"Run only these: {', '.join(BENCHMARKS)}."),
    quick: bool = typer.Option(False, help="Fewer repetitions, for a smoke run."),
) -> None:
    """Run the benchmarks and write one JSON report (speed and memory targets live here, not in tests)."""
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")
    report: dict = {
        "created_unix": time.time(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": __import__("os").cpu_count()},
        "quick": quick,
        "results": {},
    }
    for name, (module, func) in BENCHMARKS.items():
        if only and name not in only:
            continue
        typer.echo(f"[bench] {name} ...", err=True)
        start = time.perf_counter()
        result = getattr(importlib.import_module(module), func)(quick=quick)
        result["wall_s"] = round(time.perf_counter() - start, 3)
        report["results"][name] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float))
    typer.echo(f"benchmark report: {out}")


@app.command("config")
def show_config(name: str = typer.Argument("tiny", help="Preset name or YAML file.")) -> None:
    """Print the fully resolved pipeline config as YAML."""
    from ov_panoptic_ros.core.config import ConfigError, load_config

    try:
        cfg = load_config(name)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output directory."),
    frames: int = typer.Option(6, help="Synthetic frames to record and replay."),
    config: str = typer.Option("tiny", help="Preset name or YAML file."),
) -> None:
    """Record a synthetic drive to a rosbag2, replay it through the pipeline, write the evaluation report."""
    from ov_panoptic_ros.eval.bag import write_synthetic_bag
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


def _register_subcommands() -> None:
    from ov_panoptic_ros.eval.commands import register

    register(app)


def main(argv: list[str] | None = None) -> None:
    from ov_panoptic_ros.core.allocator import keep_freed_memory

    keep_freed_memory()  # steady per-frame latency in replay and benchmarks: see core.allocator
    _register_subcommands()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="ov-panoptic")


if __name__ == "__main__":
    main()
