"""Live replay of the demo drive through the real node, many times: clouds dropped and end-to-end latency
per run (target: none dropped on 2 cores), and how fast Ctrl-C ends a live replay (target: 2 s)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEMO_FRAMES = 6  # the demo's drive (cli/demo.py)


def _one_run(bag: Path, out: Path) -> dict:
    from ov_panoptic_ros.eval.live import replay_live

    doc = replay_live(bag, "tiny", out, progress=False, figure_frames=0)
    live = doc["live"]
    return {"sent": live["clouds_sent"], "received": live["clouds_received"], "dropped": live["dropped"],
            "e2e_p50_ms": live["end_to_end_latency_ms"]["p50"], "e2e_max_ms": live["end_to_end_latency_ms"]["max"],
            "wall_s": doc["timing"]["wall_s"], "node_startup_s": doc["timing"]["node_startup_s"]}


def _ctrl_c_exit_s(bag: Path, out: Path) -> dict:
    """Seconds from SIGINT (to the whole process group, as a terminal sends it) to the CLI's exit."""
    cli = [str(Path(sys.executable).parent / "ov-panoptic"), "replay", str(bag), "--live", "--out", str(out),
           "--no-progress", "--rate", "0.2"]
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        log = out / "node.log"
        if log.exists() and "ready:" in log.read_text(errors="replace"):
            break
        time.sleep(0.2)
    time.sleep(2.0)  # a few clouds into the drive
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=120)
    return {"exit_s": time.monotonic() - t0, "exit_code": code,
            "partial_report": (out / "metrics.json").exists()}


def bench_live(quick: bool = False) -> dict:
    from ov_panoptic_ros.data.synthetic_drive import write_synthetic_bag

    runs = 2 if quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "demo.mcap"
        write_synthetic_bag(bag, n_frames=DEMO_FRAMES)
        per_run = [_one_run(bag, Path(tmp) / f"run{i}") for i in range(runs)]
        long_bag = Path(tmp) / "long.mcap"
        write_synthetic_bag(long_bag, n_frames=40)
        ctrl_c = _ctrl_c_exit_s(long_bag, Path(tmp) / "interrupted")
    p50 = [r["e2e_p50_ms"] for r in per_run if r["e2e_p50_ms"] is not None]
    return {
        "runs": runs, "frames_per_run": DEMO_FRAMES, "per_run": per_run,
        "clouds_dropped_total": int(sum(r["dropped"] for r in per_run)),
        "runs_with_drops": int(sum(r["dropped"] > 0 for r in per_run)),
        "e2e_p50_ms_median": float(np.median(p50)) if p50 else None,
        "e2e_p50_ms_range": [float(min(p50)), float(max(p50))] if p50 else None,
        "wall_s_median": float(np.median([r["wall_s"] for r in per_run])),
        "ctrl_c": ctrl_c, "load_average_1min": round(os.getloadavg()[0], 2),
    }
