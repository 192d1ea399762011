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

__all__ = ["TrunkFeatureKD", "check_graft", "load_teacher_trunk", "save_grafted_model"]


def _load_trained(path: str | Path) -> nn.Module:
    """``load_model`` with its failures as ConfigError (a teacher is a command-line input)."""
    from ..model.io import load_model

    try:
        return load_model(path)
    except (OSError, KeyError, ValueError) as e:  # missing / unknown variant / bad JSON, format
        raise ConfigError(
            f"no trained model at {path}: {type(e).__name__}: {e}",
            hint="a `rapsam-edge train` output directory (model.safetensors + config.json)",
        ) from e


def load_teacher_trunk(path: str | Path, trunk: nn.Module) -> tuple[nn.Module, list[str]]:
    """Load the trained model at ``path``, copy its trunk tensors of the same name and shape
    into ``trunk`` (in place) and return (the teacher's frozen trunk in eval mode, the names
    of ``trunk``'s tensors that were not copied).

    Raises:
      ConfigError: no model at ``path``, or its trunk's output channels differ from
        ``trunk``'s (the teacher's neck could not take the student's features)."""
    t_trunk = _load_trained(path).backbone
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
            f"no trunk tensor of {path} fits the student's (different layer names?)",
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


def _graft(teacher_path: str | Path, variant: str) -> tuple[nn.Module, nn.Module]:
    """(teacher, the ``variant`` model with the teacher's non-trunk tensors copied in)."""
    from ..model.variants import VARIANTS, build_model

    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    teacher = _load_trained(teacher_path)
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
            f"{variant} differs from the teacher {teacher_path} beyond the trunk ({len(bad)} "
            f"tensors, e.g. {bad[0]})",
            hint="graft only between variants that share neck and decoders",
        )
    with torch.no_grad():
        for k, v in state.items():
            v.copy_(saved[k])
    return teacher, model


def check_graft(teacher_path: str | Path, variant: str) -> None:
    """Raise ConfigError now if ``save_grafted_model`` would (see there)."""
    _graft(teacher_path, variant)


def save_grafted_model(teacher_path: str | Path, variant: str, trunk: nn.Module, out: Path) -> None:
    """Write ``out/model.safetensors`` + ``config.json``: the ``variant`` model with the
    teacher's neck, decoders and class vocabulary (every non-trunk parameter and buffer) and
    ``trunk``'s weights, ready for ``rapsam-edge train --init-weights out``.

    Raises:
      ConfigError: no trained model at ``teacher_path``, an unknown ``variant``, or one whose
        non-trunk tensors differ from the teacher's in name or shape."""
    from ..model.io import save_model

    teacher, model = _graft(teacher_path, variant)
    model.backbone.load_state_dict(trunk.state_dict())
    save_model(model, out, classes=teacher.config.get("classes"))
