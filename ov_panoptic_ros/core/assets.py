"""Files the package ships beside its code (config/, models/), wherever it is installed.

Looked up, in order, in each prefix of $AMENT_PREFIX_PATH (a colcon install: <prefix>/share/ov_panoptic_ros),
in the Python environment (<sys.prefix>/share/ov_panoptic_ros: a pip install of the package), and in the
source tree this module sits in (a checkout). No ROS import: the environment variable is what ament reads.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "ov_panoptic_ros"
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def candidates(relative: str) -> list[Path]:
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    shares = [p / "share" / PACKAGE for p in prefixes] + [Path(sys.prefix) / "share" / PACKAGE]
    return [share / relative for share in shares] + [SOURCE_ROOT / relative]


def package_file(relative: str) -> Path:
    """The first existing copy of a shipped file; the source-tree path (for the error message) if none exists."""
    found = next((path for path in candidates(relative) if path.exists()), None)
    return found or SOURCE_ROOT / relative
