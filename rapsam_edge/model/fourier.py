"""Matched Fourier position features (edge variants).

The reference appends two linear coordinate channels to F and encodes prompts with a sine
encoding whose fastest wave spans the whole image, so a prompt query can only express a
half-plane or a very broad bump over F. The edge variants add the SAME Fourier features on
both sides: at every pixel centre of F (``grid_features``) and at every prompt centre
(``point_features``). Since cos(w (x - cx)) = cos(w x) cos(w cx) + sin(w x) sin(w cx), a
linear map from the prompt's features to a kernel gives a mask peaked at the prompt: the
prompt branch can localise from its first stage. Coordinates are normalised by the padded
input size on both sides (as ``PromptEncoder`` does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["grid_features", "num_features", "point_features"]


def num_features(cycles: Sequence[float]) -> int:
    """Channels produced for ``cycles`` frequencies: sin and cos of x and y each."""
    return 4 * len(cycles)


def _waves(v: Tensor, cycles: Sequence[float]) -> Tensor:
    """v: ... (normalised coordinate in [0, 1]) -> ... x 2K: [sin, cos] per frequency."""
    # python-scalar products (no tensor constants: clean under jit.trace and ONNX export)
    ang = torch.cat([v.unsqueeze(-1) * (2 * math.pi * c) for c in cycles], dim=-1)
    return torch.cat((ang.sin(), ang.cos()), dim=-1)


def point_features(cxcy: Tensor, cycles: Sequence[float]) -> Tensor:
    """cxcy: ... x 2 normalised (x, y) -> ... x 4K features (x waves, then y waves)."""
    return torch.cat((_waves(cxcy[..., 0], cycles), _waves(cxcy[..., 1], cycles)), dim=-1)


def grid_features(x: Tensor, cycles: Sequence[float]) -> Tensor:
    """B x C x H x W -> B x 4K x H x W: ``point_features`` of every pixel centre.

    Built from ``arange`` so H and W stay symbolic under ONNX export."""
    b, _, h, w = x.shape
    gx = (torch.arange(w, dtype=x.dtype, device=x.device) + 0.5) / w
    gy = (torch.arange(h, dtype=x.dtype, device=x.device) + 0.5) / h
    fx = _waves(gx, cycles).t()  # 2K x W
    fy = _waves(gy, cycles).t()  # 2K x H
    k2 = fx.shape[0]
    fx = fx.view(1, k2, 1, w).expand(b, k2, h, w)
    fy = fy.view(1, k2, h, 1).expand(b, k2, h, w)
    return torch.cat((fx, fy), dim=1)
