"""Trunk swap by feature distillation: `rapsam-edge pretrain --teacher DIR`.

Why (issue 14): the real-time variant ``edge-s-fused`` differs from the trained ``edge-s`` only
in its first four trunk stages (Fused-MBConv instead of expansion + depthwise). Training it
like edge-s (trunk pretraining + 2000 full-model steps) costs about four CPU hours here. The
teacher's neck, decoders and unchanged trunk stages already work; only the new blocks must
learn to produce the features those layers expect. So the student trunk starts from every
teacher trunk tensor of the same name and shape, and learns to reproduce the teacher trunk's
outputs C2..C5 on generated scenes (block-wise replacement by feature regression, as in
"Blockwisely Supervised Neural Architecture Search with Knowledge Distillation", Li et al.,
CVPR 2020 / arXiv 1911.13053). The full model is then fine-tuned with the task loss
(``rapsam-edge train --init-weights DIR`` or ``rapsam-edge distill``).

Loss per batch: sum over the taps of ||s - t||^2 / ||t||^2 (MSE normalised by the teacher
feature's mean square, so the four taps weigh alike whatever their scale).

Every student trunk tensor trains, copied ones included, with BatchNorm on batch statistics as
in the full model's training (the teacher runs in eval mode on its running statistics). So the
loss has a floor above 0 even for an exact copy, and the copied stages adapt to the new blocks
instead of being frozen; the fine-tuning of the whole model that follows re-estimates every
running statistic at the training resolution.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["TrunkFeatureKD", "copy_teacher_trunk", "graft", "save_grafted"]


def copy_teacher_trunk(teacher: nn.Module, trunk: nn.Module) -> tuple[nn.Module, list[str]]:
    """Copy ``teacher``'s trunk tensors of the same name and shape into ``trunk`` (in place)
    and return (the teacher's trunk, frozen, in eval mode; the names of ``trunk``'s tensors
    that were not copied).

    Raises:
      ConfigError: the teacher trunk's output channels differ from ``trunk``'s (the teacher's
        neck could not take the student's features), or no tensor fits."""
    t_trunk = teacher.backbone
    if tuple(t_trunk.out_channels) != tuple(trunk.out_channels):
        raise ConfigError(
            f"teacher trunk channels {tuple(t_trunk.out_channels)} differ from the student's "
            f"{tuple(trunk.out_channels)}",
            hint="distil into a variant with the teacher's trunk widths",
        )
    saved = t_trunk.state_dict()
    fresh = []
    with torch.no_grad():
        for name, target in trunk.state_dict().items():
            old = saved.get(name)
            if old is not None and old.shape == target.shape:
                target.copy_(old)
            else:
                fresh.append(name)
    if len(fresh) == len(trunk.state_dict()):
        raise ConfigError(
            f"no trunk tensor of the teacher ({teacher.config['variant']}) fits the student's "
            "(different layer names?)",
            hint="distil between trunks of the same family (e.g. edge-s -> edge-s-fused)",
        )
    return t_trunk.eval().requires_grad_(False), fresh


class TrunkFeatureKD:
    """The objective of ``pretrain --teacher``: normalised MSE to the teacher's C2..C5.

    ``loss(images, feats)``: images B x 3 x H x W (normalised), feats the student's
    [C2, C3, C4, C5] -> scalar loss; per-tap relative errors accumulate for ``stats``."""

    def __init__(self, teacher_trunk: nn.Module) -> None:
        self.teacher = teacher_trunk.eval().requires_grad_(False)
        self._sums = [0.0, 0.0, 0.0, 0.0]
        self._count = 0

    def loss(self, images: Tensor, feats: list[Tensor]) -> Tensor:
        with torch.no_grad():
            targets = self.teacher(images)
        parts = [
            (s - t).pow(2).mean() / t.pow(2).mean().clamp_min(1e-12)
            for s, t in zip(feats, targets, strict=True)
        ]
        for i, p in enumerate(parts):
            self._sums[i] += float(p.detach())
        self._count += 1
        return torch.stack(parts).sum()

    def stats(self) -> dict:
        """Mean relative squared error per tap since the last call (then reset)."""
        n = max(1, self._count)
        out = {f"rel_err_c{i + 2}": round(s / n, 5) for i, s in enumerate(self._sums)}
        self._sums, self._count = [0.0, 0.0, 0.0, 0.0], 0
        return out


def graft(teacher: nn.Module, variant: str) -> nn.Module:
    """The ``variant`` model with ``teacher``'s neck, decoders and class vocabulary (every
    non-trunk parameter and buffer copied) and a fresh trunk: ``save_grafted`` fills the trunk
    in. Built once per run, before training, so a mismatch fails at once.

    Raises:
      ConfigError: an unknown ``variant``, or one whose non-trunk tensors differ from the
        teacher's in name or shape."""
    from ..model.variants import VARIANTS, build_model

    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    model = build_model(
        variant,
        num_classes=teacher.num_classes,
        deform=teacher.config["deform"],
        class_prototypes=teacher.config["class_prototypes"],
    )
    saved = {k: v for k, v in teacher.state_dict().items() if not k.startswith("backbone.")}
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    bad = sorted(set(saved) ^ set(state)) + sorted(
        k for k in set(saved) & set(state) if saved[k].shape != state[k].shape
    )
    if bad:
        raise ConfigError(
            f"{variant} differs from the teacher ({teacher.config['variant']}) beyond the trunk "
            f"({len(bad)} tensors, e.g. {bad[0]})",
            hint="graft only between variants that share neck and decoders",
        )
    with torch.no_grad():
        for k, v in state.items():
            v.copy_(saved[k])
    if teacher.config.get("classes") is not None:
        model.config["classes"] = teacher.config["classes"]
    return model


def save_grafted(model: nn.Module, trunk: nn.Module, out: Path) -> None:
    """Write ``out/model.safetensors`` + ``config.json``: ``model`` (from ``graft``) with
    ``trunk``'s weights, ready for ``rapsam-edge train --init-weights out``."""
    from ..model.io import save_model

    model.backbone.load_state_dict(trunk.state_dict())
    save_model(model, out)
