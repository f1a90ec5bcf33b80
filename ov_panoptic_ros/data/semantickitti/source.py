"""A SemanticKITTI root (one or more sequences) as a FrameSource (data/source.py).

Frames are the Velodyne scans of the named sequences, one sequence after another, with the image_2 camera
(calib.py) and, for the labelled sequences, per-point ground truth in the 19 learning classes (labels.py).
The directory is checked when the source is opened (layout.py: SemanticKittiError, nothing yielded); after
that a bad file costs only its frame (the scan, or the labels of a labelled sequence) or its camera (the
image), counted in `problems` under the kinds a replay report shows, so one damaged file in a 4000-scan
sequence does not end an evaluation.

Random access (data/source.py): `source[i]` is the i-th selected scan (position i * every across the
sequences), the frame iteration yields for it; a scan whose points or labels cannot be used raises
FrameUnavailable there.
"""
from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence as Names
from pathlib import Path

from ov_panoptic_ros.bridge.problems import ProblemLog
from ov_panoptic_ros.core.classes import SEMANTICKITTI_NOVEL, semantickitti_classes
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.data.semantickitti.calib import CAMERA
from ov_panoptic_ros.data.semantickitti.files import read_image, read_scan
from ov_panoptic_ros.data.semantickitti.labels import decode_labels, read_label_file
from ov_panoptic_ros.data.semantickitti.layout import Sequence, open_root
from ov_panoptic_ros.data.source import (FrameProblem, FrameUnavailable, GroundTruth, IndexedFrames,
                                         ground_truth_problem)

FRAME_ID = "velodyne"


class SemanticKittiSource(IndexedFrames):
    """Scans of `sequences` (None: every sequence under ROOT/sequences) -> (Frame, GroundTruth | None).

    `every` / `max_frames` select scans by their position in the sequences' scans one after another (`position`,
    also each problem's `frame`). `images` False leaves the camera out (a LiDAR-only run reads no PNG). `novel`
    names the classes the ground truth marks novel (core/classes.py's SEMANTICKITTI_NOVEL by default, the
    split of the semantickitti preset's vocabulary.novel). `classes` is None when no named sequence has labels
    (the test sequences 11-21): frames then come with GroundTruth None. Stamps are times.txt's, so they
    restart at 0 with every sequence.
    """

    NAME = "SemanticKITTI"

    def __init__(self, root: str | Path, sequences: str | int | Iterable[str | int] | None = None, every: int = 1,
                 max_frames: int | None = None, images: bool = True, novel: Names[str] = SEMANTICKITTI_NOVEL):
        if int(every) < 1 or (max_frames is not None and int(max_frames) < 0):
            raise ValueError(f"a SemanticKITTI source needs every >= 1 and max_frames >= 0, got {every}, {max_frames}")
        self.root = Path(root)
        self.sequences: list[Sequence] = open_root(self.root, sequences)
        self._starts = list(itertools.accumulate((len(s.scans) for s in self.sequences), initial=0))
        self.every, self.max_frames, self.images = int(every), max_frames, bool(images)
        labelled = any(s.labelled for s in self.sequences)
        self.classes = semantickitti_classes(tuple(novel)) if labelled else None
        self.problems = ProblemLog()
        self.position = -1

    def _positions(self) -> int:
        return self._starts[-1]

    def image_file(self, index: int) -> Path:
        """The image_2 file of the scan at `index` (a position, as `position` says), for tools that copy it as it is
        (convert: a bag holding the dataset's own PNG decodes to the very pixels this source reads)."""
        seq, k = self._scan(index)
        return seq.file(CAMERA, seq.scans[k], ".png")

    def _scan(self, index: int) -> tuple[Sequence, int]:
        """(sequence, scan number in it) of the scan at position `index`."""
        if not 0 <= index < self._starts[-1]:
            raise IndexError(f"no scan at position {index} of sequences {[s.name for s in self.sequences]}")
        s = bisect.bisect_right(self._starts, index) - 1
        return self.sequences[s], index - self._starts[s]

    def _frame(self, i: int) -> tuple[Frame, GroundTruth | None]:
        """Frame i (the scan at position i * every): the one builder behind iteration and [i]. Sets `position`;
        FrameUnavailable, its problem counted, when the scan or its labels cannot be used."""
        index = i * self.every
        seq, k = self._scan(index)
        scan = seq.scans[k]
        stamp_ns = int(round(float(seq.times_s[k]) * 1e9))
        try:
            points, remission = read_scan(seq.file("velodyne", scan, ".bin"))
            truth = self._truth(seq, scan, points.shape[0]) if seq.labelled else None
        except FrameProblem as p:
            raise FrameUnavailable(i, self._count(p, index, stamp_ns)) from None
        images, cameras = [], []
        if self.images:
            try:
                image = read_image(seq.file(CAMERA, scan, ".png"))
                images.append(image)
                cameras.append(seq.calibration.camera(image.shape[1], image.shape[0]))
            except FrameProblem as p:
                self._count(p, index, stamp_ns, camera=CAMERA)
        frame = Frame(points, images, cameras, intensity=remission, stamp_ns=stamp_ns, frame_id=FRAME_ID)
        self.position = index
        return frame, truth

    def _truth(self, seq: Sequence, scan: str, n_points: int) -> GroundTruth:
        """A labelled sequence's labels of `scan` (the source's `classes` are set: a sequence is labelled)."""
        path = seq.file("labels", scan, ".label")
        try:
            raw = read_label_file(path)
        except FileNotFoundError:
            raise FrameProblem("ground_truth_missing", f"{path}: no labels for this scan") from None
        except OSError as e:
            raise FrameProblem("ground_truth_missing", f"{path}: {e}") from e
        truth = decode_labels(raw, self.classes)
        problem = ground_truth_problem(truth.labels, n_points, self.classes.n_classes)
        if problem is not None:
            raise FrameProblem(problem[0], f"{path}: {problem[1]}")
        return truth
