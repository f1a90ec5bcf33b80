"""`ov-panoptic bench`: every benchmark, one JSON report (speed and memory targets live here, not in tests)."""
from __future__ import annotations

import importlib
import json
import os
import platform
import time
from pathlib import Path

import typer

from ov_panoptic_ros.cli.app import app, fail

# name -> (module, function); each returns a JSON-able dict. Kept as data so `--only` can pick.
BENCHMARKS = {
    "core_vision": ("ov_panoptic_ros.bench.core_vision", "bench_core_vision"),
    "core_model": ("ov_panoptic_ros.bench.core_model", "bench_core_model"),
    "ros": ("ov_panoptic_ros.bench.ros", "bench_ros"),
    "tf": ("ov_panoptic_ros.bench.tf", "bench_tf"),
    "metrics": ("ov_panoptic_ros.bench.metrics", "bench_metrics"),
    "replay": ("ov_panoptic_ros.bench.replay", "bench_replay"),
    "live": ("ov_panoptic_ros.bench.live", "bench_live"),
    "world": ("ov_panoptic_ros.data.world.bench", "bench_world"),
    "sources": ("ov_panoptic_ros.bench.sources", "bench_sources"),  # frames/s of every FrameSource, real sizes
    "train": ("ov_panoptic_ros.bench.train", "bench_train"),
    "shipped_model": ("ov_panoptic_ros.bench.shipped_model", "bench_shipped_model"),
    "load": ("ov_panoptic_ros.bench.load", "bench_load"),  # minutes: the node under 10 Hz sensor load
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
        fail(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")
    report: dict = {
        "created_unix": time.time(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count()},
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
    from ov_panoptic_ros.bench.targets import format_table, target_rows

    rows = target_rows(report["results"])
    if rows:
        typer.echo("\n" + format_table(rows))
