"""A conversion leaves a whole bag or nothing.

BagWriter finalizes whatever it was given when a run stops (right for a recorder: a cut drive is still data),
so a conversion records into a hidden folder beside `--out` and renames the bag into place only once it is
complete; an error or Ctrl-C removes the folder, and `--out` never holds half a scene.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.data.bag.errors import BagError
from ov_panoptic_ros.data.bag.recording import RecordedDrive


@dataclass
class Conversion:
    """What a conversion wrote (`drive`), what its source had to leave out (`problems`), and how many images lie
    further from their cloud in time than the synchronizer pairs (sync.max_offset_s: replay misses those)."""

    drive: RecordedDrive
    problems: ProblemLog
    far_images: int = 0


def check_out(out: Path) -> None:
    """Refuse an `out` that exists or whose folder does not: before the dataset is read."""
    if out.exists():
        raise BagError(f"{out} exists already; not overwriting it")
    if not out.parent.is_dir():
        raise BagError(f"{out.parent} is not a directory; create it first")


def record_staged(out: Path, record: Callable[[Path], RecordedDrive]) -> RecordedDrive:
    """`record(path)` writes a bag at a path beside `out`, which becomes `out` once `record` returns; whatever
    `record` raises (KeyboardInterrupt too) leaves nothing behind. The caller has run `check_out(out)` before
    reading its dataset; it runs again before the rename."""
    out = Path(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.converting-", dir=out.parent))
    try:
        try:
            drive = record(staging / out.name)
        except BagError as e:  # name the bag the user asked for, not the staging path
            raise BagError(str(e).replace(str(staging / out.name), str(out))) from None
        check_out(out)  # another process may have taken the name meanwhile
        (staging / out.name).rename(out)
        drive.path = out
        return drive
    finally:
        shutil.rmtree(staging, ignore_errors=True)
