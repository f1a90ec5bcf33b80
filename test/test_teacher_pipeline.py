"""The pipeline on the teacher backend: zero-shot end to end, and a 3D network that is bound to its teacher."""
import dataclasses

import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import ClipConfig, load_config
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.core.model.checkpoint import CheckpointError, save_checkpoint
from ov_panoptic_ros.core.model.network import build_network
from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.core.vision.minilm_text import NAME as MINILM, model_dir, weights_id
from ov_panoptic_ros.core.vision.teacher import TeacherEncoder
from ov_panoptic_ros.core.vision.teacher_checkpoint import save_teacher
from ov_panoptic_ros.core.vision.teacher_net import TeacherNet
from ov_panoptic_ros.data.synthetic import make_scene


def teacher_config(tmp_path, seed):
    torch.manual_seed(seed)
    path = save_teacher(tmp_path / f"teacher{seed}.pt", TeacherNet(8, 8), 64,
                        {"name": MINILM, "model_id": weights_id(model_dir())}, {"seed": seed})
    return load_config("tiny", overrides={"device": "cpu", "clip": {"model_name": "teacher", "checkpoint": str(path)}})


@pytest.fixture(scope="module")
def zeroshot(tmp_path_factory):
    return PanopticPipeline(teacher_config(tmp_path_factory.mktemp("teachers"), seed=0))


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=5, num_points=4000, image_size=(96, 64))


def test_zero_shot_pipeline_runs_on_the_teacher(zeroshot, scene):
    assert zeroshot.mode == "zeroshot" and isinstance(zeroshot.encoder, TeacherEncoder)
    assert zeroshot.config.clip == ClipConfig(model_name="teacher", checkpoint=zeroshot.config.clip.checkpoint)
    result = zeroshot(scene.frame)
    n = scene.frame.num_points
    assert result.labels.shape == (n,) and result.labels.dtype == np.uint16
    assert (result.labels != UNLABELED).any()
    assert (result.labels[result.labels != UNLABELED] < len(zeroshot.vocabulary.classes)).all()
    assert {"project", "clip_encode", "sample", "classify", "cluster"} <= set(result.timings_ms)
    embeddings = zeroshot.prepare_vocabulary(Vocabulary(("automobile", "tree,vegetation")))
    assert embeddings.embeddings.shape == (3, 384) and embeddings.model_id == weights_id(model_dir())
    zeroshot.activate(embeddings)
    assert (zeroshot(scene.frame).labels[result.labels != UNLABELED] < 2).all()


def test_a_3d_network_runs_with_its_teacher_and_refuses_another(tmp_path, zeroshot, scene):
    config = zeroshot.config
    torch.manual_seed(0)
    net = save_checkpoint(tmp_path / "net.pt", build_network(config, 384), config, zeroshot.encoder.model_id)
    pipe = PanopticPipeline(dataclasses.replace(config, checkpoint=str(net)))
    assert pipe.mode == "ov" and pipe(scene.frame).labels.shape == (scene.frame.num_points,)
    other = teacher_config(tmp_path, seed=1)
    with pytest.raises(CheckpointError, match=f"trained with CLIP {zeroshot.encoder.model_id} .384-d. but the "
                                              r"configured CLIP is teacher@[0-9a-f]{16} \(384-d\)"):
        PanopticPipeline(dataclasses.replace(other, checkpoint=str(net)))
