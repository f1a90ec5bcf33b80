"""Validation: the network in eval mode inside the pipeline (the predict path of inference), scored over the
held-out source with the full dataset vocabulary (base + novel), the report in OUT/val/step_XXXXXX/.

The source is opened anew for each pass, so any FrameSource works, also one that reads only once (a bag).
Its base/novel groups are the config's split (labels.split_classes).
"""
from __future__ import annotations

from pathlib import Path

from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.eval.evaluate import evaluate
from ov_panoptic_ros.train.config import SourceConfig
from ov_panoptic_ros.train.labels import source_labels, split_classes

SCALARS = {"val/PQ": ("PQ", None), "val/PQ_base": ("PQ", "base"), "val/PQ_novel": ("PQ", "novel"),
           "val/mIoU": ("mIoU", None), "val/mIoU_base": ("mIoU", "base"), "val/mIoU_novel": ("mIoU", "novel")}


class Validator:
    def __init__(self, src: SourceConfig, split: ClassSplit, figures: bool):
        self.src, self.figures = src, figures
        classes, lut = source_labels(src, split, "train.val")  # a class that does not map fails here, at start
        self.classes = split_classes(classes, lut, split)

    def __call__(self, pipeline, out: Path, step: int) -> dict[str, float | None]:
        """Write the report of `step` and return its scalars (None where a group has no class)."""
        source = open_source(self.src.spec, **self.src.options)
        try:
            doc = evaluate(source, pipeline, out / "val" / f"step_{step:06d}", classes=self.classes,
                           figures=self.figures, figure_frames=2, progress=False, desc="validate",
                           extra={"source": self.src.spec, "step": step})
        finally:
            close = getattr(source, "close", None)  # a bag holds its file open
            if close is not None:
                close()
        metrics = doc["metrics"] or {}
        return {tag: (metrics if group is None else metrics.get("groups", {}).get(group, {})).get(key)
                for tag, (key, group) in SCALARS.items()}
