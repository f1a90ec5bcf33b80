"""PanopticPipeline end to end in zero-shot mode: tiny random CLIP, synthetic scene, CPU-sized inputs."""
import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.frame import UNLABELED, Frame, Vocabulary
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.data.synthetic import make_scene

STAGES = {"project", "clip_encode", "sample", "classify", "cluster", "total"}


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=0, num_points=3000, num_cameras=2, image_size=(320, 240))


@pytest.fixture(scope="module")
def pipeline():
    return PanopticPipeline(load_config("tiny"))


def test_result_shapes_dtypes_and_label_space(pipeline, scene):
    assert pipeline.mode == "zeroshot"
    result = pipeline(scene.frame)
    n = scene.frame.num_points
    assert result.labels.shape == (n,) and result.labels.dtype == np.uint16
    assert result.instance_ids.shape == (n,) and result.instance_ids.dtype == np.uint32
    assert result.scores.shape == (n,) and result.scores.dtype == np.float32
    c = len(pipeline.vocabulary.classes)
    assert ((result.labels < c) | (result.labels == UNLABELED)).all()
    assert ((result.scores >= 0) & (result.scores <= 1)).all()
    assert (result.labels != UNLABELED).any()
    assert STAGES <= set(result.timings_ms) and all(v >= 0 for v in result.timings_ms.values())
    assert result.vocabulary == pipeline.vocabulary


def test_unseen_points_near_seen_ones_get_lidar_only_labels_and_instances_are_consistent(pipeline, scene):
    result = pipeline(scene.frame)
    points = torch.from_numpy(scene.frame.points)
    seen = project_points(points, scene.frame.cameras, pipeline.config.projection).seen.numpy()
    assert 0 < seen.sum() < seen.size  # the scene has both
    xyz = scene.frame.points.astype(np.float64)
    gap = np.sqrt(((xyz[~seen, None, :] - xyz[None, seen, :]) ** 2).sum(-1)).min(axis=1)  # to the nearest seen
    radius = pipeline.config.zeroshot.propagate_radius_m
    unseen_labels, unseen_scores = result.labels[~seen], result.scores[~seen]
    near, away = gap < radius * 0.999, gap > radius * 1.001
    assert near.sum() > 10 and away.sum() > 10  # the scene has both kinds of unseen points
    assert (unseen_labels[away] == UNLABELED).all() and (unseen_scores[away] == 0).all()
    assert (result.instance_ids[~seen][away] == 0).all()
    labeled_near = unseen_labels[near] != UNLABELED  # a propagated thing point may be dropped with a small cluster
    assert labeled_near.mean() > 0.5 and (unseen_scores[near][labeled_near] > 0).all()
    stuff = pipeline.vocabulary.is_stuff
    labeled = result.labels != UNLABELED
    assert (result.instance_ids[labeled & stuff[np.minimum(result.labels, len(stuff) - 1)]] == 0).all()
    ids = sorted(int(i) for i in np.unique(result.instance_ids) if i)
    assert ids == list(range(1, len(ids) + 1)) == [inst.instance_id for inst in result.instances]
    for inst in result.instances:
        members = result.instance_ids == inst.instance_id
        assert inst.num_points == members.sum() and (result.labels[members] == inst.label).all()
        assert not stuff[inst.label]


def test_same_seed_gives_same_output(pipeline, scene):
    other = PanopticPipeline(load_config("tiny"))
    a, b = pipeline(scene.frame), other(scene.frame)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.instance_ids, b.instance_ids)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_vocabulary_swap_changes_the_label_space(scene):
    pipe = PanopticPipeline(load_config("tiny"))
    small = Vocabulary(("car", "road", "tree"), stuff=("road", "tree"), templates=("a photo of a {}.",))
    pipe.set_vocabulary(small)
    result = pipe(scene.frame)
    assert result.vocabulary == small and pipe.vocabulary == small
    assert ((result.labels < 3) | (result.labels == UNLABELED)).all() and (result.labels != UNLABELED).any()
    names = tuple(["car", "road", "tree"] + [f"object {i}" for i in range(27)])
    large = Vocabulary(names, stuff=("road", "tree"), templates=("a photo of a {}.",))
    prepared = pipe.prepare_vocabulary(large)
    assert pipe(scene.frame).vocabulary == small  # prepared but not active yet
    pipe.activate(prepared)
    result = pipe(scene.frame)
    assert result.vocabulary == large
    assert ((result.labels < 30) | (result.labels == UNLABELED)).all()
    assert (result.labels[result.labels != UNLABELED] >= 3).any()  # the new classes are really used


def test_frame_without_cameras_is_all_unlabeled(pipeline, scene):
    frame = Frame(points=scene.frame.points[:500])
    result = pipeline(frame)
    assert (result.labels == UNLABELED).all() and not result.instances
    assert (result.instance_ids == 0).all()
