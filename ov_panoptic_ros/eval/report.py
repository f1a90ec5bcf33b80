"""The replay report: metrics.json, per_class.csv, confusion.csv and the PNG figures (eval/figures.py).

Without ground truth (no scorer) there are no tables: metrics.json and the figures that need no ground truth.

metrics.json is written first and rewritten at the end with the figure list, so a figure that fails
to render never costs the numbers. matplotlib is imported only when figures are drawn: an interrupted
run writes its numbers without waiting seconds for it.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.files import atomic_write

REPORT_SCHEMA = "ov_panoptic/replay_report"
REPORT_VERSION = 1
PER_CLASS_COLUMNS = ("class", "thing_stuff", "base_novel", "PQ", "SQ", "RQ", "IoU", "TP", "FP", "FN")


def write_report(out: str | Path, doc: dict, scorer, samples: list, figures: bool = True) -> dict:
    """Write metrics.json, per_class.csv and (unless `figures` is False: an interrupted run should end fast)
    the figures into `out`; returns the final metrics.json dict. `scorer` None: a run without ground truth."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"schema": REPORT_SCHEMA, "version": REPORT_VERSION, "created_unix": time.time(), **doc}
    doc["figures"], doc["figure_errors"] = [], {}
    _write_json(out / "metrics.json", doc)
    _write_tables(out, scorer, doc.get("metrics"))
    if figures:
        from ov_panoptic_ros.eval.figures import draw_figures

        doc["figures"], doc["figure_errors"] = draw_figures(out, scorer, doc, samples)
        _write_json(out / "metrics.json", doc)
    return doc


def _write_tables(out: Path, scorer, metrics: dict | None) -> None:
    """per_class.csv and confusion.csv; without ground truth, none (and none left from an earlier scored
    run into the same directory, which would read as this run's)."""
    if scorer is None:
        for name in ("per_class.csv", "confusion.csv"):
            (out / name).unlink(missing_ok=True)
        return
    write_per_class_csv(out / "per_class.csv", scorer.classes, metrics)
    write_confusion_csv(out / "confusion.csv", scorer)


def _write_json(path: Path, doc: dict) -> None:
    atomic_write(path, json.dumps(_finite(doc), indent=2).encode())


def _finite(value):
    """JSON has no NaN/inf: they become null."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_per_class_csv(path: Path, classes, metrics: dict | None) -> None:
    """One row per evaluated ground-truth class; metric cells are empty when nothing was scored."""
    per_class = (metrics or {}).get("classes", {})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(PER_CLASS_COLUMNS)
        for i in classes.evaluated:
            name = classes.names[i]
            m = per_class.get(name, {})
            w.writerow([name, "thing" if classes.is_thing[i] else "stuff", "novel" if classes.is_novel[i] else "base",
                        *(_cell(m.get(k)) for k in ("PQ", "SQ", "RQ", "IoU")),
                        *(m.get(k, "") for k in ("TP", "FP", "FN"))])


def write_confusion_csv(path: Path, scorer) -> None:
    """Points of each evaluated ground-truth class (rows) per vocabulary entry they were labeled with (columns,
    last: unlabeled). In open vocabulary *which prompt* a class went to is the first thing to look at."""
    classes = scorer.classes
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", *scorer.vocabulary.classes, "(unlabeled)"])
        for i in classes.evaluated:
            w.writerow([classes.names[i], *(int(n) for n in scorer.confusion[i])])


def _cell(v) -> str:
    return "" if v is None else f"{v:.6f}"
