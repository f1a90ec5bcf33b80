"""Scoring predictions in vocabulary label space against ground-truth classes.

Predicted vocabulary labels are mapped to ground-truth classes by LabelMapping (a table of common names
plus the user's `--mapping` file) and scored by the streaming PanopticEval. Model-free, so the scoring
path is testable on its own and the same for offline and live replay.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.metrics import NUSCENES_MIN_POINTS, LabelMapping, PanopticEval

# Common open-vocabulary names for the ground-truth classes of nuScenes, SemanticKITTI and the synthetic
# world. Entries whose target is not a class of the bag are dropped; a --mapping file adds or overrides.
DEFAULT_MAPPING = {
    "road": "driveable_surface", "driveable surface": "driveable_surface", "drivable surface": "driveable_surface",
    "street": "driveable_surface", "building": "manmade", "manmade structure": "manmade",
    "man-made structure": "manmade", "wall": "manmade", "tree": "vegetation", "bush": "vegetation",
    "person": "pedestrian", "construction vehicle": "construction_vehicle", "traffic cone": "traffic_cone",
    "grass": "terrain", "pavement": "sidewalk", "other flat": "other_flat",
}


def load_mapping_file(path: str | Path) -> dict[str, str | None]:
    """A YAML mapping `predicted name: ground-truth class` (or null), flat or under a `mapping:` key."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ReplayError(f"mapping file {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ReplayError(f"mapping file {path} is not valid YAML: {e}") from e
    if isinstance(data, dict) and set(data) == {"mapping"}:
        data = data["mapping"]
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ReplayError(f"mapping file {path}: expected a mapping of predicted name -> ground-truth class")
    bad = {k: v for k, v in data.items() if v is not None and not isinstance(v, str)}
    if bad:
        raise ReplayError(f"mapping file {path}: values must be class names or null, got {bad}")
    return dict(data)


def mapping_table(classes: ClassInfo, user: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Defaults that fit these classes, each GT name with spaces for underscores, then the user's table."""
    names = {n.lower(): n for n in classes.names}
    table = {k: names[v.lower()] for k, v in DEFAULT_MAPPING.items() if v.lower() in names}
    table.update({n.replace("_", " "): n for n in classes.names if "_" in n})
    table.update(user or {})
    return table


class Scorer:
    """PanopticEval over ground-truth classes, fed with predictions in vocabulary label space.

    Also keeps a GT x vocabulary confusion matrix (last column: unlabeled) for the report: in open
    vocabulary, *which prompt* the points of a class went to is what one wants to see.
    """

    def __init__(self, classes: ClassInfo, vocabulary: Vocabulary, table: dict[str, str | None] | None = None,
                 min_points: int = NUSCENES_MIN_POINTS, default_mapping: bool = True, keep_frame_iou: bool = False):
        """`table` maps predicted names to GT classes; with `default_mapping` it extends DEFAULT_MAPPING.
        `keep_frame_iou`: PanopticEval's, for a run merged from shards (eval/shard_state.py)."""
        self.classes = classes
        self.vocabulary = vocabulary
        try:
            table = mapping_table(classes, table) if default_mapping else table
            self.mapping = LabelMapping(vocabulary.classes, classes, table)
        except ValueError as e:
            raise ReplayError(str(e)) from e
        self.eval = PanopticEval(classes, min_points=min_points, keep_frame_iou=keep_frame_iou)
        self.confusion = np.zeros((classes.n_classes, len(vocabulary.classes) + 1), dtype=np.int64)

    def add(self, pred_labels: np.ndarray, pred_instances: np.ndarray, gt_labels: np.ndarray,
            gt_instances: np.ndarray) -> None:
        mapped = self.mapping(pred_labels)
        self.eval.add(mapped, pred_instances, gt_labels, gt_instances)
        col = np.where(pred_labels == UNLABELED, len(self.vocabulary.classes), pred_labels).astype(np.int64)
        n_cols = self.confusion.shape[1]
        self.confusion += np.bincount(gt_labels.astype(np.int64) * n_cols + col,
                                      minlength=self.confusion.size).reshape(self.confusion.shape)

    def mapping_report(self) -> dict:
        lut = self.mapping.lut
        names = self.classes.names
        mapped = {entry: (names[t] if t != UNLABELED else None) for entry, t in zip(self.vocabulary.classes, lut)}
        reachable = {int(t) for t in lut if t != UNLABELED}
        return {
            "table": mapped,
            "unmapped_vocabulary": list(self.mapping.unmapped),
            "gt_classes_never_predicted": [names[i] for i in self.classes.evaluated if i not in reachable],
        }

    def metrics(self) -> dict | None:
        """Every metric number (None when no frame was scored: zeros would be a lie)."""
        if self.eval.n_frames == 0:
            return None
        d = self.eval.compute().to_dict()
        overall = d.pop("all")
        classes = d.pop("classes")
        n_frames, n_points = d.pop("n_frames"), d.pop("n_points")
        return {**overall, "groups": d, "classes": classes, "n_frames": n_frames, "n_points": n_points,
                "absent_classes": self.absent_classes()}

    def absent_classes(self) -> list[str]:
        """Evaluated classes with no ground-truth point and no prediction: they score 0 in every mean."""
        conf = self.eval.confusion  # rows: predicted class (+ none), columns: ground truth
        n = self.classes.n_classes
        return [self.classes.names[i] for i in self.classes.evaluated
                if conf[:, i].sum() == 0 and conf[i].sum() == 0 and i < n]


def user_table(mapping) -> dict | None:
    """A mapping given as a dict, a YAML file path, or None."""
    if mapping is None or isinstance(mapping, dict):
        return mapping
    return load_mapping_file(mapping)
