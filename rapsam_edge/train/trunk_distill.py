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
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["TrunkFeatureKD", "load_teacher_trunk", "save_grafted_model"]


def load_teacher_trunk(path: str | Path, trunk: nn.Module) -> tuple[nn.Module, list[str]]:
    """Load the trained model at ``path``, copy its trunk tensors of the same name and shape
    into ``trunk`` (in place) and return (the teacher's frozen trunk in eval mode, the names
    of ``trunk``'s tensors that were not copied).

    Raises:
      ConfigError: no model at ``path``, or its trunk's output channels differ from
        ``trunk``'s (the teacher's neck could not take the student's features)."""
    from ..model.io import load_model

    try:
        teacher = load_model(path)
    except FileNotFoundError as e:
        raise ConfigError(
            f"no trained model at {path}: {e}", hint="a `rapsam-edge train` output"
        ) from e
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
    for p in t_trunk.parameters():
        p.requires_grad_(False)
    return t_trunk.eval(), fresh


class TrunkFeatureKD:
    """The objective of ``pretrain --teacher``: normalised MSE to the teacher's C2..C5.

    ``loss(images, feats)``: images B x 3 x H x W (normalised), feats the student's
    [C2, C3, C4, C5] -> scalar loss; per-tap relative errors accumulate for ``stats``."""

    def __init__(self, teacher_trunk: nn.Module) -> None:
        self.teacher = teacher_trunk
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


def save_grafted_model(teacher_path: str | Path, variant: str, trunk: nn.Module, out: Path) -> None:
    """Write ``out/model.safetensors`` + ``config.json``: the ``variant`` model with the
    teacher's neck, decoders and class vocabulary and ``trunk``'s weights, ready for
    ``rapsam-edge train --init-weights out``.

    Raises:
      ConfigError: a non-trunk tensor of the teacher does not fit ``variant`` (the variants
        differ beyond the trunk)."""
    from ..model.io import load_model, save_model
    from ..model.variants import build_model

    teacher = load_model(teacher_path)
    model = build_model(
        variant,
        num_classes=teacher.num_classes,
        deform=teacher.config["deform"],
        class_prototypes=teacher.config["class_prototypes"],
    )
    saved = teacher.state_dict()
    state = model.state_dict()
    bad = sorted(
        k
        for k in state
        if not k.startswith("backbone.") and (k not in saved or saved[k].shape != state[k].shape)
    )
    if bad:
        raise ConfigError(
            f"{variant} differs from the teacher beyond the trunk ({len(bad)} tensors, e.g. "
            f"{bad[0]})",
            hint="graft only between variants that share neck and decoders",
        )
    with torch.no_grad():
        for k, v in state.items():
            if not k.startswith("backbone."):
                v.copy_(saved[k])
    model.backbone.load_state_dict(trunk.state_dict())
    save_model(model, out, classes=teacher.config.get("classes"))
