"""Knowledge distillation from a trained teacher (issue 13): losses that do not depend on the
order of either model's queries, added to the ground-truth losses of ``trainer.py``.

* dense: per-pixel KL(teacher || student) between *dense class maps*. A model's dense map at a
  pixel is the sum over its queries of (class probability x mask probability), over the C
  classes and no-object, plus an "uncovered" bin relu(1 - sum_q mask probability); it is
  normalised to a distribution per pixel. Summing over queries removes the query order, so
  two models with different N and different matchings can be compared (as in the dense
  distillation of query-based segmenters, e.g. the pixel-wise KD of Mask2Former-style
  students). The student's map is resized to the teacher's when the strides differ.
* prompt: the same prompt boxes into both prompt branches; BCE between the student's mask
  logits and the teacher's mask probabilities (final stage).
* feature: F through a 1x1 conv adapter (student D -> teacher D, trained with the student and
  dropped at export) against the teacher's F, mean squared error relative to the teacher's
  mean square. The adapter exists only while this weight is above 0, so a run without it
  has the same trainable heads as plain training and can resume a plain run's checkpoint.
* object (off by default): the teacher's *objects* (queries whose largest real-class
  probability is at least ``OBJECT_SCORE``) are matched one-to-one to student queries by the
  Hungarian algorithm on the Mask2Former matching cost with the teacher's soft class and mask
  as the target; each matched pair adds T^2 KL(softmax(t / T) || softmax(s / T)) of the class
  logits, averaged over the teacher's objects (Hinton et al., "Distilling the Knowledge in a
  Neural Network", arXiv 1503.02531, at temperature T). The matching makes it independent of
  both query orders, as the set loss is.

The teacher is frozen (eval mode, no gradients); under torch.distributed every process runs
its own copy on its own batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from . import distributed as dist_utils
from .matcher import CLASS_COST, DICE_COST, MASK_COST, hungarian_match, point_mask_costs
from .points import point_sample

__all__ = [
    "OBJECT_SCORE",
    "DistillWeights",
    "dense_class_map",
    "distill_losses",
    "load_teacher",
    "object_class_kd",
]

_EPS = 1e-6


OBJECT_SCORE = 0.5  # a teacher query is an object when a real class has at least this prob


@dataclass(frozen=True)
class DistillWeights:
    dense: float = 1.0
    prompt: float = 1.0
    feature: float = 1.0
    object: float = 0.0
    temperature: float = 2.0  # of the object term's class KL


def dense_class_map(cls_logits: Tensor, mask_logits: Tensor) -> Tensor:
    """Query-order-free per-pixel class distribution.

    Arguments:
      cls_logits: B x N x (C + 1) (last = no-object).
      mask_logits: B x N x h x w.

    Returns:
      B x (C + 2) x h x w, each pixel a distribution: C classes, no-object, uncovered.
    """
    probs = cls_logits.float().softmax(-1)
    masks = mask_logits.float().sigmoid()
    dense = torch.einsum("bnc,bnhw->bchw", probs, masks)
    uncovered = (1.0 - masks.sum(1, keepdim=True)).clamp(min=0.0)
    dense = torch.cat((dense, uncovered), dim=1) + _EPS
    return dense / dense.sum(1, keepdim=True)


def object_class_kd(
    s_cls: Tensor,
    s_masks: Tensor,
    t_cls: Tensor,
    t_masks: Tensor,
    *,
    temperature: float,
    num_points: int = 1024,
) -> Tensor:
    """Class KL over student queries matched to the teacher's objects (module docstring).

    Arguments:
      s_cls / t_cls: B x N_s x (C + 1) / B x N_t x (C + 1) class logits (last = no-object).
      s_masks / t_masks: B x N_s x h x w / B x N_t x h' x w' mask logits over the same image
        extent (strides may differ: both are sampled at the same normalised points).
      temperature: T > 0 of the softened distributions.
    Returns:
      scalar: sum over matched pairs of T^2 KL, divided by the number of teacher objects
      (under torch.distributed: their mean over processes), 0 with a gradient path when the
      teacher sees no object. Gradients reach only ``s_cls``.
    Raises:
      ValueError: temperature <= 0.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    t_cls = t_cls.detach().float()
    t_prob = t_cls.softmax(-1)
    total, count = (s_cls.float() * 0.0).sum(), 0
    for b in range(s_cls.shape[0]):
        objects = torch.nonzero(t_prob[b, :, :-1].amax(-1) >= OBJECT_SCORE).flatten()
        if objects.numel() == 0:
            continue
        with torch.no_grad():
            coords = torch.rand(1, num_points, 2, device=s_masks.device)
            sp = point_sample(s_masks[b][None].float(), coords)[0]  # N_s x P
            tp = point_sample(t_masks[b, objects][None].float(), coords)[0].sigmoid()  # K x P
            s_logp = s_cls[b].float().log_softmax(-1)
            cost_class = -(s_logp @ t_prob[b, objects].T)  # N_s x K, soft cross-entropy
            cost_mask, cost_dice = point_mask_costs(sp, tp)
            cost = CLASS_COST * cost_class + MASK_COST * cost_mask + DICE_COST * cost_dice
            rows, cols = hungarian_match(cost)
        log_p = (t_cls[b, objects[cols]] / temperature).log_softmax(-1)
        log_q = (s_cls[b, rows].float() / temperature).log_softmax(-1)
        kl = F.kl_div(log_q, log_p, reduction="sum", log_target=True)
        total = total + kl * temperature**2
        count += int(objects.numel())
    # objects per process averaged over processes, as the set loss normalises by its masks
    return total / max(dist_utils.mean_over_processes(float(count)), 1.0)


def _resize_to(x: Tensor, ref: Tensor) -> Tensor:
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def distill_losses(
    student: dict, teacher: dict, adapted_feats: Tensor | None, weights: DistillWeights
) -> dict[str, Tensor]:
    """KD losses (see module docstring).

    Arguments:
      student / teacher: {"panoptic": decode_panoptic output, "prompts": decode_prompts
        output (final stage keys at the top level), "feats": B x D x h x w} (teacher: no grad).
      adapted_feats: the student's F through the adapter, B x D_teacher x h x w; None when
        the feature weight is 0 (no adapter).
    Returns:
      {"loss_kd_dense", "loss_kd_prompt", "loss_kd_feat"} scalars (weighted), and
      "loss_kd_object" when its weight is above 0.
    """
    s_pan, t_pan = student["panoptic"], teacher["panoptic"]
    t_dense = dense_class_map(t_pan["cls_logits"], t_pan["mask_logits"])
    s_dense = dense_class_map(
        s_pan["cls_logits"], _resize_to(s_pan["mask_logits"], t_pan["mask_logits"])
    )
    kl = (t_dense * (t_dense.log() - s_dense.log())).sum(1).mean()
    s_prompt = _resize_to(student["prompts"]["mask_logits"], teacher["prompts"]["mask_logits"])
    prompt = F.binary_cross_entropy_with_logits(
        s_prompt, teacher["prompts"]["mask_logits"].sigmoid()
    )
    t_feats = teacher["feats"]
    if adapted_feats is None:
        feat = kl * 0.0
    else:
        adapted = _resize_to(adapted_feats, t_feats)
        feat = F.mse_loss(adapted, t_feats) / (t_feats.pow(2).mean() + _EPS)
    losses = {
        "loss_kd_dense": weights.dense * kl,
        "loss_kd_prompt": weights.prompt * prompt,
        "loss_kd_feat": weights.feature * feat,
    }
    if weights.object > 0:
        losses["loss_kd_object"] = weights.object * object_class_kd(
            s_pan["cls_logits"],
            s_pan["mask_logits"],
            t_pan["cls_logits"],
            t_pan["mask_logits"],
            temperature=weights.temperature,
        )
    return losses


def load_teacher(path: str | Path, *, num_classes: int | None = None) -> nn.Module:
    """A trained run directory (or ``model.safetensors``) as a frozen teacher (eval mode, no
    gradients); used by ``distill`` and by the trunk swap of ``pretrain --teacher``.

    Raises:
      ConfigError: nothing loadable there (missing files, unknown variant, bad JSON, another
        format version: a teacher is a command-line input), or its class count differs from
        ``num_classes`` (the dataset's) when that is given."""
    from ..model.io import load_model

    try:
        teacher = load_model(path).eval()
    except (OSError, KeyError, ValueError) as e:  # missing / unknown variant / bad JSON, format
        raise ConfigError(
            f"no trained model at {path}: {type(e).__name__}: {e}",
            hint="a `rapsam-edge train` output directory (model.safetensors + config.json)",
        ) from e
    if num_classes is not None and teacher.num_classes != num_classes:
        raise ConfigError(
            f"teacher {path} has {teacher.num_classes} classes, the dataset {num_classes}",
            hint="distil on the data the teacher was trained on",
        )
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
