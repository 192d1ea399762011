"""Losses of the reference: class CE with a no-object weight, mask BCE + Dice on
importance-sampled points (matched queries), and the prompt branch (BCE + Dice + IoU MSE)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .matcher import hungarian_match, match_costs
from .points import point_sample, uncertain_points


@dataclass(frozen=True)
class LossWeights:
    cls: float = 2.0
    mask: float = 5.0
    dice: float = 5.0
    iou: float = 10.0
    no_object: float = 0.1
    num_points: int = 12544


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """K x P point logits and targets -> summed soft Dice loss / num_masks."""
    prob = logits.sigmoid()
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """K x P point logits and targets -> mean-over-points BCE summed over masks / num_masks."""
    return (
        F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum()
        / num_masks
    )


def _point_losses(
    pred_masks: torch.Tensor, gt_masks: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """K x h x w predicted logits and K x H x W targets -> (point logits, point targets)."""
    with torch.no_grad():
        coords = uncertain_points(pred_masks[:, None].detach(), num_points)
        targets = point_sample(gt_masks[:, None].float(), coords).squeeze(1)
    logits = point_sample(pred_masks[:, None], coords).squeeze(1)
    return logits, targets


def set_loss(
    outputs: Sequence[dict[str, torch.Tensor]],
    targets: Sequence[dict[str, torch.Tensor]],
    weights: LossWeights,
    num_masks: float,
) -> dict[str, torch.Tensor]:
    """Set prediction loss summed over decoder outputs (final + auxiliary stages).

    outputs: dicts with cls_logits B x N x (C+1) and mask_logits B x N x h x w;
    targets: one dict per image with classes (G, long) and masks (G x H x W bool/float).
    num_masks: ground-truth segments in the batch (averaged over processes for DDP).
    """
    totals = {"loss_cls": 0.0, "loss_mask": 0.0, "loss_dice": 0.0}
    for out in outputs:
        cls_logits, mask_logits = out["cls_logits"], out["mask_logits"]
        n_cls = cls_logits.shape[-1] - 1
        class_weight = torch.ones(n_cls + 1, device=cls_logits.device)
        class_weight[-1] = weights.no_object
        cls_targets = torch.full(
            cls_logits.shape[:2], n_cls, dtype=torch.long, device=cls_logits.device
        )
        matched_pred, matched_gt = [], []
        for b, tgt in enumerate(targets):
            if len(tgt["classes"]) == 0:
                continue
            cost = match_costs(
                cls_logits[b].detach(),
                mask_logits[b].detach(),
                tgt["classes"],
                tgt["masks"],
                num_points=weights.num_points,
                class_weight=weights.cls,
                mask_weight=weights.mask,
                dice_weight=weights.dice,
            )
            rows, cols = hungarian_match(cost)
            cls_targets[b, rows] = tgt["classes"][cols]
            matched_pred.append(mask_logits[b, rows])
            matched_gt.append(tgt["masks"][cols])
        ce = F.cross_entropy(cls_logits.transpose(1, 2), cls_targets, weight=class_weight)
        totals["loss_cls"] = totals["loss_cls"] + weights.cls * ce
        if matched_pred:
            logits, point_targets = _point_losses(
                torch.cat(matched_pred), torch.cat(matched_gt), weights.num_points
            )
            totals["loss_mask"] = totals["loss_mask"] + weights.mask * bce_loss(
                logits, point_targets, num_masks
            )
            totals["loss_dice"] = totals["loss_dice"] + weights.dice * dice_loss(
                logits, point_targets, num_masks
            )
        else:  # keep every parameter in the graph (DDP) even without ground truth
            totals["loss_mask"] = totals["loss_mask"] + 0.0 * mask_logits.sum()
    return totals  # type: ignore[return-value]


def semantic_loss(
    logits: torch.Tensor, targets: Sequence[dict[str, torch.Tensor]], weight: float
) -> torch.Tensor:
    """Per-pixel class cross-entropy on the feature map (a training-only auxiliary head: it
    makes F class-aware, which mask pooling then hands to the queries).

    logits: B x C x h x w; targets: per image classes (G) and masks (G x H x W), H = h * s.
    A cell's label is the segment covering most of it; cells less than half covered by any
    segment (void) are ignored.
    """
    b, _, h, w = logits.shape
    labels = torch.full((b, h, w), -100, dtype=torch.long, device=logits.device)
    for i, tgt in enumerate(targets):
        if len(tgt["classes"]) == 0:
            continue
        cover = F.adaptive_avg_pool2d(tgt["masks"].float()[None], (h, w))[0]  # G x h x w
        best, idx = cover.max(0)
        labels[i] = torch.where(best >= 0.5, tgt["classes"][idx], labels[i])
    if not (labels >= 0).any():
        return 0.0 * logits.sum()
    return weight * F.cross_entropy(logits, labels, ignore_index=-100)


def prompt_loss(
    outputs: Sequence[dict[str, torch.Tensor]],
    gt_masks: torch.Tensor,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """Prompt branch: no matching (prompt i predicts target i). outputs: dicts with
    mask_logits B x P x h x w and (final output) iou B x P; gt_masks: B x P x H x W."""
    b, p = gt_masks.shape[:2]
    num_masks = float(max(b * p, 1))
    flat_gt = gt_masks.flatten(0, 1)
    totals = {"loss_prompt_mask": 0.0, "loss_prompt_dice": 0.0, "loss_prompt_iou": 0.0}
    for out in outputs:
        logits, point_targets = _point_losses(
            out["mask_logits"].flatten(0, 1), flat_gt, weights.num_points
        )
        totals["loss_prompt_mask"] = totals["loss_prompt_mask"] + weights.mask * bce_loss(
            logits, point_targets, num_masks
        )
        totals["loss_prompt_dice"] = totals["loss_prompt_dice"] + weights.dice * dice_loss(
            logits, point_targets, num_masks
        )
        if "iou" in out:
            with torch.no_grad():
                prob = logits.sigmoid()
                soft_dice = (2 * (prob * point_targets).sum(-1) + 1) / (
                    prob.sum(-1) + point_targets.sum(-1) + 1
                )
            mse = F.mse_loss(out["iou"].flatten(), soft_dice)
            totals["loss_prompt_iou"] = totals["loss_prompt_iou"] + weights.iou * mse
    return totals  # type: ignore[return-value]
