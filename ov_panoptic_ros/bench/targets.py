"""The speed and memory targets, read out of a benchmark report: what `ov-panoptic bench` prints after the JSON.

A target names where its value sits in the report (benchmark, then a dotted path) and how it is judged. A
value that is missing is a skipped comparison, reported with the reason the benchmark recorded (a key
ending in `_error`, or `skipped`), never silently.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Target:
    benchmark: str
    path: str  # dotted path inside the benchmark's result
    measure: str
    target: str
    met: Callable[[float], bool]


def _at_most(limit: float):
    return lambda v: operator.le(v, limit)


def _below(limit: float):
    return lambda v: operator.lt(v, limit)


def _at_least(limit: float):
    return lambda v: operator.ge(v, limit)


TARGETS = (
    Target("metrics", "speedup", "metrics throughput vs nuscenes-devkit", ">= 3x", _at_least(3.0)),
    Target("metrics", "max_abs_diff_pq", "metrics equal to nuscenes-devkit (max |dPQ|)", "<= 1e-9", _at_most(1e-9)),
    Target("core_vision", "target_case.project_plus_sample_ms", "projection + sampling, 100k pts x 6 cams x 768-d",
           "< 40 ms", _below(40.0)),
    Target("ros", "conversion.write_vs_memcpy", "output cloud build vs memcpy, 200k points", "<= 3x", _at_most(3.0)),
    Target("ros", "node_overhead.overhead_ms.p50", "node overhead p50, 100k pts + 6 cams", "< 15 ms", _below(15.0)),
    Target("tf", "fixed_frame.per_frame_ms.p50", "TF lookups per frame, 6 cameras, through odom (ego-motion)",
           "< 0.5 ms", _below(0.5)),
    Target("ros", "rss.growth_after_warmup_pct", "node RSS growth after warm-up", "< 5 %", _below(5.0)),
    Target("replay", "offline_replay.bag_read_share", "bag read share of an offline replay", "< 0.5",
           _below(0.5)),
    Target("live", "clouds_dropped_total", "clouds dropped over the live replays of the demo drive", "0",
           _at_most(0)),
    Target("world", "frames_100_s.wall", "synthetic world: 100 frames, 2 cameras, one core", "< 120 s",
           _below(120.0)),
    Target("live", "ctrl_c.exit_s", "Ctrl-C to exit of a live replay", "<= 2 s", _at_most(2.0)),
    Target("load", "goals.delivered_min_a_b", "clouds and images delivered at 10 Hz (worst of A, B)", ">= 0.99",
           _at_least(0.99)),
    Target("load", "goals.camera_complete_min_a", "camera-complete frames at 10 Hz, A (worst run)", ">= 0.95",
           _at_least(0.95)),
    Target("load", "goals.rss_growth_max_pct", "node RSS growth over 60 s at 10 Hz (worst case)", "< 10 %",
           _below(10.0)),
    Target("shipped_model", "total_ms_p50", "shipped models' inference p50, world frame, 2 cams, 2 threads",
           "< 100 ms", _below(100.0)),
    Target("train", "data_wait_share", "training: share of time waiting for data, tiny, 30k pts + 2 cams",
           "< 0.1", _below(0.1)),
    Target("train", "cached.steady_state.data_wait_share", "training from the CLIP feature cache: share waiting "
           "for data", "< 0.1", _below(0.1)),
)


def _lookup(result: dict, path: str):
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _skip_reason(result: dict) -> str:
    reasons = [f"{k}: {v}" for k, v in result.items() if (k.endswith("_error") or k == "skipped") and v]
    return "; ".join(reasons) or "the benchmark did not report this value"


def target_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, met) for every target whose benchmark ran."""
    rows = []
    for t in TARGETS:
        if t.benchmark not in results:
            continue
        value = _lookup(results[t.benchmark], t.path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((t.measure, f"{value:.4g}", t.target, "yes" if t.met(value) else "NO"))
        else:
            rows.append((t.measure, "-", t.target, f"skipped ({_skip_reason(results[t.benchmark])})"))
    return rows


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("measure", "value", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3]  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths) + ("---",)), *map(line, rows)])
