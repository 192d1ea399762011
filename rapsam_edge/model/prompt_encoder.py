"""Prompt encoder: points / boxes -> prompt queries.

A point becomes a 6-pixel box around it (reference: ``(x-3, y-3, x+3, y+3)``). A box
(x0, y0, x1, y1, pixels of the padded network input) is normalised by the padded input size
to (cx, cy, w, h) in [0, 1], sine-encoded with 128 features per coordinate (T = 10000,
scale 2*pi, order y, x, w, h -> 512), projected to D and added to the learned prompt
embedding and the learned mask token.

Note on normalisation: the reference divides by the *valid* (unpadded) image size; we divide
by the padded size H_pad x W_pad (= feature size x stride) so that the graph needs nothing but
the features. To reproduce the reference exactly, scale boxes by (W_pad / w_valid,
H_pad / h_valid) before calling.

Edge variants (``fourier_cycles``) also add ``fourier_proj(point_features(cx, cy))``: the
Fourier features that the neck appends to F at every pixel (see ``fourier.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from ..contract.postprocess import POINT_BOX_HALF  # a point prompt is the box [p - 3, p + 3]
from .fourier import num_features, point_features

__all__ = ["PromptEncoder", "box_sine_encoding", "points_to_boxes"]

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)


def points_to_boxes(points: ArrayT) -> ArrayT:
    """... x 2 (x, y) -> ... x 4 (x0, y0, x1, y1): a 6-pixel box around each point.

    Pure arithmetic; works on numpy arrays and torch tensors alike.
    """
    lo = points - POINT_BOX_HALF
    hi = points + POINT_BOX_HALF
    if isinstance(points, Tensor):
        return torch.cat((lo, hi), dim=-1)
    return np.concatenate((lo, hi), axis=-1)


def box_sine_encoding(
    boxes: Tensor, *, num_feats: int = 128, temperature: float = 10000.0
) -> Tensor:
    """Sine encoding of normalised boxes (cx, cy, w, h): ... x 4 -> ... x 4*num_feats.

    Per coordinate v: [sin(v*2pi/t_0), cos(v*2pi/t_0), sin(v*2pi/t_2), cos(...), ...] with
    t_i = T^(2*floor(i/2)/num_feats); the four blocks are ordered y, x, w, h.
    """
    idx = torch.arange(num_feats, dtype=boxes.dtype, device=boxes.device)
    dim_t = temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / num_feats)
    # ... x 4 x num_feats angles, coordinates reordered to y, x, w, h.
    coords = boxes[..., [1, 0, 2, 3]] * (2 * math.pi)
    ang = coords.unsqueeze(-1) / dim_t
    enc = torch.stack((ang[..., 0::2].sin(), ang[..., 1::2].cos()), dim=-1).flatten(-2)
    return enc.flatten(-2)


class PromptEncoder(nn.Module):
    """Boxes -> prompt queries. Parameters: ``prompt_embed`` (2 x D, row 1 is used for
    point/box prompts as in the reference; row 0 is unused there), ``mask_token`` (1 x D),
    ``pos_proj`` (512 -> D); with ``fourier_cycles`` also ``fourier_proj`` (4K -> D)."""

    PROMPT_LABEL = 1

    def __init__(
        self, *, dim: int, num_pos_feats: int = 128, fourier_cycles: Sequence[float] = ()
    ) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.fourier_cycles = tuple(fourier_cycles)
        self.prompt_embed = nn.Embedding(2, dim)
        self.mask_token = nn.Embedding(1, dim)
        self.pos_proj = nn.Linear(4 * num_pos_feats, dim)
        if self.fourier_cycles:
            self.fourier_proj = nn.Linear(num_features(self.fourier_cycles), dim)

    def forward(self, boxes: Tensor, input_size: Tensor) -> Tensor:
        """boxes: B x P x 4 (x0, y0, x1, y1) pixels; input_size: (2,) tensor (W_pad, H_pad)
        -> B x P x D prompt queries."""
        wh = input_size.to(boxes.dtype)
        xy0 = boxes[..., :2] / wh
        xy1 = boxes[..., 2:] / wh
        cxcywh = torch.cat(((xy0 + xy1) * 0.5, xy1 - xy0), dim=-1).clamp(0.0, 1.0)
        pos = self.pos_proj(box_sine_encoding(cxcywh, num_feats=self.num_pos_feats))
        token = self.prompt_embed.weight[self.PROMPT_LABEL] + self.mask_token.weight[0]
        if self.fourier_cycles:
            pos = pos + self.fourier_proj(point_features(cxcywh[..., :2], self.fourier_cycles))
        return pos + token
