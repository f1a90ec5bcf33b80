"""Streaming panoptic metrics for LiDAR: PQ, SQ, RQ, PQ-dagger and mIoU, with base/novel splits.

The semantics are those of semantic-kitti-api / nuscenes-devkit ``PanopticEval`` (the nuScenes
panoptic challenge evaluator), re-implemented vectorised so that one frame costs a few array passes
instead of a Python loop over classes and segments. ``test/test_metrics.py`` checks every number
against nuscenes-devkit 1.2.0 to 1e-9.

Conventions (indices are the ground-truth class indices of a :class:`ClassInfo`):

* Points whose *ground truth* is an ignore class are removed before anything is counted.
* A prediction of an ignore class, or :data:`UNLABELED` (65535, "no prediction"), is a wrong
  answer for the point's ground-truth class (an IoU false negative), never a false positive of an
  evaluated class, and its segments are not panoptic false positives.
* A segment is a (class, instance id) pair, so instance ids may be reused across classes. Stuff is
  one segment per class: instance ids of stuff points are ignored.
* A predicted segment matches a ground-truth segment of the same class when IoU > 0.5 (a match is
  then unique). Unmatched segments count as FP / FN only if they have at least ``min_points``
  points (15 for nuScenes, 50 for SemanticKITTI).
* Per class: SQ = sum(IoU of matches) / TP, RQ = TP / (TP + FP/2 + FN/2), PQ = SQ * RQ,
  IoU = tp / (tp + fp + fn) over points. Means run over every non-ignored class of the group, and a
  class absent from both ground truth and prediction scores 0 there, as in the devkit.
* PQ-dagger uses the IoU in place of PQ for stuff classes.

Only per-class counts and a confusion matrix are kept, so memory is constant over frames and two
evaluators of the same set-up can be merged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ov_panoptic_ros.core.classes import (
    GROUPS,
    NUSCENES_NOVEL,
    SEMANTICKITTI_NOVEL,
    ClassInfo,
    nuscenes_classes,
    semantickitti_classes,
)
from ov_panoptic_ros.core.frame import UNLABELED  # predicted semantic label meaning "no prediction"

NUSCENES_MIN_POINTS = 15
SEMANTICKITTI_MIN_POINTS = 50
MAX_INSTANCE_ID = 2**32 - 2  # the devkit adds 1 and packs ids with an offset of 2**32
_EPS = 1e-15  # the devkit's guard against 0/0; kept identical so results agree to the last digit
_KEY_STRIDE = np.int64(2**32)  # segment key = class * stride + instance id


# --------------------------------------------------------------------------------------------------
# Open-vocabulary name -> ground-truth class mapping
# --------------------------------------------------------------------------------------------------
def _synonyms(entry: str) -> list[str]:
    return [s.strip() for s in entry.split(",") if s.strip()]


class LabelMapping:
    """Turns predicted labels (indices into an open vocabulary) into ground-truth class indices.

    ``vocabulary[i]`` is the text of predicted class ``i``; an entry may list synonyms separated by
    commas (``"pedestrian,person"``). For each entry, ``table`` (predicted name -> ground-truth class
    name, case-insensitive) is looked up with the whole entry first, then each synonym in order; a
    table value of ``None`` means "deliberately unmapped". Without a table hit, the entry's first
    synonym is matched to a ground-truth class name exactly (case-insensitive).

    Entries that map nowhere become :data:`UNLABELED`: the points count as "no prediction" (wrong
    for their ground-truth class's IoU, and never a false positive of another class), which is what
    an evaluator must do with a class it cannot score. ``strict=True`` raises instead.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        classes: ClassInfo,
        table: Mapping[str, str | None] | None = None,
        strict: bool = False,
    ) -> None:
        self.vocabulary = tuple(vocabulary)
        self.classes = classes
        table_l = {str(k).strip().lower(): v for k, v in (table or {}).items()}
        lut = np.full(len(self.vocabulary), UNLABELED, dtype=np.int64)
        self.unmapped: list[str] = []
        for i, entry in enumerate(self.vocabulary):
            target = self._resolve(entry, table_l)
            if target is None:
                self.unmapped.append(entry)
            else:
                lut[i] = target
        if strict and self.unmapped:
            raise ValueError(f"LabelMapping: vocabulary entries {self.unmapped} map to no ground-truth class")
        self.lut = lut

    def _resolve(self, entry: str, table: dict[str, str | None]) -> int | None:
        keys = [entry.strip().lower()] + [s.lower() for s in _synonyms(entry)]
        for key in keys:
            if key in table:
                value = table[key]
                if value is None:
                    return None
                try:
                    return self.classes.index(value)
                except KeyError:
                    raise ValueError(
                        f"LabelMapping: table maps {key!r} to {value!r}, which is not a ground-truth class "
                        f"(classes are {list(self.classes.names)})"
                    ) from None
        syn = _synonyms(entry)
        if not syn:
            return None
        try:
            return self.classes.index(syn[0])
        except KeyError:
            return None

    def __call__(self, pred_labels: np.ndarray) -> np.ndarray:
        """Map an array of predicted vocabulary indices; :data:`UNLABELED` passes through."""
        labels = np.asarray(pred_labels)
        if labels.dtype.kind not in "iu":
            raise ValueError(f"LabelMapping: predicted labels must be integers, got dtype {labels.dtype}")
        out = np.full(labels.shape, UNLABELED, dtype=np.int64)
        if labels.size == 0:
            return out
        known = labels != UNLABELED
        vals = labels[known]
        if vals.size and (vals.min() < 0 or vals.max() >= len(self.vocabulary)):
            bad = vals[(vals < 0) | (vals >= len(self.vocabulary))]
            raise ValueError(
                f"LabelMapping: predicted labels {np.unique(bad)[:10].tolist()} are outside the vocabulary "
                f"0..{len(self.vocabulary) - 1} (and are not UNLABELED={UNLABELED})"
            )
        out[known] = self.lut[vals]
        return out


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class PanopticScores:
    """Per-class arrays (indexed by ground-truth class; ignored classes are NaN) and group means."""

    classes: ClassInfo
    pq: np.ndarray
    sq: np.ndarray
    rq: np.ndarray
    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    n_frames: int = 0
    n_points: int = 0

    @property
    def PQ(self) -> float:  # noqa: N802 - the metric's name
        return self.groups["all"]["PQ"]

    @property
    def mIoU(self) -> float:  # noqa: N802
        return self.groups["all"]["mIoU"]

    def to_dict(self) -> dict:
        """JSON-able: per-class entries by name, one entry per group; NaN (empty group) becomes None."""
        per_class = {
            self.classes.names[i]: {
                "PQ": _num(self.pq[i]), "SQ": _num(self.sq[i]), "RQ": _num(self.rq[i]), "IoU": _num(self.iou[i]),
                "TP": int(self.tp[i]), "FP": int(self.fp[i]), "FN": int(self.fn[i]),
                "thing": self.classes.is_thing[i], "novel": self.classes.is_novel[i],
            }
            for i in self.classes.evaluated
        }
        out = {g: {k: _num(v) for k, v in vals.items()} for g, vals in self.groups.items()}
        out["classes"] = per_class
        out["n_frames"] = self.n_frames
        out["n_points"] = self.n_points
        return out


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


# --------------------------------------------------------------------------------------------------
# The evaluator
# --------------------------------------------------------------------------------------------------
def _as_labels(name: str, arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.dtype.kind not in "iu":
        raise ValueError(f"PanopticEval.add: {name} must be an integer array, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"PanopticEval.add: {name} holds values beyond int64")
    return a.astype(np.int64, copy=False)


class PanopticEval:
    """Accumulates panoptic counts frame by frame; see the module docstring for the exact rules.

    ``add(pred_sem, pred_inst, gt_sem, gt_inst)`` per frame (integer arrays of equal size, flattened;
    semantic labels are ground-truth class indices, predictions may also be :data:`UNLABELED`;
    instance ids are integers in 0..2**32-2), ``compute()`` for the metrics, ``merge(other)`` to
    combine evaluators of the same set-up, ``reset()`` to start over.
    """

    def __init__(self, classes: ClassInfo, min_points: int = NUSCENES_MIN_POINTS, keep_frame_iou: bool = False) -> None:
        """`keep_frame_iou`: also keep each frame's matched-IoU sums (`frame_iou`, one row per `add`), so that
        evaluators of parts of a run can be merged to the bit (eval/shard_state.py): the IoU sum is the one
        float accumulator, and float addition depends on the order."""
        if int(min_points) != min_points or min_points < 0:
            raise ValueError(f"min_points must be a non-negative integer, got {min_points!r}")
        self.classes = classes
        self.min_points = int(min_points)
        self.keep_frame_iou = keep_frame_iou
        n = classes.n_classes
        self._n = n
        # Lookup tables. Index n stands for "no prediction" (UNLABELED) on the prediction side.
        scored = np.zeros(n + 1, dtype=bool)
        scored[list(classes.evaluated)] = True
        self._scored = scored
        thing = np.zeros(n + 1, dtype=bool)
        thing[:n] = classes.is_thing
        self._thing = thing
        # Instance ids survive only on scored thing classes: stuff, ignored and junk are one segment each.
        self._keep_inst = (thing & scored).astype(np.int64)
        # code = pred * n + gt  ->  the prediction's class for panoptic counting: itself when it is a
        # scored class and the ground truth is not ignored, else the junk class n (never scored).
        pred_of = np.repeat(np.arange(n + 1), n)
        gt_of = np.tile(np.arange(n), n + 1)
        self._pan_pred = np.where(scored[pred_of] & scored[gt_of], pred_of, n).astype(np.int64)
        self.reset()

    @classmethod
    def nuscenes(cls, novel: Sequence[str] = NUSCENES_NOVEL) -> "PanopticEval":
        """nuScenes panoptic challenge set-up: devkit class indices, min_points = 15."""
        return cls(nuscenes_classes(novel), min_points=NUSCENES_MIN_POINTS)

    @classmethod
    def semantickitti(cls, novel: Sequence[str] = SEMANTICKITTI_NOVEL) -> "PanopticEval":
        """SemanticKITTI CLI set-up: 19 classes + unlabeled, min_points = 50."""
        return cls(semantickitti_classes(novel), min_points=SEMANTICKITTI_MIN_POINTS)

    def reset(self) -> None:
        n = self._n
        self.confusion = np.zeros((n + 1, n), dtype=np.int64)  # rows: prediction (+ none), cols: gt
        self.pan_tp = np.zeros(n, dtype=np.int64)
        self.pan_fp = np.zeros(n, dtype=np.int64)
        self.pan_fn = np.zeros(n, dtype=np.int64)
        self.pan_iou = np.zeros(n, dtype=np.float64)
        self.n_frames = 0
        self.n_points = 0
        self.frame_iou: list[np.ndarray] | None = [] if self.keep_frame_iou else None

    # ---------------------------------------------------------------- input checks
    def _check(self, pred_sem, pred_inst, gt_sem, gt_inst) -> tuple[np.ndarray, ...]:
        arrays = {
            "pred_labels": _as_labels("pred_labels", pred_sem),
            "pred_instances": _as_labels("pred_instances", pred_inst),
            "gt_labels": _as_labels("gt_labels", gt_sem),
            "gt_instances": _as_labels("gt_instances", gt_inst),
        }
        lengths = {k: v.size for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"PanopticEval.add: arrays differ in length: {lengths}")
        ps, pi, gs, gi = arrays.values()
        if ps.size == 0:
            return ps, pi, gs, gi
        n = self._n
        if gs.min() < 0 or gs.max() >= n:
            bad = np.unique(gs[(gs < 0) | (gs >= n)])[:10].tolist()
            raise ValueError(f"PanopticEval.add: gt_labels {bad} are outside the class range 0..{n - 1}")
        pmin, pmax = ps.min(), ps.max()
        if pmin < 0 or pmax >= n:
            bad_mask = ((ps < 0) | (ps >= n)) & (ps != UNLABELED)
            if bad_mask.any():
                bad = np.unique(ps[bad_mask])[:10].tolist()
                raise ValueError(
                    f"PanopticEval.add: pred_labels {bad} are outside the class range 0..{n - 1} "
                    f"(and are not UNLABELED={UNLABELED}); map vocabulary labels with LabelMapping first"
                )
        for name, inst in (("pred_instances", pi), ("gt_instances", gi)):
            if inst.min() < 0 or inst.max() > MAX_INSTANCE_ID:
                raise ValueError(
                    f"PanopticEval.add: {name} must lie in 0..{MAX_INSTANCE_ID}, "
                    f"got min {int(inst.min())} max {int(inst.max())}"
                )
        return ps, pi, gs, gi

    # ---------------------------------------------------------------- accumulation
    def add(self, pred_labels, pred_instances, gt_labels, gt_instances) -> None:
        """Accumulate one frame (segments are formed within the call, so one call = one scan)."""
        ps, pi, gs, gi = self._check(pred_labels, pred_instances, gt_labels, gt_instances)
        self.n_frames += 1
        if gs.size == 0:
            if self.frame_iou is not None:
                self.frame_iou.append(np.zeros(self._n))
            return
        n = self._n
        if ps.max() >= n:
            ps = np.minimum(ps, n)  # UNLABELED -> row n, "no prediction"
        # Ignored ground truth is not removed (a boolean compress of four arrays costs more than the
        # rest of the frame): its confusion columns are never read, and for the panoptic part it
        # becomes junk through the lookup tables.
        code = ps * n + gs
        counts = np.bincount(code, minlength=(n + 1) * n)
        self.confusion += counts.reshape(n + 1, n)
        self.n_points += int(counts.reshape(n + 1, n)[:, self._scored[:n]].sum())
        self._add_panoptic(self._pan_pred[code], pi, gs, gi)

    def _add_panoptic(self, pc: np.ndarray, pi: np.ndarray, gs: np.ndarray, gi: np.ndarray) -> None:
        """pc: prediction class per point, already n (junk) where unscored or where the gt is ignored."""
        n = self._n
        limit = max(8 * gs.size, 1 << 16)  # largest bincount range worth using instead of a sort
        g_idx, g_area, g_cls = self._segments(gs, gi, limit)
        p_idx, p_area, p_cls = self._segments(pc, pi, limit)

        # Intersections of same-class pairs, as one bincount over (pred segment, gt segment) when the
        # pair range is small, np.unique otherwise. Junk never equals a gt class, so pc == gs suffices.
        n_g, n_p = g_area.size, p_area.size
        same = pc == gs
        if n_p * n_g < limit:
            pair = np.where(same, p_idx * n_g + g_idx, n_p * n_g)
            inter = np.bincount(pair, minlength=n_p * n_g + 1)[:-1]
            pair = np.flatnonzero(inter)
            inter = inter[pair]
        else:
            pair, inter = np.unique(p_idx[same] * n_g + g_idx[same], return_counts=True)
        pair_p, pair_g = np.divmod(pair, n_g)
        iou = inter / (p_area[pair_p] + g_area[pair_g] - inter)
        hit = iou > 0.5  # at most one hit per segment: two IoUs > 0.5 would need > 100% of it
        hit_cls = g_cls[pair_g[hit]]
        self.pan_tp += np.bincount(hit_cls, minlength=n + 1)[:n]
        frame_iou = np.bincount(hit_cls, weights=iou[hit], minlength=n + 1)[:n]
        self.pan_iou += frame_iou
        if self.frame_iou is not None:
            self.frame_iou.append(frame_iou)

        unmatched_g = g_area >= self.min_points
        unmatched_g[pair_g[hit]] = False
        unmatched_p = p_area >= self.min_points
        unmatched_p[pair_p[hit]] = False
        unmatched_g &= self._scored[g_cls]  # segments of ignored gt classes count nowhere
        self.pan_fn += np.bincount(g_cls[unmatched_g], minlength=n + 1)[:n]
        self.pan_fp += np.bincount(p_cls[unmatched_p], minlength=n + 1)[:n]  # junk is class n, cut off

    def _segments(self, cls: np.ndarray, inst: np.ndarray, limit: int):
        """One side's segments: (segment index per point, segment sizes, segment classes).

        Segments are numbered in (class, instance) order through a dense key class * width + id
        when that range is small (a bincount, no sort), else through np.unique on class * 2**32 + id.
        """
        inst = inst * self._keep_inst[cls]
        width = int(inst.max()) + 1
        if (self._n + 1) * width < limit:
            key = cls * width + inst
            counts = np.bincount(key, minlength=(self._n + 1) * width)
            present = np.flatnonzero(counts)
            number = np.zeros(counts.size, dtype=np.int64)
            number[present] = np.arange(present.size)
            return number[key], counts[present], present // width
        keys, idx, area = np.unique(cls * _KEY_STRIDE + inst, return_inverse=True, return_counts=True)
        return idx.reshape(-1), area, keys // _KEY_STRIDE

    def merge(self, other: "PanopticEval") -> "PanopticEval":
        """Add another evaluator's counts into this one (same classes and min_points); returns self."""
        if not isinstance(other, PanopticEval):
            raise TypeError(f"can only merge a PanopticEval, got {type(other).__name__}")
        if other.classes != self.classes or other.min_points != self.min_points:
            raise ValueError("PanopticEval.merge: the evaluators differ in classes or min_points")
        if self.frame_iou is not None and other.frame_iou is None and other.n_frames:
            raise ValueError("PanopticEval.merge: this evaluator keeps frame_iou (one row per frame) and the other,"
                             f" with {other.n_frames} frames, does not")
        self.confusion += other.confusion
        self.pan_tp += other.pan_tp
        self.pan_fp += other.pan_fp
        self.pan_fn += other.pan_fn
        self.pan_iou += other.pan_iou
        self.n_frames += other.n_frames
        self.n_points += other.n_points
        if self.frame_iou is not None:
            self.frame_iou.extend(other.frame_iou or [])
        return self

    # ---------------------------------------------------------------- metrics
    def compute(self) -> PanopticScores:
        """Per-class PQ/SQ/RQ/IoU and the group means (see :data:`GROUPS`)."""
        n = self._n
        tp = self.pan_tp.astype(np.float64)
        sq = self.pan_iou / np.maximum(tp, _EPS)
        rq = tp / np.maximum(tp + 0.5 * self.pan_fp + 0.5 * self.pan_fn, _EPS)
        pq = sq * rq

        conf = self.confusion.copy()
        conf[:, list(self.classes.ignore)] = 0  # ignored ground truth (kept by add) counts nowhere
        sem_tp = np.diagonal(conf[:n]).astype(np.float64)
        sem_fp = conf[:n].sum(axis=1) - sem_tp
        sem_fn = conf.sum(axis=0) - sem_tp
        iou = sem_tp / np.maximum(sem_tp + sem_fp + sem_fn, _EPS)

        ignored = list(self.classes.ignore)
        for arr in (pq, sq, rq, iou):
            arr[ignored] = np.nan
        dagger = np.where(self._thing[:n], pq, iou)

        groups = {}
        for g in GROUPS:
            idx = list(self.classes.group(g))
            groups[g] = {
                "PQ": _mean(pq, idx), "SQ": _mean(sq, idx), "RQ": _mean(rq, idx),
                "mIoU": _mean(iou, idx), "PQ_dagger": _mean(dagger, idx),
            }
        return PanopticScores(
            classes=self.classes, pq=pq, sq=sq, rq=rq, iou=iou,
            tp=self.pan_tp.copy(), fp=self.pan_fp.copy(), fn=self.pan_fn.copy(),
            groups=groups, n_frames=self.n_frames, n_points=self.n_points,
        )


def _mean(values: np.ndarray, idx: list[int]) -> float:
    return float(values[idx].mean()) if idx else float("nan")
