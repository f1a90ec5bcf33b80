"""The pipeline's learned path: a saved checkpoint is picked up from the config and refused against another CLIP."""
import dataclasses

import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.core.model.checkpoint import CheckpointError, save_checkpoint
from ov_panoptic_ros.core.model.network import build_network
from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.data.synthetic import make_scene


@pytest.fixture(scope="module")
def zeroshot():
    return PanopticPipeline(load_config("tiny", overrides={"device": "cpu"}))


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=5, num_points=4000, image_size=(96, 64))


def _checkpoint(tmp_path, config, clip_model_id, clip_dim):
    torch.manual_seed(0)
    network = build_network(config, clip_dim)
    return save_checkpoint(tmp_path / f"{config.model}.pt", network, config, clip_model_id)


def test_configured_checkpoint_runs_the_network(tmp_path, zeroshot, scene):
    path = _checkpoint(tmp_path, zeroshot.config, zeroshot.encoder.model_id, zeroshot.encoder.embed_dim)
    pipe = PanopticPipeline(dataclasses.replace(zeroshot.config, checkpoint=str(path)))
    assert pipe.mode == "ov" and zeroshot.mode == "zeroshot"
    result = pipe(scene.frame)
    n = scene.frame.num_points
    assert result.labels.shape == (n,) and result.labels.dtype == np.uint16
    labeled = result.labels != UNLABELED
    assert (result.labels[labeled] < len(pipe.vocabulary.classes)).all()
    assert {"voxelize", "backbone", "head", "merge"} <= set(result.timings_ms)
    assert "cluster" not in result.timings_ms  # the zero-shot stages did not run
    pipe.set_vocabulary(Vocabulary(("car", "tree", "road"), ("road",)))
    swapped = pipe(scene.frame)
    assert swapped.vocabulary.names == ["car", "tree", "road"]
    assert (swapped.labels[swapped.labels != UNLABELED] < 3).all()
    without_intensity = dataclasses.replace(scene.frame, intensity=None)
    assert pipe(without_intensity).labels.shape == (n,)


def test_configured_pfc_checkpoint_runs_the_baseline(tmp_path, zeroshot, scene):
    config = dataclasses.replace(zeroshot.config, model="pfc",
                                 loss=dataclasses.replace(zeroshot.config.loss, object_distill_weight=0.0,
                                                          voxel_distill_weight=0.0))
    path = _checkpoint(tmp_path, config, zeroshot.encoder.model_id, zeroshot.encoder.embed_dim)
    pipe = PanopticPipeline(dataclasses.replace(config, checkpoint=str(path)))
    assert pipe.mode == "pfc"
    result = pipe(scene.frame)
    assert result.labels.shape == (scene.frame.num_points,) and {"head", "merge"} <= set(result.timings_ms)
    with pytest.raises(CheckpointError, match="holds model 'pfc'"):
        PanopticPipeline(dataclasses.replace(zeroshot.config, checkpoint=str(path)))


def test_checkpoint_for_another_clip_is_refused(tmp_path, zeroshot):
    path = _checkpoint(tmp_path, zeroshot.config, "ViT-B-16@0123456789abcdef", zeroshot.encoder.embed_dim)
    with pytest.raises(CheckpointError, match="trained with CLIP ViT-B-16@0123456789abcdef"):
        PanopticPipeline(dataclasses.replace(zeroshot.config, checkpoint=str(path)))


def test_missing_checkpoint_names_the_path(tmp_path, zeroshot):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        PanopticPipeline(dataclasses.replace(zeroshot.config, checkpoint=str(tmp_path / "nope.pt")))
