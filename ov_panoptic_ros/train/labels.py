"""A source's ground truth in the config's vocabulary, and one frame turned into the network's training inputs.

Ground-truth classes are matched to `vocabulary.classes` by name through the evaluation's own table
(synonyms, spaces for underscores, common names such as road -> driveable_surface), so training and
validation agree on what each class is. The base/novel split is the config's (`vocabulary.novel`); the
validation report's groups follow it too, whatever the source's own flags say.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.config import ConfigError
from ov_panoptic_ros.core.frame import UNLABELED, Frame
from ov_panoptic_ros.core.model.targets import ClassSplit, PanopticTargets
from ov_panoptic_ros.core.vision.features import PointFeatures
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.data.source import GroundTruth
from ov_panoptic_ros.eval.metrics import LabelMapping
from ov_panoptic_ros.eval.scoring import mapping_table
from ov_panoptic_ros.train.config import SourceConfig


def vocabulary_lut(classes: ClassInfo, split: ClassSplit, where: str) -> np.ndarray:
    """(C_gt,) int64: each ground-truth class's index in the split's dataset vocabulary (UNLABELED for ignored
    classes). ConfigError naming the classes when one maps onto no entry, two onto one entry's class, or a
    thing onto a stuff entry (or the reverse)."""
    vocabulary = split.dataset
    entry_to_gt = LabelMapping(vocabulary.classes, classes, mapping_table(classes)).lut
    lut = np.full(classes.n_classes, UNLABELED, dtype=np.int64)
    for entry, gt in enumerate(entry_to_gt):
        if gt == UNLABELED:
            continue
        if lut[gt] != UNLABELED:
            raise ConfigError(f"{where}: vocabulary entries {vocabulary.classes[lut[gt]]!r} and "
                              f"{vocabulary.classes[entry]!r} both name the ground-truth class {classes.names[gt]!r}")
        lut[gt] = entry
    unmapped = [classes.names[i] for i in classes.evaluated if lut[i] == UNLABELED]
    if unmapped:
        raise ConfigError(f"{where}: ground-truth class(es) {unmapped} map onto no class of vocabulary.classes "
                          f"{vocabulary.names}; add them (or a synonym of them, 'road,driveable surface')")
    kind = [classes.names[i] for i in classes.evaluated if classes.is_thing[i] == bool(vocabulary.is_stuff[lut[i]])]
    if kind:
        raise ConfigError(f"{where}: ground-truth class(es) {kind} are things where vocabulary.stuff says stuff, or"
                          " the reverse; fix vocabulary.stuff")
    for i in classes.ignore:
        lut[i] = UNLABELED
    return lut


def split_classes(classes: ClassInfo, lut: np.ndarray, split: ClassSplit) -> ClassInfo:
    """The ground-truth classes with base/novel as the config's split says (for the validation groups)."""
    novel = ~split.base_mask.numpy()
    return dataclasses.replace(classes, is_novel=tuple(bool(lut[i] != UNLABELED and novel[lut[i]])
                                                       for i in range(classes.n_classes)))


@dataclass
class Example:
    """One frame's network inputs and targets, on the training device."""

    points: torch.Tensor  # (N, 3) float32
    features: PointFeatures  # frozen CLIP features of the seen points
    intensity: torch.Tensor | None  # (N,) float32
    targets: PanopticTargets  # training vocabulary; novel and unlabelled points IGNORE


class ExampleMaker:
    """Frame + ground truth -> Example, through the pipeline's own front half (`point_features`), or with the
    CLIP point features read from a feature cache (train/feature_cache.py) when one is given."""

    def __init__(self, pipeline, split: ClassSplit, lut: np.ndarray, cache=None):
        self.pipeline, self.split, self.cache = pipeline, split, cache
        self.lut = np.append(lut, UNLABELED)  # UNLABELED ground truth indexes the extra slot

    def __call__(self, frame: Frame, truth: GroundTruth, index: int | None = None) -> Example:
        """`index`: the frame's index in the source, which the feature cache is keyed by."""
        n = len(self.lut) - 1
        gt = truth.labels.astype(np.int64)
        gt[gt == UNLABELED] = n
        if gt.max(initial=0) > n:
            raise ValueError(f"ground truth label(s) {np.unique(gt[gt > n])[:10].tolist()} outside the source's"
                             f" {n} classes")
        if self.cache is None:
            points, features = self.pipeline.point_features(frame)
        else:
            points = torch.from_numpy(frame.points).to(self.pipeline.device)
            features = self.cache.point_features(index, frame, self.pipeline.device)
        labels = torch.from_numpy(self.lut[gt]).to(points.device)
        instance_ids = torch.from_numpy(truth.instance_ids.astype(np.int64)).to(points.device)
        intensity = None if frame.intensity is None else torch.from_numpy(frame.intensity).to(points.device)
        return Example(points, features, intensity, self.split.targets(labels, instance_ids))


def source_labels(src: SourceConfig, split: ClassSplit, where: str) -> tuple[ClassInfo, np.ndarray]:
    """The ground-truth classes of the source `src` names and their map onto the split's vocabulary
    (vocabulary_lut); ConfigError naming `where` when its options do not fit it or it has no ground truth.
    The source is opened only to read its classes: its frames are read elsewhere (reader.py)."""
    try:
        source = open_source(src.spec, **src.options)
    except TypeError as e:  # an option the source does not take
        raise ConfigError(f"{where}.options {src.options} do not fit the source {src.spec!r}: {e}") from e
    classes = source.classes
    close = getattr(source, "close", None)  # a bag holds its file open
    if close is not None:
        close()
    if classes is None:
        raise ConfigError(f"{where}.spec {src.spec!r} has no ground truth to train or validate with")
    return classes, vocabulary_lut(classes, split, f"{where}.spec {src.spec!r}")
