"""YOSO "lite deformable FPN" neck (the RAP-SAM neck), one output map F.

Reference shape (ResNet-50, levels C2..C5, widths 128/256/512/1024, agg 128, out 256):
  p5 = lateral_conv0(C5)                                          (2048 -> 1024, 1x1, bias)
  x4 = lateral_conv1(C4) + deform_conv1(p5)                       (1024 -> 512, up x2)
  x3 = lateral_conv2(C3) + deform_conv2(x4)                       (512 -> 256, up x2)
  x2 = lateral_conv3(C2) + deform_conv3(x3)                       (256 -> 128, up x2)
  y  = up(conv_a5(p5)) + up(conv_a4(x4)) + up(conv_a3(x3)) + conv_a2(x2) + bias
  y  = output_conv(y)                                             (3x3, agg -> agg)
  F  = loc_conv(cat(y, x_coord, y_coord))                         (1x1, agg + 2 -> out)
Edge variants may append Fourier position channels as well (see ``fourier.py``).
Each ``deform_conv`` = [3x3 offset conv (27 ch) -> DCNv2 3x3 (no bias) -> BN -> ReLU ->
ConvTranspose 4x4/2 (no bias) -> BN -> ReLU]. ``deform=False`` swaps the DCN for a plain 3x3
conv (same ``dcn.weight`` name and shape) and drops the offset conv: the ONNX/TensorRT deploy
form. Edge variants feed fewer levels (e.g. C3..C5 -> stride 8) with narrower widths; module
names keep the reference numbering (``lateral_conv0`` is always the coarsest level,
``conv_a{l}`` is named after the backbone level l).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dcn import ModulatedDeformConv2d
from .fourier import grid_features, num_features

__all__ = ["DeformUpLayer", "LiteDeformFPN", "coord_features"]


class DeformUpLayer(nn.Module):
    """(Deformable) 3x3 conv + BN + ReLU, then x2 transposed conv + BN + ReLU.

    B x Cin x H x W -> B x Cout x 2H x 2W.
    """

    def __init__(self, *, in_channels: int, out_channels: int, deform: bool = True) -> None:
        super().__init__()
        self.deform = deform
        if deform:
            # 18 offset channels ((dy, dx) per tap) + 9 modulation channels.
            self.dcn_offset = nn.Conv2d(in_channels, 27, 3, padding=1)
            nn.init.zeros_(self.dcn_offset.weight)
            nn.init.zeros_(self.dcn_offset.bias)
            self.dcn: nn.Module = ModulatedDeformConv2d(
                in_channels=in_channels, out_channels=out_channels
            )
        else:
            self.dcn = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.dcn_bn = nn.BatchNorm2d(out_channels)
        self.up_sample = nn.ConvTranspose2d(
            out_channels, out_channels, 4, stride=2, padding=1, bias=False
        )
        self.up_bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.deform:
            om = self.dcn_offset(x)
            x = self.dcn(x, om[:, :18], om[:, 18:].sigmoid())
        else:
            x = self.dcn(x)
        x = self.relu(self.dcn_bn(x))
        return self.relu(self.up_bn(self.up_sample(x)))


def _linspace_pm1(n: int, like: Tensor) -> Tensor:
    """torch.linspace(-1, 1, n) written with arange, so that n stays symbolic under
    torch.export / ONNX (linspace specialises its length); same symmetric formula."""
    idx = torch.arange(n, dtype=like.dtype, device=like.device)
    step = 2.0 / (n - 1)
    return torch.where(idx < n // 2, idx * step - 1.0, 1.0 - (n - 1 - idx) * step)


def coord_features(x: Tensor) -> Tensor:
    """B x C x H x W -> B x 2 x H x W: (x, y) coordinates, each in [-1, 1]."""
    b, _, h, w = x.shape
    gx = _linspace_pm1(w, x).view(1, 1, 1, w).expand(b, 1, h, w)
    gy = _linspace_pm1(h, x).view(1, 1, h, 1).expand(b, 1, h, w)
    return torch.cat((gx, gy), dim=1)


class LiteDeformFPN(nn.Module):
    """Lite deformable FPN. Input: backbone maps finest first; output B x out_dim x H/s x W/s
    where s is the stride of the finest input level."""

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        widths: Sequence[int],
        levels: Sequence[int],
        agg_dim: int,
        out_dim: int,
        deform: bool = True,
        fourier_cycles: Sequence[float] = (),
    ) -> None:
        """
        Arguments:
          in_channels: channels of the input maps, finest first.
          widths: top-down width at each level, finest first (reference: in_channels // 2).
          levels: backbone level of each input (2..5), finest first; used for names only.
          agg_dim: width of the fused map. out_dim: width of F (= decoder width D).
          deform: DCNv2 (reference) or plain 3x3 conv (deploy).
          fourier_cycles: frequencies (cycles per padded input) of extra Fourier position
            channels appended with the coordinates (edge variants; () = reference).
        """
        super().__init__()
        if not len(in_channels) == len(widths) == len(levels) >= 2:
            raise ValueError("in_channels, widths and levels must have the same length >= 2")
        self.num_levels = len(levels)
        self.levels = tuple(levels)
        n = self.num_levels
        # Top-down path, coarsest first (reference numbering).
        for i in range(n):
            src = n - 1 - i
            self.add_module(f"lateral_conv{i}", nn.Conv2d(in_channels[src], widths[src], 1))
            if i > 0:
                self.add_module(
                    f"deform_conv{i}",
                    DeformUpLayer(
                        in_channels=widths[src + 1], out_channels=widths[src], deform=deform
                    ),
                )
        self.output_conv = nn.Conv2d(agg_dim, agg_dim, 3, padding=1)
        self.bias = nn.Parameter(torch.zeros(1, agg_dim, 1, 1))
        for lvl, width in zip(levels, widths):
            self.add_module(f"conv_a{lvl}", nn.Conv2d(width, agg_dim, 1, bias=False))
        self.fourier_cycles = tuple(fourier_cycles)
        self.loc_conv = nn.Conv2d(agg_dim + 2 + num_features(self.fourier_cycles), out_dim, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        # Reference: xavier-uniform for every weight; the DCN offset conv starts at zero so
        # training begins as a regular conv (standard DCN practice).
        for name, p in self.named_parameters():
            if p.dim() > 1 and "dcn_offset" not in name:
                nn.init.xavier_uniform_(p)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """feats: [B x C_l x H_l x W_l] finest first -> B x out_dim x H_0 x W_0."""
        n = self.num_levels
        # Top-down: lateral of the coarsest, then upsample + lateral add per level.
        x = self.lateral_conv0(feats[n - 1])
        tops = [x]
        for i in range(1, n):
            up = getattr(self, f"deform_conv{i}")(x)
            x = getattr(self, f"lateral_conv{i}")(feats[n - 1 - i]) + up
            tops.append(x)
        # Fuse: project every level to agg_dim, upsample to the finest, sum + bias.
        fused = None
        for i, t in enumerate(tops):
            lvl = self.levels[n - 1 - i]
            y = getattr(self, f"conv_a{lvl}")(t)
            scale = 2 ** (n - 1 - i)
            if scale > 1:
                y = F.interpolate(y, scale_factor=scale, mode="bilinear", align_corners=False)
            fused = y if fused is None else fused + y
        fused = self.output_conv(fused + self.bias)
        # Append coordinates, project to the decoder width.
        extra = [grid_features(fused, self.fourier_cycles)] if self.fourier_cycles else []
        return self.loc_conv(torch.cat((fused, coord_features(fused), *extra), dim=1))
