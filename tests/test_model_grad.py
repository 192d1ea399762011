"""Every parameter gets a gradient from panoptic + prompt losses (deep supervision on)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rapsam_edge.model import build_model, points_to_boxes

torch.set_num_threads(1)


def _panoptic_loss(out: dict, cls_t: torch.Tensor, mask_t: torch.Tensor) -> torch.Tensor:
    loss = torch.zeros(())
    for o in [out, *out["aux"]]:
        loss = loss + F.cross_entropy(o["cls_logits"].flatten(0, 1), cls_t)
        loss = loss + F.binary_cross_entropy_with_logits(o["mask_logits"], mask_t)
    return loss


def _prompt_loss(out: dict, mask_t: torch.Tensor) -> torch.Tensor:
    loss = torch.zeros(())
    for o in [out, *out["aux"]]:
        loss = loss + F.binary_cross_entropy_with_logits(o["mask_logits"], mask_t)
        if "iou" in o:  # the initial masks have no IoU prediction
            loss = loss + F.mse_loss(o["iou"], torch.full_like(o["iou"], 0.5))
    return loss


@pytest.mark.parametrize("deform", [False, True])
def test_every_parameter_gets_gradient(deform: bool) -> None:
    torch.manual_seed(0)
    model = build_model("edge-xs", deform=deform).train()
    images = torch.rand(2, 3, 128, 128) * 255
    feats = model.encode(images)
    pan = model.decode_panoptic(feats, all_stages=True)
    n, h, w = pan["mask_logits"].shape[1:]
    cls_t = torch.randint(0, model.num_classes + 1, (2 * n,))
    mask_t = (torch.rand(2, n, h, w) > 0.5).float()
    pts = torch.rand(2, 4, 2) * 128
    prm = model.decode_prompts(feats, points_to_boxes(pts), all_stages=True)
    prm_t = (torch.rand(2, 4, h, w) > 0.5).float()
    (_panoptic_loss(pan, cls_t, mask_t) + _prompt_loss(prm, prm_t)).backward()
    no_grad = [
        k
        for k, p in model.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert not no_grad, no_grad
