"""The shipped teacher's held-out 2D quality for docs/results.md: world seeds 1000-1001 (never trained on),
4 frames each, both demo cameras, every 4th pixel, scored with the synthetic preset's vocabulary and templates.
    OMP_NUM_THREADS=1 .venv/bin/python docs/results/teacher_eval.py"""
import json

import torch

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.vision.backend import build_encoders
from ov_panoptic_ros.core.vision.text import TextEncoder
from ov_panoptic_ros.train.teacher_eval import evaluate_dense
from ov_panoptic_ros.train.teacher_world import world_views

cfg = load_config("synthetic", {"device": "cpu"})
encoder, tower = build_encoders(cfg.clip, torch.device("cpu"))
views = world_views([1000, 1001], 4, 2, (480, 320), cfg.vocabulary.classes, log=lambda _: None)
result = evaluate_dense(encoder, TextEncoder(tower), views, cfg.vocabulary.templates, step=4)
print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items() if k != "iou"}))
print(json.dumps({k: (None if v is None else round(v, 3)) for k, v in result["iou"].items()}))
