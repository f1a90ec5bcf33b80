"""Matching, targets and losses on hand-built network outputs: perfect predictions cost ~0, each term has its
exact value on hand-made cases, matched queries can be swapped, and novel classes never become a target."""
import math

import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import ConfigError, LossConfig, VocabularyConfig
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.core.model.losses import PanopticLoss
from ov_panoptic_ros.core.model.matching import hungarian_match, matching_cost
from ov_panoptic_ros.core.model.outputs import NetworkOutputs
from ov_panoptic_ros.core.model.targets import IGNORE, ClassSplit, PanopticTargets, voxel_targets
from ov_panoptic_ros.core.model.terms import (object_distill, pool_in_masks, pooling_weights, reconstruct_voxel_clip,
                                              sigmoid_focal, voxel_distill)
from ov_panoptic_ros.data.synthetic import random_class_embeddings

BIG = 20.0
DATASET = Vocabulary(("car", "truck", "bus", "road", "vegetation,tree"), ("road", "vegetation"))
SPLIT = ClassSplit(DATASET, ("bus", "vegetation"))
TRAIN = SPLIT.train_vocabulary
CAR, TRUCK, ROAD = 0, 1, 2  # training-vocabulary indices
D_CAR, D_TRUCK, D_BUS, D_ROAD, D_VEG = range(5)  # dataset indices
# 9 voxels, one point each: car = 0,1; truck = 2,3; road = 4..7; voxel 8 is a bus (novel: ignored).
DATASET_LABELS = torch.tensor([D_CAR, D_CAR, D_TRUCK, D_TRUCK, D_ROAD, D_ROAD, D_ROAD, D_ROAD, D_BUS])
INSTANCES = torch.tensor([1, 1, 2, 2, 0, 0, 0, 0, 3])
TARGETS = SPLIT.targets(DATASET_LABELS, INSTANCES)
E = torch.eye(4)  # CLIP directions: car, truck, road, bus
SEEN = torch.tensor([True] * 7 + [False, True])  # voxel 7 (road) was never seen by a camera


def _mask_row(voxels):
    row = torch.full((9,), -BIG)
    row[list(voxels)] = BIG
    return row


def _class_row(cls=None):
    row = torch.full((3,), -BIG)
    if cls is not None:
        row[cls] = BIG
    return row


def perfect_outputs(layers=2):
    """Learnable queries 0..2 (0 = truck, 1 = the unlabelled bus, 2 = car), then the base-stuff query (road)."""
    masks = torch.stack([_mask_row([2, 3]), _mask_row([8]), _mask_row([0, 1]), _mask_row([4, 5, 6, 7])])
    classes = torch.stack([_class_row(TRUCK), _class_row(), _class_row(CAR), _class_row(ROAD)])
    embed = torch.stack([E[1], E[3], E[0], E[2]])
    clip = torch.stack([E[0], E[0], E[1], E[1], E[2], E[2], E[2], torch.zeros(4), E[3]])
    return NetworkOutputs(
        mask_logits=[masks.clone() for _ in range(layers)],
        class_logits=[classes.clone() for _ in range(layers)],
        class_embed=[embed.clone() for _ in range(layers)],
        num_learned_queries=3, stuff_names=("road",), vocabulary=TRAIN,
        voxel_clip=clip, voxel_seen=SEEN.clone(), point_to_voxel=torch.arange(9),
        voxel_coords=torch.zeros((9, 3), dtype=torch.int32))


def _last_only(**kw):
    return PanopticLoss(LossConfig(deep_supervision=False, **kw))


def _set(outputs, key, row, value):
    for t in getattr(outputs, key):
        t[row] = value


# --- class split and targets ---------------------------------------------------------------------------

def test_split_gives_the_base_vocabulary_and_maps_novel_to_ignore():
    assert TRAIN.classes == ("car", "truck", "road") and TRAIN.stuff == ("road",)
    assert SPLIT.label_map.tolist() == [CAR, TRUCK, IGNORE, ROAD, IGNORE]
    assert TARGETS.vocabulary == TRAIN
    assert TARGETS.labels.tolist() == [CAR, CAR, TRUCK, TRUCK, ROAD, ROAD, ROAD, ROAD, IGNORE]
    unlabelled = SPLIT.targets(torch.tensor([UNLABELED, D_VEG, D_CAR]), torch.zeros(3))
    assert unlabelled.labels.tolist() == [IGNORE, IGNORE, CAR]


def test_split_from_config_matches_synonyms_and_rejects_bad_splits():
    from ov_panoptic_ros.core.config import load_config
    split = ClassSplit.from_config(load_config("nuscenes").vocabulary)
    assert [n for n in split.dataset.names if n not in split.train_vocabulary.names] == [
        "bus", "motorcycle", "pedestrian", "vegetation"]
    assert len(split.train_vocabulary.classes) == 12 and len(split.train_vocabulary.stuff) == 5
    with pytest.raises(ConfigError, match=r"vocabulary.novel: class\(es\) \[.boat.\] are not in the vocabulary"):
        ClassSplit(DATASET, ("boat",))
    with pytest.raises(ConfigError, match="every class .* is novel"):
        ClassSplit(DATASET, DATASET.names)


def test_train_embeddings_are_the_base_rows_of_the_dataset_embeddings():
    full = random_class_embeddings(DATASET, 8)  # 6 rows: vegetation has a synonym
    train = SPLIT.train_embeddings(full)
    assert train.vocabulary == TRAIN and train.synonym_class.tolist() == [0, 1, 2]
    torch.testing.assert_close(train.embeddings, full.embeddings[[0, 1, 3]])
    assert train.is_stuff.tolist() == [False, False, True]
    with pytest.raises(ValueError, match="not of the split's dataset vocabulary"):
        SPLIT.train_embeddings(random_class_embeddings(TRAIN, 8))


def test_bad_dataset_labels_are_named():
    with pytest.raises(ValueError, match="one label and instance id per point"):
        SPLIT.targets(DATASET_LABELS[:5], INSTANCES)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        SPLIT.targets(torch.full((9,), 7), INSTANCES)


def test_voxel_targets_vote_with_ignore_winning_ties():
    labels = torch.tensor([D_CAR, D_CAR, D_ROAD, D_ROAD, D_BUS, D_CAR, D_BUS, D_BUS, D_CAR, UNLABELED])
    instances = torch.tensor([7, 7, 0, 0, 9, 7, 9, 9, 7, 0])
    # voxel 0: 2 car + 1 road -> car; voxel 1: road; voxel 2: bus + car (tie) -> ignored;
    # voxel 3: 2 bus + 1 car -> ignored; voxel 4: only an unlabelled point -> ignored.
    p2v = torch.tensor([0, 0, 0, 1, 2, 2, 3, 3, 3, 4])
    gt = voxel_targets(SPLIT.targets(labels, instances), p2v, 5)
    assert gt.labels.tolist() == [CAR, ROAD] and gt.is_thing.tolist() == [True, False]
    assert gt.masks.tolist() == [[True, False, False, False, False], [False, True, False, False, False]]
    assert gt.valid.tolist() == [True, True, False, False, False]


def test_instances_of_one_class_split_and_stuff_instance_ids_do_not():
    labels = torch.tensor([D_CAR, D_CAR, D_ROAD, D_ROAD])
    gt = voxel_targets(SPLIT.targets(labels, torch.tensor([1, 2, 5, 6])), torch.arange(4), 4)
    assert gt.labels.tolist() == [CAR, CAR, ROAD]
    assert gt.masks[2].tolist() == [False, False, True, True]


@pytest.mark.parametrize("seed", range(5))
def test_a_novel_point_never_yields_a_positive_target(seed):
    """Random frames: every positive voxel of every segment has more base points of that segment than novel
    or unlabelled points, segments only carry training classes, and a frame of novel points has no target."""
    gen = torch.Generator().manual_seed(seed)
    n, v = 400, 60
    labels = torch.randint(0, 5, (n,), generator=gen)
    labels[torch.rand(n, generator=gen) < 0.1] = UNLABELED
    instances = torch.randint(1, 4, (n,), generator=gen)
    p2v = torch.randint(-1, v, (n,), generator=gen)
    targets = SPLIT.targets(labels, instances)
    gt = voxel_targets(targets, p2v, v)
    assert set(gt.labels.tolist()) <= {CAR, TRUCK, ROAD}
    ignored = targets.labels == IGNORE
    assert ignored.sum() == ((labels == D_BUS) | (labels == D_VEG) | (labels == UNLABELED)).sum() > 0
    for mask, label in zip(gt.masks, gt.labels.tolist()):
        for voxel in mask.nonzero().flatten().tolist():
            here = p2v == voxel
            assert (here & (targets.labels == label)).sum() > (here & ignored).sum()
    novel_only = SPLIT.targets(torch.where(labels == D_CAR, D_BUS, D_VEG), instances)
    gt = voxel_targets(novel_only, p2v, v)
    assert gt.masks.shape[0] == 0 and not gt.valid.any()
    out = perfect_outputs()
    out.point_to_voxel = p2v.clamp_max(8)
    losses = PanopticLoss()(out, novel_only)
    assert losses["mask"].item() == 0.0 and losses["dice"].item() == 0.0 and losses["object_distill"].item() == 0.0
    # every class target is negative: the class loss is that of all-negative targets
    expected = sum(F.sigmoid(t).pow(4).mul(0.75).mul(F.softplus(t)).sum() for t in out.class_logits[1:])
    torch.testing.assert_close(losses["cls"], expected)


# --- matching -------------------------------------------------------------------------------------------

def test_hungarian_matching_hand_case():
    out = perfect_outputs()
    gt = voxel_targets(TARGETS, torch.arange(9), 9)
    things = gt.is_thing.nonzero().flatten()
    rows, cols = hungarian_match(out.class_logits[1][:3], out.mask_logits[1][:3], gt.labels[things],
                                 gt.masks[things], LossConfig())
    assert dict(zip(rows.tolist(), gt.labels[things][cols].tolist())) == {0: TRUCK, 2: CAR}


def test_first_output_is_matched_on_masks_only():
    """Class says q0 = car, q2 = truck; masks say the opposite. With classes weighted 100, the class decides
    where classes are used, and the masks decide for the first output (use_class=False)."""
    out = perfect_outputs()
    classes = out.class_logits[1][:3].clone()
    classes[0], classes[2] = _class_row(CAR), _class_row(TRUCK)
    gt = voxel_targets(TARGETS, torch.arange(9), 9)
    things = gt.is_thing.nonzero().flatten()
    args = (classes, out.mask_logits[1][:3], gt.labels[things], gt.masks[things], LossConfig(match_class_weight=100))
    by_class = dict(zip(*(t.tolist() for t in hungarian_match(*args))))
    by_mask = dict(zip(*(t.tolist() for t in hungarian_match(*args, use_class=False))))
    labels = gt.labels[things].tolist()
    assert {q: labels[k] for q, k in by_class.items()} == {0: CAR, 2: TRUCK}
    assert {q: labels[k] for q, k in by_mask.items()} == {0: TRUCK, 2: CAR}


# --- the loss terms -------------------------------------------------------------------------------------

def test_perfect_prediction_costs_nearly_nothing():
    losses = PanopticLoss()(perfect_outputs(), TARGETS)
    assert set(losses) == {"cls", "mask", "dice", "object_distill", "voxel_distill", "position_dice", "total"}
    for name, value in losses.items():
        assert value.item() < 1e-3, name


def test_dice_is_divided_by_the_number_of_supervised_masks():
    out = perfect_outputs()
    _set(out, "mask_logits", 0, _mask_row([3, 4]))  # truck query: 1 of its 2 voxels right, 1 extra
    # dice = 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4 for that mask; 3 masks supervised (truck, car, road)
    assert abs(_last_only()(out, TARGETS)["dice"].item() - 0.4 / 3) < 1e-6
    # The first output is matched on masks only, where the empty query 1 (missing both truck voxels: focal
    # 2 x 0.25 x 20 / 8, dice 2/3) costs less than query 0 (focal (0.25 + 0.75) x 20 / 8, dice 0.4): it takes
    # the truck, with dice 1 - 1 / (0 + 2 + 1).
    assert abs(PanopticLoss()(out, TARGETS)["dice"].item() - (0.4 + 2 / 3) / 3) < 1e-6


def test_stuff_masks_exclusive_makes_ignored_voxels_negatives_for_base_stuff_queries_only():
    """The road query spreading over the ignored bus voxel (8) costs nothing by default (the paper: ignored) and
    a focal + dice term with loss.stuff_masks_exclusive; a thing query on voxel 8 stays free either way."""
    road_on_bus = perfect_outputs()
    _set(road_on_bus, "mask_logits", 3, _mask_row([4, 5, 6, 7, 8]))
    car_on_bus = perfect_outputs()
    _set(car_on_bus, "mask_logits", 2, _mask_row([0, 1, 8]))
    ce = F.softplus(torch.tensor(BIG)).item()
    for out in (road_on_bus, car_on_bus):
        assert _last_only()(out, TARGETS)["mask"].item() < 1e-6
    exclusive = _last_only(stuff_masks_exclusive=True)
    losses = exclusive(road_on_bus, TARGETS)
    assert abs(losses["mask"].item() - 0.75 * ce / 9 / 3) < 1e-5  # 1 - alpha on a false voxel; 9 voxels; 3 masks
    assert abs(losses["dice"].item() - (1 - (2 * 4 + 1) / (5 + 4 + 1)) / 3) < 1e-6
    assert exclusive(car_on_bus, TARGETS)["mask"].item() < 1e-6  # thing queries: voxel 8 still ignored
    assert exclusive(perfect_outputs(), TARGETS)["total"].item() < 1e-3


def test_position_dice_is_the_dice_of_the_position_term_alone_weighted_into_the_total():
    """head.position_aware (P3Former's PA-Seg): the position-only mask term is supervised by dice on the same
    targets; without it the term is zero."""
    assert PanopticLoss()(perfect_outputs(), TARGETS)["position_dice"].item() == 0.0
    out = perfect_outputs()
    out.position_mask_logits = [m.clone() for m in out.mask_logits]
    assert _last_only()(out, TARGETS)["position_dice"].item() < 1e-6
    _set(out, "position_mask_logits", 0, _mask_row([3, 4]))  # truck query: the position term is half wrong
    losses = _last_only()(out, TARGETS)
    assert abs(losses["position_dice"].item() - 0.4 / 3) < 1e-6  # as the dice test: one of 3 masks at 0.4
    assert losses["dice"].item() < 1e-6  # the full masks are still right
    heavier = _last_only(position_dice_weight=1.0)(out, TARGETS)
    assert abs(heavier["total"].item() - losses["total"].item() - 0.8 * 0.4 / 3) < 1e-5  # default weight 0.2


def test_mask_focal_is_the_mean_over_valid_voxels_per_mask_divided_by_masks():
    out = perfect_outputs()
    _set(out, "mask_logits", 0, _mask_row([3, 4]))  # a missed voxel (2) and a false one (4)
    ce = F.softplus(torch.tensor(BIG)).item()  # -log sigmoid(-20)
    expected = (0.25 * ce + 0.75 * ce) / 8 / 3  # alpha / 1 - alpha; 8 valid voxels (the bus is ignored); 3 masks
    assert abs(_last_only()(out, TARGETS)["mask"].item() - expected) < 1e-5


def test_class_focal_has_gamma_4_and_is_divided_by_positives():
    out = perfect_outputs()
    _set(out, "class_logits", 0, torch.zeros(3))  # truck query: p = 0.5 for every class
    # truck positive: 0.25 * 0.5^4 * ln 2; car and road negative: 0.75 * 0.5^4 * ln 2 each; 3 positives
    expected = (0.25 + 2 * 0.75) * 0.5 ** 4 * math.log(2) / 3
    assert abs(_last_only()(out, TARGETS)["cls"].item() - expected) < 1e-6


def test_object_distillation_pools_clip_in_the_query_own_mask():
    out = perfect_outputs()
    _set(out, "class_embed", 0, F.normalize(E[0] + E[1], dim=0))
    # truck query's mask pools truck CLIP (E1): 1 - cos 45 deg; averaged over the 3 supervised queries
    assert abs(_last_only()(out, TARGETS)["object_distill"].item() - (1 - 0.5 ** 0.5) / 3) < 1e-6
    # its *predicted* mask is what counts: the same embedding with a mask over car voxels pools car CLIP
    _set(out, "mask_logits", 0, _mask_row([0, 1, 2, 3]))
    pooled = F.normalize(E[0] + E[1], dim=0)  # 2 car + 2 truck voxels, unit features
    assert _last_only()(out, TARGETS)["object_distill"].item() < 1e-6 and pooled[0] > 0


def test_object_distillation_binary_pooling_ignores_weak_mask_voxels():
    out = perfect_outputs()
    _set(out, "class_embed", 0, E[1])
    _set(out, "mask_logits", 0, torch.where(torch.arange(9) < 2, -0.5, _mask_row([2, 3])))  # weak car voxels
    soft = _last_only()(out, TARGETS)["object_distill"].item()
    binary = _last_only(object_distill_pooling="binary")(out, TARGETS)["object_distill"].item()
    assert binary < 1e-6 < soft


def test_voxel_distillation_exact_cosine_and_l1():
    out = perfect_outputs()
    _set(out, "class_embed", 2, E[1])  # the car query now reconstructs truck CLIP on voxels 0 and 1
    # 8 seen voxels; voxels 0 and 1 have cosine 0 with their CLIP feature
    assert abs(PanopticLoss()(out, TARGETS)["voxel_distill"].item() - 2 / 8) < 1e-6
    l1 = PanopticLoss(LossConfig(voxel_distill_distance="l1"))(out, TARGETS)["voxel_distill"].item()
    assert abs(l1 - 2 * 2 / (8 * 4)) < 1e-6  # |E1 - E0| = 2 per voxel, mean over 8 voxels x 4 channels


def test_voxel_distillation_reaches_novel_voxels_without_labels():
    out = perfect_outputs()
    _set(out, "mask_logits", 1, _mask_row([]))  # nothing reconstructs the (unlabelled) bus voxel any more
    losses = PanopticLoss()(out, TARGETS)
    # every mask is ~0 there, so f_rec is the normalized sum of all 4 embeddings: cosine 1/2 with the bus
    assert abs(losses["voxel_distill"].item() - (1 - 0.5) / 8) < 1e-6
    assert losses["mask"].item() < 1e-3 and losses["dice"].item() < 1e-3  # supervised losses never saw it


def test_unseen_voxels_are_free_for_voxel_distillation():
    out = perfect_outputs()
    _set(out, "class_embed", 3, F.normalize(E[2] + E[3], dim=0))
    out.voxel_seen = torch.zeros(9, dtype=torch.bool)
    out.voxel_seen[[0, 1, 2, 3]] = True
    assert PanopticLoss()(out, TARGETS)["voxel_distill"].item() < 1e-6


def test_total_is_the_weighted_sum():
    out = perfect_outputs()
    _set(out, "mask_logits", 0, _mask_row([3, 4]))
    _set(out, "class_logits", 2, torch.zeros(3))
    _set(out, "class_embed", 2, E[1])
    weights = dict(class_weight=0.5, mask_weight=3.0, dice_weight=7.0, object_distill_weight=0.25,
                   voxel_distill_weight=11.0)
    losses = PanopticLoss(LossConfig(**weights))(out, TARGETS)
    expected = sum(w * losses[k.replace("_weight", "").replace("class", "cls")] for k, w in weights.items())
    torch.testing.assert_close(losses["total"], expected)
    assert all(losses[k] > 0.01 for k in ("cls", "mask", "dice", "object_distill", "voxel_distill"))


def test_swapping_learnable_queries_changes_nothing_but_moving_a_stuff_query_does():
    gen = torch.Generator().manual_seed(0)
    out = perfect_outputs(layers=3)
    for key in ("mask_logits", "class_logits", "class_embed"):
        setattr(out, key, [t + 3 * torch.randn(t.shape, generator=gen) for t in getattr(out, key)])
    before = PanopticLoss()(out, TARGETS)
    swapped = perfect_outputs(layers=3)
    for key in ("mask_logits", "class_logits", "class_embed"):
        setattr(swapped, key, [t[[2, 0, 1, 3]] for t in getattr(out, key)])
    after = PanopticLoss()(swapped, TARGETS)
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-5, atol=1e-6)
    for key in ("mask_logits", "class_logits", "class_embed"):  # the road query changes places with a learnable one
        setattr(swapped, key, [t[[3, 0, 1, 2]] for t in getattr(out, key)])
    assert abs(PanopticLoss()(swapped, TARGETS)["total"] - before["total"]) > 0.1


def test_first_output_has_no_class_or_object_loss_but_its_masks_count():
    out = perfect_outputs(layers=3)
    out.class_logits[0][0] = _class_row(CAR)  # the initial queries' class prediction is not supervised
    out.class_embed[0][0] = E[3]
    assert PanopticLoss()(out, TARGETS)["cls"].item() < 1e-3
    assert PanopticLoss()(out, TARGETS)["object_distill"].item() < 1e-3
    out.mask_logits[0][0] = _mask_row([5, 6])
    deep = PanopticLoss()(out, TARGETS)
    last = _last_only()(out, TARGETS)
    assert deep["dice"] > 0.2 and last["dice"] < 1e-3


def test_absent_stuff_class_must_not_be_claimed():
    no_road = SPLIT.targets(torch.where(DATASET_LABELS == D_ROAD, UNLABELED, DATASET_LABELS), INSTANCES)
    out = perfect_outputs()
    claimed = PanopticLoss()(out, no_road)["cls"]
    _set(out, "class_logits", 3, _class_row())
    silent = PanopticLoss()(out, no_road)["cls"]
    assert claimed > silent + 0.05 and silent < 1e-3


def test_gradients_are_finite_and_reach_every_prediction():
    gen = torch.Generator().manual_seed(0)
    out = perfect_outputs(layers=2)
    leaves = []
    for key in ("mask_logits", "class_logits", "class_embed"):
        setattr(out, key, [torch.randn(t.shape, generator=gen).requires_grad_() for t in getattr(out, key)])
        leaves += getattr(out, key)
    PanopticLoss()(out, TARGETS)["total"].backward()
    first_output_class = {2, 4}  # class logits and embeddings of the initial queries: unsupervised (P3Former)
    for i, t in enumerate(leaves):
        if i in first_output_class:
            assert t.grad is None, i
        else:
            assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, i


def test_voxel_distillation_gradient_reaches_masks_and_class_embeddings():
    gen = torch.Generator().manual_seed(1)
    out = perfect_outputs(layers=2)
    masks = torch.randn(4, 9, generator=gen).requires_grad_()
    embed = torch.randn(4, 4, generator=gen).requires_grad_()
    out.mask_logits[-1], out.class_embed[-1] = masks, embed
    PanopticLoss()(out, TARGETS)["voxel_distill"].backward()
    assert masks.grad.abs().sum() > 0 and embed.grad.abs().sum() > 0
    assert (masks.grad[:, 7] == 0).all() and (masks.grad[:, SEEN].abs().sum(dim=0) > 0).all()  # 7 is unseen


def test_frame_without_labels_still_gives_a_finite_loss():
    empty = SPLIT.targets(torch.full((9,), UNLABELED), torch.zeros(9, dtype=torch.long))
    losses = PanopticLoss()(perfect_outputs(), empty)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["mask"].item() == 0.0 and losses["object_distill"].item() == 0.0


def test_targets_must_index_the_vocabulary_the_network_scored():
    out = perfect_outputs()
    out.vocabulary = DATASET
    with pytest.raises(ValueError, match="run forward with the training vocabulary"):
        PanopticLoss()(out, TARGETS)
    out = perfect_outputs()
    out.stuff_names = ("sidewalk",)
    with pytest.raises(ValueError, match=r"base-stuff queries \['sidewalk'\] have no stuff class"):
        PanopticLoss()(out, TARGETS)
    out = perfect_outputs()
    out.point_to_voxel = torch.arange(5)
    with pytest.raises(ValueError, match="targets have 9 points but the network saw 5"):
        PanopticLoss()(out, TARGETS)


def test_bad_loss_options_are_named():
    with pytest.raises(ConfigError, match="loss.voxel_distill_distance 'l2'"):
        LossConfig(voxel_distill_distance="l2")
    with pytest.raises(ConfigError, match="loss.object_distill_pooling 'hard'"):
        LossConfig(object_distill_pooling="hard")


def test_object_distillation_teaches_the_class_embedding_not_the_mask():
    """Its pooling weights are detached: L_O must not move masks toward wherever CLIP agrees."""
    gen = torch.Generator().manual_seed(2)
    out = perfect_outputs(layers=2)
    masks = (out.mask_logits[1] + torch.randn(4, 9, generator=gen)).requires_grad_()
    embed = torch.randn(4, 4, generator=gen).requires_grad_()
    out.mask_logits[1], out.class_embed[1] = masks, embed
    PanopticLoss()(out, TARGETS)["object_distill"].backward()
    assert embed.grad.abs().sum() > 0 and (masks.grad is None or (masks.grad == 0).all())


# --- exact values and boundaries the mutations found ----------------------------------------------------

def _sig(x):
    return 1 / (1 + math.exp(-x))


def _focal(x, target, alpha, gamma):
    """RetinaNet's focal loss of one logit, written out."""
    p = _sig(x)
    p_t, alpha_t = (p, alpha) if target else (1 - p, 1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * math.log(p_t)


def test_sigmoid_focal_exact_on_unsaturated_logits():
    logits, targets = [0.0, 1.0, -1.0, 2.0, -0.5], [1.0, 0.0, 1.0, 0.0, 0.0]
    got = sigmoid_focal(torch.tensor(logits), torch.tensor(targets), 0.25, 2.0)
    expected = [_focal(x, t, 0.25, 2.0) for x, t in zip(logits, targets)]
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-5, atol=1e-7)
    odd = sigmoid_focal(torch.tensor(logits), torch.tensor(targets), 0.25, 3.0)  # gamma is a setting: odd too
    torch.testing.assert_close(odd, torch.tensor([_focal(x, t, 0.25, 3.0) for x, t in zip(logits, targets)]),
                               rtol=1e-5, atol=1e-7)


def test_matching_cost_exact_on_a_hand_case():
    """Mask focal (mean over voxels) + dice + class focal (positive minus negative term), written out."""
    cfg = LossConfig(match_class_weight=3.0, match_mask_weight=5.0, match_dice_weight=7.0)
    masks = [[0.0, 1.0, -1.0], [2.0, -2.0, 0.5]]
    gt = [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    classes = [[0.0, 1.0, -1.0], [0.5, 0.0, 2.0]]
    labels = [0, 2]
    mask_part, class_part = torch.zeros(2, 2), torch.zeros(2, 2)
    for q in range(2):
        for k in range(2):
            focal = sum(_focal(m, g, 0.25, 2.0) for m, g in zip(masks[q], gt[k])) / 3
            p = [_sig(m) for m in masks[q]]
            dice = 1 - (2 * sum(a * b for a, b in zip(p, gt[k])) + 1) / (sum(p) + sum(gt[k]) + 1)
            c = _sig(classes[q][labels[k]])
            mask_part[q, k] = 5.0 * focal + 7.0 * dice
            class_part[q, k] = 3.0 * (-0.25 * (1 - c) ** 4 * math.log(c) + 0.75 * c ** 4 * math.log(1 - c))
    args = (torch.tensor(classes), torch.tensor(masks), torch.tensor(labels), torch.tensor(gt).bool(), cfg)
    torch.testing.assert_close(matching_cost(*args), mask_part + class_part, rtol=1e-5, atol=1e-6)  # default
    torch.testing.assert_close(matching_cost(*args, use_class=False), mask_part, rtol=1e-5, atol=1e-6)
    # one valid voxel: the mask focal is divided by 1
    one = matching_cost(torch.zeros(1, 3), torch.zeros(1, 1), torch.tensor([0]), torch.ones(1, 1, dtype=torch.bool),
                        cfg, use_class=False)
    torch.testing.assert_close(one, torch.tensor([[5.0 * _focal(0.0, 1, 0.25, 2.0) + 7.0 * (1 - 2 / 2.5)]]))


def test_pool_in_masks_gives_unit_rows_and_whether_any_seen_voxel_had_weight():
    weights = torch.tensor([[0.6, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    clip = torch.tensor([[3.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    pooled, has_clip = pool_in_masks(weights, clip, torch.tensor([True, True, False]))
    torch.testing.assert_close(pooled, torch.tensor([[1.0, 0.0], [3 / 5, 4 / 5], [0.0, 0.0]]))
    assert has_clip.tolist() == [True, True, False]  # a weight below 1 counts; an unseen voxel does not


def test_binary_pooling_takes_probabilities_strictly_above_one_half():
    logits = torch.tensor([[-1.0, 0.0, 0.5, 2.0]])
    assert pooling_weights(logits, "binary").tolist() == [[0.0, 0.0, 1.0, 1.0]]
    torch.testing.assert_close(pooling_weights(logits, "soft"), logits.sigmoid())


def test_distillations_are_zero_in_the_graph_when_no_voxel_was_seen():
    embed = E[:2].clone().requires_grad_()
    masks = torch.full((2, 3), BIG).requires_grad_()
    unseen = torch.zeros(3, dtype=torch.bool)
    for loss in (object_distill(embed, masks, torch.eye(3, 4), unseen, "soft"),
                 voxel_distill(masks, embed, torch.eye(3, 4), unseen, "cosine")):
        assert loss.item() == 0.0 and loss.requires_grad


def test_reconstruction_uses_the_direction_of_each_class_embedding_only():
    masks = torch.zeros(2, 1)  # p = 0.5 for both queries
    long_and_short = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(reconstruct_voxel_clip(masks, long_and_short),
                               torch.tensor([[0.5 ** 0.5, 0.5 ** 0.5]]))


# Two base-stuff classes, each with its own stuff query after one learnable query.
STUFF2 = ClassSplit(Vocabulary(("car", "road", "sidewalk"), ("road", "sidewalk")))
STUFF2_TARGETS = STUFF2.targets(torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([4, 4, 0, 0, 0, 0]))


def _stuff2_outputs(masks):
    e = torch.eye(3)

    def row(voxels):
        r = torch.full((6,), -BIG)
        r[list(voxels)] = BIG
        return r

    classes = torch.full((3, 3), -BIG)
    classes[[0, 1, 2], [0, 1, 2]] = BIG
    return NetworkOutputs(
        mask_logits=[torch.stack([row(m) for m in masks])], class_logits=[classes], class_embed=[e.clone()],
        num_learned_queries=1, stuff_names=("road", "sidewalk"), vocabulary=STUFF2.train_vocabulary,
        voxel_clip=e[[0, 0, 1, 1, 2, 2]], voxel_seen=torch.ones(6, dtype=torch.bool), point_to_voxel=torch.arange(6),
        voxel_coords=torch.zeros((6, 3), dtype=torch.int32))


def test_each_stuff_query_is_supervised_by_its_own_class_only():
    losses = PanopticLoss()(_stuff2_outputs([[0, 1], [2, 3], [4, 5]]), STUFF2_TARGETS)
    for name, value in losses.items():
        assert value.item() < 1e-3, name


def test_a_single_supervised_mask_is_still_supervised():
    road_only = STUFF2.targets(torch.ones(6, dtype=torch.long), torch.zeros(6, dtype=torch.long))
    out = _stuff2_outputs([[], [0, 1, 2, 3, 4], []])  # the road query misses one of the 6 road voxels
    losses = PanopticLoss(LossConfig(deep_supervision=False))(out, road_only)
    assert abs(losses["dice"].item() - (1 - (2 * 5 + 1) / (5 + 6 + 1))) < 1e-6
    assert abs(losses["mask"].item() - 0.25 * F.softplus(torch.tensor(BIG)).item() / 6) < 1e-6


def test_split_keeps_its_novel_names_as_a_tuple_and_its_templates():
    split = ClassSplit(DATASET, ["bus", "vegetation"])
    assert split.novel == ("bus", "vegetation") and split == SPLIT and hash(split) == hash(SPLIT)
    cfg = VocabularyConfig(classes=("car", "road"), stuff=("road",), templates=("a photo of a {}.",), novel=("car",))
    from_config = ClassSplit.from_config(cfg)
    assert from_config.dataset.templates == ("a photo of a {}.",)
    assert from_config.train_vocabulary == Vocabulary(("road",), ("road",), ("a photo of a {}.",))
    full = random_class_embeddings(DATASET, 8)
    assert SPLIT.train_embeddings(full).model_id == full.model_id == "random-8d-seed0"


def test_labels_one_past_the_last_class_are_rejected():
    with pytest.raises(ValueError, match=r"^dataset labels must be in \[0, 5\) or UNLABELED, got \[0, 5\]$"):
        SPLIT.targets(torch.tensor([0, 5, UNLABELED]), torch.zeros(3))
    bad = PanopticTargets(TRAIN, torch.tensor([0, 3, IGNORE]), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^target labels must be in \[0, 3\) or IGNORE, got \[-1, 0, 3\]$"):
        voxel_targets(bad, torch.arange(3), 3)


def test_points_outside_the_grid_do_not_vote_and_empty_voxels_are_no_target():
    targets = SPLIT.targets(torch.tensor([D_CAR, D_CAR, D_ROAD, D_ROAD, D_ROAD]), torch.tensor([1, 1, 0, 0, 0]))
    gt = voxel_targets(targets, torch.tensor([0, 0, -1, -1, -1]), 3)
    assert gt.labels.tolist() == [CAR] and gt.masks.tolist() == [[True, False, False]]
    assert gt.valid.tolist() == [True, False, False]


def test_one_point_and_no_point_frames():
    gt = voxel_targets(SPLIT.targets(torch.tensor([D_TRUCK]), torch.tensor([2])), torch.tensor([1]), 2)
    assert gt.labels.tolist() == [TRUCK] and gt.masks.tolist() == [[False, True]] and gt.valid.tolist() == [False, True]
    empty = SPLIT.targets(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    gt = voxel_targets(empty, torch.zeros(0, dtype=torch.long), 2)
    assert gt.masks.shape == (0, 2) and gt.labels.tolist() == [] and gt.valid.tolist() == [False, False]


def test_class_zero_and_instance_id_zero_are_ordinary_segments():
    """Stuff at training index 0 ignores its instance ids; a thing's instance 0 is an instance like 1."""
    split = ClassSplit(Vocabulary(("road", "car"), ("road",)))
    targets = split.targets(torch.tensor([0, 0, 1, 1]), torch.tensor([1, 2, 0, 1]))
    gt = voxel_targets(targets, torch.arange(4), 4)
    assert gt.labels.tolist() == [0, 1, 1] and gt.is_thing.tolist() == [False, True, True]
    assert gt.masks.tolist() == [[True, True, False, False], [False, False, True, False], [False, False, False, True]]
