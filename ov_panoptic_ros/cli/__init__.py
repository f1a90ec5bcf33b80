"""`ov-panoptic`: one command group per module (demo, replay + play, train, bench, config), on one typer app."""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from ov_panoptic_ros.cli import bench, config, demo, param, replay, synth, teacher, train  # noqa: F401
    from ov_panoptic_ros.cli.app import main_exit
    from ov_panoptic_ros.core.allocator import keep_freed_memory

    keep_freed_memory()  # steady per-frame latency in replay and benchmarks: see core.allocator
    main_exit(argv)
