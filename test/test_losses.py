"""Matching and losses on hand-built network outputs: perfect predictions cost ~0, wrong ones cost more."""
import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.core.model.losses import LossConfig, PanopticLoss, hungarian_match, voxel_targets

BIG = 20.0
CAR, TRUCK, ROAD = 0, 1, 2
STUFF = torch.tensor([ROAD])
# 9 voxels, one point each: car = 0,1; truck = 2,3; road = 4..7; voxel 8 is unlabelled (ignored).
LABELS = torch.tensor([CAR, CAR, TRUCK, TRUCK, ROAD, ROAD, ROAD, ROAD, UNLABELED])
INSTANCES = torch.tensor([1, 1, 2, 2, 0, 0, 0, 0, 0])
TARGETS = {"labels": LABELS, "instance_ids": INSTANCES}
E = torch.eye(4)  # CLIP directions: car, truck, road, other


def _mask_row(voxels):
    row = torch.full((9,), -BIG)
    row[list(voxels)] = BIG
    return row


def _class_row(cls=None):
    row = torch.full((3,), -BIG)
    if cls is not None:
        row[cls] = BIG
    return row


def perfect_outputs(layers=1):
    """Thing queries 0..2 (query 0 = truck, 1 = empty, 2 = car), then the road stuff query."""
    masks = torch.stack([_mask_row([2, 3]), _mask_row([]), _mask_row([0, 1]), _mask_row([4, 5, 6, 7])])
    classes = torch.stack([_class_row(TRUCK), _class_row(), _class_row(CAR), _class_row(ROAD)])
    embed = torch.stack([E[1], E[3], E[0], E[2]])
    clip_mean = torch.stack([E[0], E[0], E[1], E[1], E[2], E[2], E[2], torch.zeros(4), E[3]])
    seen_count = torch.tensor([1, 1, 1, 1, 1, 1, 1, 0, 1])
    clip = F.normalize(clip_mean, dim=1)
    return {
        "mask_logits": [masks.clone() for _ in range(layers)],
        "class_logits": [classes.clone() for _ in range(layers)],
        "class_embed": [embed.clone() for _ in range(layers)],
        "stuff_classes": STUFF,
        "num_thing_queries": 3,
        "voxel_embed": clip.clone(),
        "voxel_clip": clip,
        "voxel_clip_mean": clip_mean,
        "voxel_seen_count": seen_count,
        "point_to_voxel": torch.arange(9),
    }


def test_voxel_targets_majority_vote_and_ignore():
    labels = torch.tensor([CAR, CAR, ROAD, ROAD, UNLABELED, UNLABELED])
    instances = torch.tensor([7, 7, 0, 0, 0, 0])
    p2v = torch.tensor([0, 0, 0, 1, 2, -1])  # voxel 0: 2 car + 1 road; voxel 2: only unlabelled
    gt = voxel_targets(labels, instances, p2v, 3, STUFF, 3)
    assert gt.thing_masks.tolist() == [[True, False, False]] and gt.thing_labels.tolist() == [CAR]
    assert gt.stuff_masks.tolist() == [[False, True, False]]
    assert gt.valid.tolist() == [True, True, False]


def test_voxel_targets_split_instances_of_one_class_and_ignore_stuff_instance_ids():
    labels = torch.tensor([CAR, CAR, ROAD, ROAD])
    instances = torch.tensor([1, 2, 5, 6])  # two cars; stray instance ids on road must not split it
    gt = voxel_targets(labels, instances, torch.arange(4), 4, STUFF, 3)
    assert gt.thing_masks.shape == (2, 4) and gt.thing_labels.tolist() == [CAR, CAR]
    assert gt.stuff_masks.tolist() == [[False, False, True, True]]


def test_hungarian_matching_hand_case():
    out = perfect_outputs()
    gt = voxel_targets(LABELS, INSTANCES, torch.arange(9), 9, STUFF, 3)
    assert gt.thing_labels.tolist() == [CAR, TRUCK]
    rows, cols = hungarian_match(out["class_logits"][0][:3], out["mask_logits"][0][:3], gt.thing_labels,
                                 gt.thing_masks, LossConfig())
    assert dict(zip(rows.tolist(), gt.thing_labels[cols].tolist())) == {0: TRUCK, 2: CAR}


def test_matching_follows_masks_when_classes_tie():
    out = perfect_outputs()
    classes = out["class_logits"][0][:3].clone()
    classes[0], classes[2] = _class_row(CAR), _class_row(CAR)  # same class for both: masks decide
    gt = voxel_targets(torch.tensor([CAR, CAR, CAR, CAR]), torch.tensor([1, 1, 2, 2]), torch.arange(4), 4, STUFF, 3)
    masks = torch.stack([_mask_row([2, 3])[:4], _mask_row([])[:4], _mask_row([0, 1])[:4]])
    rows, cols = hungarian_match(classes, masks, gt.thing_labels, gt.thing_masks, LossConfig())
    matched = {r: gt.thing_masks[c].nonzero().flatten().tolist() for r, c in zip(rows.tolist(), cols.tolist())}
    assert matched == {0: [2, 3], 2: [0, 1]}


def test_perfect_prediction_costs_nearly_nothing():
    losses = PanopticLoss()(perfect_outputs(), TARGETS)
    assert set(losses) == {"cls", "mask", "dice", "object_distill", "voxel_distill", "total"}
    for name, value in losses.items():
        assert value.item() < 1e-3, name


def _worse(mutate, name):
    perfect = PanopticLoss()(perfect_outputs(), TARGETS)
    out = perfect_outputs()
    mutate(out)
    worse = PanopticLoss()(out, TARGETS)
    assert worse[name] > perfect[name] + 0.05, name
    assert worse["total"] > perfect["total"] + 0.05
    return worse


def test_wrong_class_raises_class_loss():
    _worse(lambda o: o["class_logits"][0].__setitem__(0, _class_row(CAR)), "cls")


def test_unmatched_query_claiming_a_class_raises_class_loss():
    _worse(lambda o: o["class_logits"][0].__setitem__(1, _class_row(TRUCK)), "cls")


def test_wrong_mask_raises_mask_and_dice_losses():
    out = _worse(lambda o: o["mask_logits"][0].__setitem__(0, _mask_row([3, 4])), "mask")
    assert out["dice"] > 0.1  # one of three supervised masks is 40% off


def test_wrong_stuff_mask_raises_dice_loss():
    _worse(lambda o: o["mask_logits"][0].__setitem__(3, _mask_row([4, 5])), "dice")


def test_wrong_class_embedding_raises_object_distillation():
    _worse(lambda o: o["class_embed"][0].__setitem__(0, E[0]), "object_distill")


def test_wrong_voxel_embedding_raises_voxel_distillation():
    out = _worse(lambda o: o.__setitem__("voxel_embed", -o["voxel_clip"]), "voxel_distill")
    torch.testing.assert_close(out["voxel_distill"], torch.tensor(2.0))


def test_predictions_on_ignored_and_unseen_voxels_are_free():
    out = perfect_outputs()
    out["mask_logits"][0][0, 8] = BIG  # truck query also covers the unlabelled voxel
    out["voxel_embed"] = out["voxel_embed"].clone()
    out["voxel_embed"][7] = torch.tensor([0.0, 0.0, 0.0, 1.0])  # voxel 7 was never seen by a camera
    losses = PanopticLoss()(out, TARGETS)
    assert losses["mask"].item() < 1e-3 and losses["dice"].item() < 1e-3 and losses["voxel_distill"].item() < 1e-3


def test_absent_stuff_class_must_not_be_claimed():
    no_road = {"labels": torch.where(LABELS == ROAD, UNLABELED, LABELS), "instance_ids": INSTANCES}
    out = perfect_outputs()
    claimed = PanopticLoss()(out, no_road)["cls"]
    out["class_logits"][0][3] = _class_row()
    silent = PanopticLoss()(out, no_road)["cls"]
    assert claimed > silent + 0.05 and silent < 1e-3


def test_deep_supervision_counts_every_decoder_output():
    out = perfect_outputs(layers=3)
    out["mask_logits"][0][0] = _mask_row([5, 6])  # only the first (initial-query) output is wrong
    deep = PanopticLoss()(out, TARGETS)
    last = PanopticLoss(LossConfig(deep_supervision=False))(out, TARGETS)
    assert deep["dice"] > 0.2 and last["dice"] < 1e-3


def test_gradients_are_finite_and_reach_every_prediction():
    gen = torch.Generator().manual_seed(0)
    out = perfect_outputs(layers=2)
    leaves = []
    for key in ("mask_logits", "class_logits", "class_embed"):
        out[key] = [torch.randn(t.shape, generator=gen).requires_grad_() for t in out[key]]
        leaves += out[key]
    out["voxel_embed"] = torch.randn(9, 4, generator=gen).requires_grad_()
    leaves.append(out["voxel_embed"])
    PanopticLoss()(out, TARGETS)["total"].backward()
    for t in leaves:
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_frame_without_labels_still_gives_a_finite_loss():
    out = perfect_outputs()
    empty = {"labels": torch.full((9,), UNLABELED), "instance_ids": torch.zeros(9, dtype=torch.long)}
    losses = PanopticLoss()(out, empty)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["mask"].item() == 0.0 and losses["object_distill"].item() == 0.0


def test_bad_targets_are_named():
    with pytest.raises(ValueError, match="one label and instance id per point"):
        PanopticLoss()(perfect_outputs(), {"labels": LABELS[:5], "instance_ids": INSTANCES[:5]})
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        PanopticLoss()(perfect_outputs(), {"labels": torch.full((9,), 7), "instance_ids": INSTANCES})
