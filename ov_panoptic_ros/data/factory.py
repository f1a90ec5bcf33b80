"""One factory for every FrameSource, chosen from a name or a path (kiss-icp's dataset factory)."""
from __future__ import annotations

from pathlib import Path

from ov_panoptic_ros.data.source import FrameSource

SYNTHETIC = "synthetic"


def open_source(spec: str | Path, **options) -> FrameSource:
    """'synthetic[:SEED]' -> the synthetic street (options: frames, num_points, ...); anything else is a bag
    path in the evaluation layout (options: topics, calibration_file, every, max_frames, ...)."""
    text = str(spec)
    if text == SYNTHETIC or text.startswith(SYNTHETIC + ":"):
        from ov_panoptic_ros.data.synthetic_drive import SyntheticSource

        seed = text.partition(":")[2]
        return SyntheticSource(seed=int(seed) if seed else 0, **options)
    from ov_panoptic_ros.data.bag.source import BagFrameSource

    return BagFrameSource.open(spec, **options)
