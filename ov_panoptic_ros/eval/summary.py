"""The parts of metrics.json that offline and live replay share, built in one place so both keep one shape."""
from __future__ import annotations

from ov_panoptic_ros.bridge.stamps import NS
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.data.bag.reader import BagReader


def scored_run_summary(bag: dict | None, stats, scorer, output_bag) -> dict:
    """The report keys offline and live replay share, built in one place so both reports keep one shape.

    `bag`: bag_summary of the one bag replayed (None for a run over several inputs: the report lists them).
    `scorer` None (no ground truth): `"ground_truth": false` and no class, mapping or metrics keys at all,
    so nothing in the report can be read as a score."""
    return {
        "partial": bool(stats.partial_reasons),
        "partial_reasons": stats.partial_reasons,
        "bag": bag,
        "ground_truth": scorer is not None,
        **(scoring_summary(scorer) if scorer is not None else {}),
        "points": stats.points_dict(),
        "output_bag": str(output_bag) if output_bag else None,
    }


def scoring_summary(scorer) -> dict:
    """What only a run against ground truth reports: its classes, the label mapping and the metrics."""
    return {"gt_classes": class_summary(scorer.classes), "mapping": scorer.mapping_report(),
            "metrics": scorer.metrics()}


def bag_summary(reader: BagReader) -> dict:
    return {
        "path": str(reader.path), "storage": reader.storage, "size_bytes": reader.size_bytes,
        "duration_s": max(0, reader.end_ns - reader.start_ns) / NS if reader.message_counts else 0.0,
        "message_counts": reader.message_counts,
    }


def vocabulary_summary(vocabulary: Vocabulary) -> dict:
    return {"classes": list(vocabulary.classes), "names": vocabulary.names,
            "stuff": [n for n, s in zip(vocabulary.names, vocabulary.is_stuff) if s], "version": vocabulary.version}


def class_summary(classes: ClassInfo) -> list[dict]:
    ignored = set(classes.ignore)
    return [{"name": n, "thing": t, "novel": nv, "ignore": i in ignored}
            for i, (n, t, nv) in enumerate(zip(classes.names, classes.is_thing, classes.is_novel))]
