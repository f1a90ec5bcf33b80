"""`ov-panoptic`: one command group per module, on one typer app (cli/app.py): demo, synth, convert, replay +
play, evaluate, train, extract-features, train-teacher, param + vocab, bench, config."""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from ov_panoptic_ros.cli import (bench, config, convert, demo, evaluate, features,  # noqa: F401 (each registers)
                                     param, replay, synth, teacher, train)
    from ov_panoptic_ros.cli.app import main_exit
    from ov_panoptic_ros.core.process import steady_latency
    from ov_panoptic_ros.ros.dds import apply_default_profile

    steady_latency()  # replay, training and benchmarks: freed memory kept, OpenMP waits passively
    apply_default_profile()  # play and live replay publish large messages; the node subprocess inherits it
    main_exit(argv)
