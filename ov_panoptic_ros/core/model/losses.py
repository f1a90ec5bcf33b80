"""The training loss: P3Former's supervised panoptic losses on base classes plus the paper's distillations.

`PanopticLoss(config.loss)(outputs, targets)` with `outputs` from `PanopticNetwork.forward` called with the
training vocabulary's embeddings and `targets` from `ClassSplit.targets` (labels in that vocabulary, novel
and unlabelled points IGNORE). Returns 'cls', 'mask', 'dice', 'object_distill', 'voxel_distill' (each
unweighted, summed over the supervised decoder outputs), 'position_dice' (zero without head.position_aware)
and 'total' (weighted sum).

Per decoder output:
- Learnable queries <-> ground-truth thing instances by Hungarian matching (matching.py). Base-stuff
  query s is assigned its class for good; it is supervised when that class is present in the frame.
- Class: sigmoid focal loss (alpha 0.25, gamma 4) over every query x training class; matched and present
  queries have their class positive, all else negative. Divided by the number of supervised queries.
- Masks: sigmoid focal (gamma 2; mean over valid voxels) and dice per supervised query, divided by the
  number of supervised queries. Voxels whose majority is IGNORE are left out (with loss.stuff_masks_exclusive,
  not for base-stuff queries: there they are negatives).
- Object-level distillation (terms.py) for every supervised query.
- With head.position_aware, 'position_dice': dice of the position-only mask term against the same targets
  (P3Former), so position alone must already outline each object.
The first output (initial queries) is matched and supervised on masks only, as in P3Former, where it has
no class prediction. Voxel-level distillation (terms.py) is computed once, on the last output.
"""
from __future__ import annotations

import torch

from ov_panoptic_ros.core.config import LossConfig
from ov_panoptic_ros.core.model.matching import hungarian_match
from ov_panoptic_ros.core.model.outputs import NetworkOutputs
from ov_panoptic_ros.core.model.targets import PanopticTargets, VoxelTargets, voxel_targets
from ov_panoptic_ros.core.model.terms import dice_loss, object_distill, sigmoid_focal, voxel_distill

TERMS = ("cls", "mask", "dice", "object_distill", "voxel_distill", "position_dice")


def stuff_query_classes(outputs: NetworkOutputs, targets: PanopticTargets) -> torch.Tensor:
    """(S,) the training-vocabulary class of each base-stuff query, found by name."""
    vocab = targets.vocabulary
    if tuple(outputs.vocabulary.classes) != tuple(vocab.classes):
        raise ValueError(f"the network scored the vocabulary {outputs.vocabulary.names} but the targets index"
                         f" {vocab.names}: run forward with the training vocabulary's embeddings")
    index = {name.lower(): c for c, name in enumerate(vocab.names) if vocab.is_stuff[c]}
    missing = [n for n in outputs.stuff_names if n.lower() not in index]
    if missing:
        raise ValueError(f"the network's base-stuff queries {missing} have no stuff class in the training"
                         f" vocabulary {vocab.names}; train with the vocabulary the network was built for")
    return torch.tensor([index[n.lower()] for n in outputs.stuff_names], dtype=torch.long,
                        device=outputs.point_to_voxel.device)


class PanopticLoss:
    def __init__(self, cfg: LossConfig | None = None):
        self.cfg = cfg or LossConfig()

    def __call__(self, outputs: NetworkOutputs, targets: PanopticTargets) -> dict[str, torch.Tensor]:
        stuff_classes = stuff_query_classes(outputs, targets)
        gt = voxel_targets(targets, outputs.point_to_voxel, outputs.num_voxels)
        last = len(outputs.mask_logits) - 1
        totals = {name: outputs.mask_logits[last].sum() * 0.0 for name in TERMS}
        for i in range(last + 1) if self.cfg.deep_supervision else [last]:
            for name, value in self.output_losses(outputs, i, gt, stuff_classes).items():
                totals[name] = totals[name] + value
        totals["voxel_distill"] = voxel_distill(outputs.mask_logits[last], outputs.class_embed[last],
                                                outputs.voxel_clip, outputs.voxel_seen, self.cfg.voxel_distill_distance)
        c = self.cfg
        totals["total"] = (c.class_weight * totals["cls"] + c.mask_weight * totals["mask"]
                           + c.dice_weight * totals["dice"] + c.object_distill_weight * totals["object_distill"]
                           + c.voxel_distill_weight * totals["voxel_distill"]
                           + c.position_dice_weight * totals["position_dice"])
        return totals

    def supervised(self, outputs: NetworkOutputs, i: int, gt: VoxelTargets, stuff_classes: torch.Tensor):
        """(query rows, their GT masks (M, V), their classes): matched learnable queries, present stuff queries."""
        n = outputs.num_learned_queries
        things = torch.nonzero(gt.is_thing, as_tuple=False).flatten()
        query, match = hungarian_match(outputs.class_logits[i][:n], outputs.mask_logits[i][:n][:, gt.valid],
                                       gt.labels[things], gt.masks[things][:, gt.valid], self.cfg, use_class=i > 0)
        stuff_segment = (gt.labels.unsqueeze(0) == stuff_classes.unsqueeze(1)) & ~gt.is_thing.unsqueeze(0)
        stuff_rows, segment = torch.nonzero(stuff_segment, as_tuple=True)  # at most one segment per stuff class
        rows = torch.cat([query, n + stuff_rows])
        chosen = torch.cat([things[match], segment])
        return rows, gt.masks[chosen], gt.labels[chosen]

    def stuff_mask_columns(self, gt: VoxelTargets) -> torch.Tensor:
        """The voxels a base-stuff query's mask is supervised on: the labelled ones (the paper: unlabelled voxels,
        novel classes among them, are ignored), or every voxel with loss.stuff_masks_exclusive."""
        return torch.ones_like(gt.valid) if self.cfg.stuff_masks_exclusive else gt.valid

    def output_losses(self, outputs: NetworkOutputs, i: int, gt: VoxelTargets, stuff_classes: torch.Tensor) -> dict:
        c = self.cfg
        mask_logits, class_logits, class_embed = outputs.mask_logits[i], outputs.class_logits[i], outputs.class_embed[i]
        rows, masks, classes = self.supervised(outputs, i, gt, stuff_classes)
        num = max(1, rows.numel())
        losses = {}
        if i > 0:
            class_targets = torch.zeros_like(class_logits)
            class_targets[rows, classes] = 1.0
            focal = sigmoid_focal(class_logits, class_targets, c.class_focal_alpha, c.class_focal_gamma)
            losses["cls"] = focal.sum() / num
        if rows.numel() == 0:
            return losses
        stuff = rows >= outputs.num_learned_queries
        position_logits = outputs.position_mask_logits[i] if outputs.position_mask_logits is not None else None
        losses["mask"], losses["dice"] = 0.0, 0.0
        for group, columns in ((~stuff, gt.valid), (stuff, self.stuff_mask_columns(gt))):
            pred, target = mask_logits[rows[group]][:, columns], masks[group][:, columns].float()
            focal = sigmoid_focal(pred, target, c.mask_focal_alpha, c.mask_focal_gamma)
            losses["mask"] = losses["mask"] + focal.mean(dim=1).sum() / num
            losses["dice"] = losses["dice"] + dice_loss(pred, target).sum() / num
            if position_logits is not None:
                position = dice_loss(position_logits[rows[group]][:, columns], target).sum() / num
                losses["position_dice"] = losses.get("position_dice", 0.0) + position
        if i > 0:
            losses["object_distill"] = object_distill(class_embed[rows], mask_logits[rows], outputs.voxel_clip,
                                                      outputs.voxel_seen, c.object_distill_pooling)
        return losses
