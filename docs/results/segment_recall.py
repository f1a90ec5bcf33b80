"""Class-agnostic segment recall per ground-truth class, for docs/results.md: a ground-truth segment (a thing
instance with 15+ points, or all points of a stuff class in a frame) counts as found when some predicted segment
(thing instance, or all points of one predicted stuff label) overlaps it with IoU > 0.5, *whatever its label*.
PQ_novel = (segments found) x (named right) x (their IoU): this separates the first factor from the second.
    OMP_NUM_THREADS=1 .venv/bin/python docs/results/segment_recall.py [--config C] [--checkpoint P]
"""
import argparse
import json
from collections import Counter

import numpy as np

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.data.factory import open_source

MIN_POINTS = 15


def segments(labels: np.ndarray, instances: np.ndarray, is_thing) -> dict:
    """{(label, instance or 0): point mask} for thing instances and whole stuff classes."""
    out = {}
    for key in set(zip(labels.tolist(), instances.tolist())):
        label, inst = key
        if label == 0xFFFF or (is_thing(label) and inst == 0):
            continue
        key = (label, inst if is_thing(label) else 0)
        mask = (labels == label) & ((instances == inst) if is_thing(label) else True)
        out[key] = out[key] | mask if key in out else mask
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="synthetic")
    ap.add_argument("--checkpoint")
    args = ap.parse_args()
    cfg = load_config(args.config, {"device": "cpu", **({"checkpoint": args.checkpoint} if args.checkpoint else {})})
    pipeline = PanopticPipeline(cfg)
    source = open_source("world:5000:5005", frames=10, every=20)
    classes = source.classes
    stuff = set(pipeline.vocabulary.stuff)
    found, total = Counter(), Counter()
    for frame, truth in source:
        result = pipeline(frame)
        vocab = result.vocabulary.classes
        predicted = segments(result.labels, result.instance_ids, lambda k: vocab[k] not in stuff)
        gt = segments(truth.labels, truth.instance_ids, lambda k: bool(classes.is_thing[k]))
        for (label, _), mask in gt.items():
            if mask.sum() < MIN_POINTS:
                continue
            name = classes.names[label]
            total[name] += 1
            best = max(((mask & p).sum() / (mask | p).sum() for p in predicted.values()), default=0.0)
            found[name] += best > 0.5
    print(json.dumps({n: f"{found[n]}/{total[n]} = {found[n] / total[n]:.2f}" for n in classes.names if total[n]},
                     indent=1))


if __name__ == "__main__":
    main()
