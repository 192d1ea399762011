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
  mean square.

The teacher is frozen (eval mode, no gradients); under torch.distributed every process runs
its own copy on its own batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["DistillWeights", "dense_class_map", "distill_losses", "load_teacher"]

_EPS = 1e-6


@dataclass(frozen=True)
class DistillWeights:
    dense: float = 1.0
    prompt: float = 1.0
    feature: float = 1.0


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


def _resize_to(x: Tensor, ref: Tensor) -> Tensor:
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def distill_losses(
    student: dict, teacher: dict, adapted_feats: Tensor, weights: DistillWeights
) -> dict[str, Tensor]:
    """KD losses (see module docstring).

    Arguments:
      student / teacher: {"panoptic": decode_panoptic output, "prompts": decode_prompts
        output (final stage keys at the top level), "feats": B x D x h x w} (teacher: no grad).
      adapted_feats: the student's F through the adapter, B x D_teacher x h x w.
    Returns:
      {"loss_kd_dense", "loss_kd_prompt", "loss_kd_feat"} scalars (weighted).
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
    feat = F.mse_loss(_resize_to(adapted_feats, t_feats), t_feats) / (t_feats.pow(2).mean() + _EPS)
    return {
        "loss_kd_dense": weights.dense * kl,
        "loss_kd_prompt": weights.prompt * prompt,
        "loss_kd_feat": weights.feature * feat,
    }


def load_teacher(path: str, *, num_classes: int) -> nn.Module:
    """A trained run directory (or ``model.safetensors``) as a frozen teacher.

    Raises:
      ConfigError: its class count differs from the dataset's."""
    from ..model.io import load_model

    teacher = load_model(path).eval()
    if teacher.num_classes != num_classes:
        raise ConfigError(
            f"teacher {path} has {teacher.num_classes} classes, the dataset {num_classes}",
            hint="distil on the data the teacher was trained on",
        )
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
