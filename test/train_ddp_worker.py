"""Run under torchrun by test_train_ddp.py (and in-process for the reference): the gradients of one training
step on this process's share of the frames, through the trainer's own parts, saved by rank 0."""
import sys

import torch

from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.train.config import load_train_config
from ov_panoptic_ros.train.data import FrameOrder
from ov_panoptic_ros.train.distributed import Distributed
from ov_panoptic_ros.train.labels import ExampleMaker, source_labels
from ov_panoptic_ros.train.trainer import Trainer


def step_gradients(config_path: str, out_path: str, overrides: dict | None = None) -> None:
    pipeline_config, cfg = load_train_config(config_path, overrides)
    dist = Distributed(torch.device("cpu"))
    try:
        split = ClassSplit.from_config(pipeline_config.vocabulary)
        trainer = Trainer(pipeline_config, cfg, dist, split)
        _, lut = source_labels(cfg.data, split, "train.data")
        maker = ExampleMaker(trainer.pipeline, split, lut)
        frames = FrameOrder(open_source(cfg.data.spec, **cfg.data.options), cfg.seed, dist.rank, dist.world).frames(0)
        examples = []
        for _ in range(cfg.batch_frames):
            position, frame, truth = next(frames)
            examples.append(maker(frame, truth))
        terms = trainer.accumulate(examples)
        if dist.main:
            torch.save({"terms": terms, "grads": {n: p.grad for n, p in trainer.network.named_parameters()}},
                       out_path)
    finally:
        dist.close()


if __name__ == "__main__":
    step_gradients(sys.argv[1], sys.argv[2])
