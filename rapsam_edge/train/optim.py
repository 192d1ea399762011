"""AdamW with a lower backbone learning rate, linear warm-up and step decay."""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, extra: nn.Module | None = None
) -> torch.optim.AdamW:
    """Two parameter groups: backbone (lr x backbone_lr_mult) and the rest; no weight decay
    on norms, biases and embeddings (1-D parameters). ``extra``: training-only modules
    (auxiliary heads), optimised like the non-backbone part."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    named = list(model.named_parameters())
    if extra is not None:
        named += [(f"extra.{n}", p) for n, p in extra.named_parameters()]
    for name, param in named:
        if not param.requires_grad:
            continue
        key = (name.startswith("backbone."), param.ndim <= 1)
        groups.setdefault(key, []).append(param)
    param_groups = [
        {
            "params": params,
            "lr": cfg.lr * (cfg.backbone_lr_mult if is_backbone else 1.0),
            "weight_decay": 0.0 if no_decay else cfg.weight_decay,
        }
        for (is_backbone, no_decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up, then x lr_gamma at
    each milestone (fractions of cfg.steps)."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    decays = sum(step >= int(m * cfg.steps) for m in cfg.lr_milestones)
    return warm * cfg.lr_gamma**decays


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
