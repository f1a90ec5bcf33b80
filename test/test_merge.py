"""Panoptic merge on hand-built masks and scores, and the merge settings every preset ships."""
import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import MergeConfig, load_config
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.core.model.merge import (VoxelPanoptic, build_instances, merge_panoptic, query_scores,
                                              voxels_to_points)

CFG = MergeConfig(score_threshold=0.4, overlap_threshold=0.8, thing_score_scale=1.0)  # the mechanics, unscaled
BIG = 10.0  # mask logit: sigmoid(10) ~ 1


def _masks(num_voxels, *members):
    logits = torch.full((len(members), num_voxels), -BIG)
    for q, voxels in enumerate(members):
        logits[q, list(voxels)] = BIG
    return logits


def _merge(masks, scores, labels, things, cfg=CFG):
    return merge_panoptic(masks, torch.tensor(scores), torch.tensor(labels), torch.tensor(things), cfg)


def test_merge_defaults_are_p3formers():
    assert MergeConfig() == MergeConfig(score_threshold=0.4, overlap_threshold=0.8, thing_score_scale=2.0)


@pytest.mark.parametrize("preset", ["tiny", "nuscenes", "semantickitti"])
def test_every_preset_merges_as_p3former(preset):
    merge = load_config(preset).merge
    assert (merge.score_threshold, merge.overlap_threshold, merge.thing_score_scale) == (0.4, 0.8, 2.0)


def test_score_threshold_is_strict_at_exactly_the_threshold():
    """The docstring's rule: kept when strictly above. A score of exactly 0.4 (stuff) or 0.2 (a thing,
    doubled to exactly 0.4) is dropped; one float step above is kept."""
    above = torch.nextafter(torch.tensor(0.4), torch.tensor(1.0)).item()
    half_above = torch.nextafter(torch.tensor(0.2), torch.tensor(1.0)).item()
    masks = _masks(4, [0], [1], [2], [3])
    out = _merge(masks, [0.4, above, 0.2, half_above], [0, 1, 2, 3], [False, False, True, True], MergeConfig())
    assert out.labels.tolist() == [UNLABELED, 1, UNLABELED, 3]


def test_thing_scores_are_doubled_for_the_threshold_and_the_competition_only():
    # voxel 0..1: a thing (p 0.3, ranked 0.6) and stuff (p 0.5) both claim them; the thing wins.
    # voxel 2..3: stuff alone. A stuff query at p 0.3 would not pass the threshold; the thing does.
    masks = _masks(5, [0, 1], [0, 1, 2, 3], [4])
    out = _merge(masks, [0.3, 0.5, 0.3], [0, 1, 2], [True, False, False], MergeConfig(overlap_threshold=0.5))
    assert out.labels.tolist() == [0, 0, 1, 1, UNLABELED]
    assert out.instance_ids.tolist() == [1, 1, 0, 0, 0]
    p = torch.sigmoid(torch.tensor(BIG))
    torch.testing.assert_close(out.scores[:4], torch.stack([0.3 * p, 0.3 * p, 0.5 * p, 0.5 * p]))  # unscaled
    assert [s.score for s in out.segments if s.query == 0] == [pytest.approx(0.3)]
    unscaled = _merge(masks, [0.3, 0.5, 0.3], [0, 1, 2], [True, False, False],
                      MergeConfig(overlap_threshold=0.5, thing_score_scale=1.0))
    assert unscaled.labels.tolist() == [1, 1, 1, 1, UNLABELED]


def test_score_threshold_keeps_only_confident_queries():
    masks = _masks(6, [0, 1], [2, 3], [4, 5])
    out = _merge(masks, [0.39, 0.41, 0.9], [0, 1, 2], [True, True, True])
    assert out.labels.tolist() == [UNLABELED, UNLABELED, 1, 1, 2, 2]
    assert sorted(s.query for s in out.segments) == [1, 2]


def test_overlap_rule_drops_mostly_covered_segments():
    # A (0.9) owns 0..9. B (0.8) masks 5..14 and keeps only 10..14 = 5/10 < 0.8: dropped, 10..14 unclaimed.
    out = _merge(_masks(20, range(0, 10), range(5, 15)), [0.9, 0.8], [0, 1], [True, True])
    assert out.labels[:10].tolist() == [0] * 10
    assert out.labels[10:].tolist() == [UNLABELED] * 10
    assert [s.query for s in out.segments] == [0]
    # B masks 8..17 and keeps 10..17 = 8/10 = 0.8, not below the threshold: kept.
    out = _merge(_masks(20, range(0, 10), range(8, 18)), [0.9, 0.8], [0, 1], [True, True])
    assert out.labels[10:18].tolist() == [1] * 8
    assert out.labels[18:].tolist() == [UNLABELED] * 2
    assert sorted(s.query for s in out.segments) == [0, 1]


def test_voxel_goes_to_highest_score_times_mask_probability():
    masks = torch.tensor([[2.0, -BIG], [BIG, BIG]])  # query 0: p=0.88 on voxel 0; query 1: p~1 on both
    out = _merge(masks, [0.95, 0.9], [0, 1], [True, True])
    # voxel 0: 0.95 * 0.88 = 0.84 < 0.9 * 1.0 -> query 1; query 0 then keeps nothing and is dropped
    assert out.labels.tolist() == [1, 1]
    torch.testing.assert_close(out.scores[0], torch.tensor(0.9) * torch.sigmoid(torch.tensor(BIG)))


def test_things_get_unique_ids_from_one_in_score_order_and_stuff_gets_zero():
    masks = _masks(8, [0, 1], [2, 3], [4, 5], [6, 7])
    out = _merge(masks, [0.5, 0.9, 0.7, 0.8], [0, 0, 1, 3], [True, True, True, False])
    assert out.instance_ids.tolist() == [3, 3, 1, 1, 2, 2, 0, 0]
    assert out.labels.tolist() == [0, 0, 0, 0, 1, 1, 3, 3]
    things = [s for s in out.segments if s.instance_id]
    assert sorted(s.instance_id for s in things) == [1, 2, 3]
    assert [s.instance_id for s in out.segments if s.query == 3] == [0]


def test_nothing_kept_gives_all_unlabeled():
    out = _merge(_masks(4, [0, 1]), [0.1], [0], [True])
    assert out.labels.tolist() == [UNLABELED] * 4 and out.instance_ids.tolist() == [0] * 4
    assert out.scores.tolist() == [0.0] * 4 and out.segments == []


def test_any_query_takes_any_class_and_its_label_decides_thing_or_stuff():
    # Vocabulary of 5 classes, stuff at indices 2 and 4 (not contiguous, not at the end).
    is_stuff = torch.tensor([False, False, True, False, True])
    probs = torch.tensor([
        [0.1, 0.3, 0.9, 0.2, 0.1],  # -> stuff class 2
        [0.7, 0.1, 0.1, 0.1, 0.1],  # -> thing class 0
        [0.1, 0.1, 0.2, 0.1, 0.8],  # -> stuff class 4
        [0.1, 0.1, 0.2, 0.6, 0.5],  # -> thing class 3
    ])
    scores, labels, is_thing = query_scores(probs, is_stuff)
    assert labels.tolist() == [2, 0, 4, 3] and is_thing.tolist() == [False, True, False, True]
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.7, 0.8, 0.6]))


def test_voxel_results_map_back_to_points_with_out_of_range_unlabeled():
    voxel = VoxelPanoptic(torch.tensor([3, 0]), torch.tensor([0, 1]), torch.tensor([0.5, 0.9]), [])
    labels, ids, scores = voxels_to_points(voxel, torch.tensor([1, -1, 0, 1]))
    assert labels.dtype == np.uint16 and ids.dtype == np.uint32 and scores.dtype == np.float32
    assert labels.tolist() == [0, UNLABELED, 3, 0]
    assert ids.tolist() == [1, 0, 0, 1]
    np.testing.assert_allclose(scores, [0.9, 0.0, 0.5, 0.9])


def test_instances_carry_boxes_fitted_to_their_points():
    masks = _masks(3, [0], [1], [2])
    out = _merge(masks, [0.9, 0.8, 0.7], [0, 1, 2], [True, True, False])
    rng = np.random.default_rng(0)
    car = rng.uniform([-2.0, -1.0, 0.0], [2.0, 1.0, 1.5], size=(50, 3)) + [10.0, 5.0, 0.0]
    person = rng.uniform(-0.3, 0.3, size=(20, 3)) + [3.0, -2.0, 1.0]
    road = rng.uniform(-20, 20, size=(30, 3)) * [1, 1, 0]
    points = np.concatenate([car, person, road]).astype(np.float32)
    p2v = torch.tensor([0] * 50 + [1] * 20 + [2] * 30)
    _, ids, _ = voxels_to_points(out, p2v)
    instances = build_instances(points, ids, out.segments)
    assert [(i.instance_id, i.label, i.num_points) for i in instances] == [(1, 0, 50), (2, 1, 20)]
    car_box = instances[0]
    np.testing.assert_allclose(car_box.center[:2], [10.0, 5.0], atol=0.3)
    assert 3.5 < car_box.size[0] <= 4.0 and 1.6 < car_box.size[1] <= 2.0
    assert abs(car_box.score - 0.9) < 1e-6


# ------------------------------------------------------------------ boundaries the mutations found
def test_a_mask_probability_of_exactly_one_half_is_kept_and_counted():
    """`at least 0.5`: a logit of 0 (p = 0.5) is inside the query's mask, both for the voxels it keeps and
    for its original area."""
    single = _masks(5, range(4))
    single[0, 4] = 0.0  # p = 0.5
    out = _merge(single, [0.9], [3], [True])
    assert out.labels.tolist() == [3] * 5 and [s.num_voxels for s in out.segments] == [5]
    # B: 10 sure voxels + 3 at p = 0.5, so 13 voxels of its own; A takes one sure voxel and the three
    # half ones. B keeps 9 of 13 < 0.8: dropped (9 of 10 if the half voxels were not counted).
    masks = _masks(14, [0, 10, 11, 12], range(10))
    masks[1, 10:13] = 0.0
    out = _merge(masks, [0.9, 0.8], [0, 1], [True, True])
    assert out.labels.tolist() == [0] + [UNLABELED] * 9 + [0, 0, 0, UNLABELED]
    assert [(s.query, s.num_voxels) for s in out.segments] == [(0, 4)]


def test_a_query_that_wins_nothing_is_dropped_and_takes_no_instance_id():
    masks = _masks(4, [], [0, 1], [2, 3])  # query 0: confident, but its mask is empty
    out = _merge(masks, [0.95, 0.9, 0.8], [0, 1, 2], [True, True, True])
    assert [(s.query, s.instance_id, s.num_voxels) for s in out.segments] == [(1, 1, 2), (2, 2, 2)]
    assert out.instance_ids.tolist() == [1, 1, 2, 2]


def test_a_single_voxel_is_merged():
    out = _merge(_masks(1, [0]), [0.9], [2], [False])
    assert out.labels.tolist() == [2] and out.instance_ids.tolist() == [0]
    assert [(s.query, s.label, s.instance_id, s.num_voxels) for s in out.segments] == [(0, 2, 0, 1)]


def test_instances_skip_segments_without_points_and_carry_the_box_yaw():
    masks = _masks(3, [0], [1], [2])
    out = _merge(masks, [0.9, 0.8, 0.7], [5, 0, 1], [False, True, True])  # stuff first, then two things
    yaw = np.pi / 6
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-1, 1, 5)), axis=-1).reshape(-1, 2)
    car = np.column_stack([grid @ rot.T + [10.0, 5.0], np.linspace(0.0, 1.5, len(grid))])  # 4 x 2 m at 30 deg
    points = car.astype(np.float32)
    ids = np.full(len(points), 2, dtype=np.uint32)  # only the second thing has points
    instances = build_instances(points, ids, out.segments)
    assert [(i.instance_id, i.label, i.num_points) for i in instances] == [(2, 1, len(points))]
    assert isinstance(instances[0].yaw, float) and instances[0].yaw == pytest.approx(yaw, abs=1e-5)
    np.testing.assert_allclose(instances[0].size[:2], [4.0, 2.0], atol=1e-5)
    ids[:3] = 1  # now the first thing has points too, and comes first
    assert [i.instance_id for i in build_instances(points, ids, out.segments)] == [1, 2]


def test_split_scattered_things_cuts_an_instance_into_components_and_drops_small_ones():
    """merge.split_radius_m: instance 1 spans two groups 20 m apart (two instances after the split); instance 2's
    lone far point is under min_points (unlabeled); stuff (id 0) is left alone."""
    from ov_panoptic_ros.core.config import MergeConfig
    from ov_panoptic_ros.core.model.merge import point_instances, split_scattered_things

    near = np.array([[0, 0, 0], [0.3, 0, 0], [0.6, 0, 0]], np.float32)
    points = np.concatenate([near, near + [20, 0, 0], near + [0, 5, 0], [[0, -20, 0]], [[9, 9, 0]]]).astype(np.float32)
    labels = np.array([4] * 6 + [7] * 4 + [1], np.uint16)
    ids = np.array([1] * 6 + [2] * 4 + [0], np.uint32)
    new_labels, new_ids = split_scattered_things(points, labels, ids, radius=1.0, min_points=3)  # 3 points: kept
    assert new_ids.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0]
    assert new_labels.tolist() == [4] * 6 + [7] * 3 + [UNLABELED, 1]
    lone = split_scattered_things(points[-2:], labels[-2:], np.array([5, 0], np.uint32), radius=1.0, min_points=2)
    assert lone[0].tolist() == [UNLABELED, 1] and lone[1].tolist() == [0, 0]  # one thing point alone: dropped
    scores = np.linspace(0.1, 1.0, 11, dtype=np.float32)
    off = point_instances(points, labels, ids, scores, [], MergeConfig(), 3)
    assert off[0] is labels and off[1] is ids  # default: the merge's own instances, untouched
    split = point_instances(points, labels, ids, scores, [], MergeConfig(split_radius_m=1.0), 3)
    assert [(i.instance_id, i.label, i.num_points) for i in split[2]] == [(1, 4, 3), (2, 4, 3), (3, 7, 3)]
    np.testing.assert_allclose([i.score for i in split[2]], [scores[0:3].mean(), scores[3:6].mean(),
                                                             scores[6:9].mean()], rtol=1e-6)  # mean point score
