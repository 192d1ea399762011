"""Hungarian matching of predicted queries to ground-truth segments (Mask2Former costs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..ops import linear_assignment
from .points import point_sample

# Mask2Former's matching cost weights (class, mask BCE, Dice)
CLASS_COST, MASK_COST, DICE_COST = 2.0, 5.0, 5.0


@torch.no_grad()
def point_mask_costs(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise mask costs at shared points: pred N x P logits, target G x P in [0, 1] (hard
    or soft) -> (mean BCE, Dice), each N x G."""
    # pairwise BCE: target 1 costs softplus(-x), target 0 costs softplus(x)
    pos, neg = F.softplus(-pred), F.softplus(pred)
    cost_mask = (pos @ target.T + neg @ (1 - target).T) / pred.shape[-1]
    prob = pred.sigmoid()
    cost_dice = 1 - (2 * prob @ target.T + 1) / (prob.sum(-1)[:, None] + target.sum(-1)[None] + 1)
    return cost_mask, cost_dice


@torch.no_grad()
def match_costs(
    cls_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    gt_classes: torch.Tensor,
    gt_masks: torch.Tensor,
    *,
    num_points: int,
    class_weight: float = CLASS_COST,
    mask_weight: float = MASK_COST,
    dice_weight: float = DICE_COST,
) -> torch.Tensor:
    """N x G cost matrix for one image.

    cls_logits: N x (C+1); mask_logits: N x h x w; gt_classes: G (long); gt_masks: G x H x W
    (both mask sets cover the same padded image extent). Mask costs use ``num_points``
    uniform random points shared by predictions and ground truth.
    """
    coords = torch.rand(1, num_points, 2, device=mask_logits.device)
    pred = point_sample(mask_logits[None].float(), coords)[0]  # N x P
    gt = point_sample(gt_masks[None].float(), coords)[0]  # G x P
    cost_class = -cls_logits.float().softmax(-1)[:, gt_classes]
    cost_mask, cost_dice = point_mask_costs(pred, gt)
    return class_weight * cost_class + mask_weight * cost_mask + dice_weight * cost_dice


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal (pred_idx, gt_idx) for an N x G cost matrix, via the C++ core's assignment."""
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    rows, cols = linear_assignment(np.ascontiguousarray(cost.cpu().double().numpy()))
    return torch.from_numpy(rows), torch.from_numpy(cols)
