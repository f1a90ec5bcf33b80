"""Which files a SemanticKITTI root holds, checked before the first frame is read.

    ROOT/sequences/XX/velodyne/NNNNNN.bin   float32 x y z remission per point
                     labels/NNNNNN.label    uint32 per point (absent for the test sequences 11-21)
                     image_2/NNNNNN.png     the left colour camera
                     calib.txt, times.txt   P0..P3 and Tr; one time in seconds per scan

Everything that would make a whole sequence unusable (a wrong root, a missing sequence, no scans, a bad
calib.txt or times.txt) is a SemanticKittiError here, naming the path, so a run fails at once instead of after
some frames; a bad single file is the frame's problem, found while reading it (source.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ov_panoptic_ros.data.semantickitti.calib import Calibration, read_calibration
from ov_panoptic_ros.data.semantickitti.errors import SemanticKittiError


@dataclass(frozen=True)
class Sequence:
    name: str  # "08"
    path: Path
    scans: tuple[str, ...]  # scan file stems ("000000", ...), in order
    times_s: np.ndarray  # (scans,) the scan's time in seconds from the sequence start
    calibration: Calibration
    labelled: bool  # the sequence has a labels/ directory (the training and validation sequences)

    def file(self, folder: str, scan: str, suffix: str) -> Path:
        return self.path / folder / f"{scan}{suffix}"


def sequence_names(sequences: str | int | Iterable[str | int] | None, root: Path) -> list[str]:
    """Sequence names as the directories spell them: 8, '8' and '08' all name sequences/08; a comma-separated
    string names several; None names every sequence under ROOT/sequences."""
    if sequences is None:
        return sorted(p.name for p in (root / "sequences").iterdir() if p.is_dir())
    if isinstance(sequences, (str, int)):
        sequences = str(sequences).split(",")
    names = [str(s).strip() for s in sequences if str(s).strip()]
    return [f"{int(s):02d}" if s.isdigit() else s for s in names]


def _times(path: Path, scans: tuple[str, ...]) -> np.ndarray:
    try:
        times = np.atleast_1d(np.loadtxt(path, dtype=np.float64, ndmin=1))
    except (OSError, ValueError) as e:
        raise SemanticKittiError(f"{path}: cannot read the scan times ({e})") from e
    last = max(int(s) for s in scans)
    if times.ndim != 1 or times.size <= last or not np.isfinite(times).all():
        raise SemanticKittiError(f"{path}: needs one finite time per scan (scan {scans[-1]} is number {last},"
                                 f" the file has {times.size} times)")
    return times[[int(s) for s in scans]]


def open_sequence(root: Path, name: str) -> Sequence:
    """One sequence's scan list, times and calibration, or SemanticKittiError naming the missing/bad path."""
    path = root / "sequences" / name
    if not path.is_dir():
        raise SemanticKittiError(f"{path}: no such sequence in {root}")
    velodyne = path / "velodyne"
    scans = tuple(sorted(p.stem for p in velodyne.glob("*.bin") if p.stem.isdigit())) if velodyne.is_dir() else ()
    if not scans:
        raise SemanticKittiError(f"{velodyne}: no scans (NNNNNN.bin) in the sequence")
    calib = path / "calib.txt"
    if not calib.is_file():
        raise SemanticKittiError(f"{calib}: missing (it comes with KITTI odometry's calibration files)")
    return Sequence(name, path, scans, _times(path / "times.txt", scans), read_calibration(calib),
                    (path / "labels").is_dir())


def open_root(root: str | Path, sequences: str | int | Iterable[str | int] | None) -> list[Sequence]:
    """Every named sequence, checked; SemanticKittiError for a root without sequences/ or a missing sequence."""
    root = Path(root).expanduser()
    if not (root / "sequences").is_dir():
        raise SemanticKittiError(f"{root}: not a SemanticKITTI root (no sequences/ directory in it)")
    names = sequence_names(sequences, root)
    if not names:
        raise SemanticKittiError(f"{root / 'sequences'}: no sequences to read")
    return [open_sequence(root, n) for n in names]
