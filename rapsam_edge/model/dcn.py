"""Modulated deformable convolution (DCNv2) in pure PyTorch.

The sampling follows mmcv's ``ModulatedDeformConv2d`` exactly: for output pixel (y, x) and
kernel tap k = (i, j) (row-major), the input is sampled bilinearly at
``(y - pad + i * dil + dy_k, x - pad + j * dil + dx_k)``; corners outside the image count as
zero; the sample is multiplied by the modulation scalar m_k before the weighted sum.
Offsets are laid out as (dy_0, dx_0, dy_1, dx_1, ...), i.e. channel 2k is the vertical offset.
Only stride 1, one deformable group and groups=1 are needed by the neck.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pixel_grid(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Row / column indices and the sizes H, W of ``x`` (B x C x H x W) as tensors.

    Built from ``ones_like`` + ``cumsum`` / ``sum`` rather than from ``x.shape``: the
    TorchScript ONNX tracer turns python sizes used in float arithmetic into constants, which
    froze the sampling grid at the traced size (issue 12). These ops stay symbolic, so the
    exported GridSample graph is exact at every input size.

    Returns: rows 1 x 1 x H x 1, cols 1 x 1 x 1 x W, h 1 x 1 x 1 x 1, w 1 x 1 x 1 x 1 (x.dtype).
    """
    ones_h = torch.ones_like(x[:1, :1, :, :1])
    ones_w = torch.ones_like(x[:1, :1, :1, :])
    rows = ones_h.cumsum(2) - 1.0
    cols = ones_w.cumsum(3) - 1.0
    return rows, cols, ones_h.sum(2, keepdim=True), ones_w.sum(3, keepdim=True)


def modulated_deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    *,
    padding: int = 1,
    dilation: int = 1,
) -> Tensor:
    """Modulated deformable conv (DCNv2, Zhu et al. 2019; mmcv ``ModulatedDeformConv2d``),
    stride 1, no bias, as bilinear ``grid_sample`` + a 1x1 conv over the C*K sampled maps.

    Traceable to ONNX (GridSample, opset >= 16) with every size symbolic.

    Arguments:
      x: B x C x H x W input.
      offset: B x 2K x H x W sampling offsets, (dy, dx) per tap, K = kh * kw.
      mask: B x K x H x W modulation scalars (already passed through a sigmoid).
      weight: O x C x kh x kw.

    Returns:
      B x O x H x W.
    """
    o, c, kh, kw = weight.shape
    k = kh * kw
    # Base sampling position of every tap, in input pixels (constants: kernel geometry only).
    tap = torch.arange(k, device=x.device)
    tap_y = ((tap // kw) * dilation - padding).to(x.dtype).view(1, k, 1, 1)
    tap_x = ((tap % kw) * dilation - padding).to(x.dtype).view(1, k, 1, 1)
    rows, cols, h, w = _pixel_grid(x)
    offset = offset.unflatten(1, (k, 2))  # B x K x 2 x H x W
    py = rows + tap_y + offset[:, :, 0]  # B x K x H x W
    px = cols + tap_x + offset[:, :, 1]
    # Pixel -> grid_sample coordinates (align_corners=False: pixel i centre is (2i+1)/W - 1).
    gx = (2.0 * px + 1.0) / w - 1.0
    gy = (2.0 * py + 1.0) / h - 1.0
    grid = torch.stack((gx, gy), dim=-1).flatten(1, 2)  # B x (K*H) x W x 2
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # B x C x (K*H) x W -> B x C x K x H x W, modulated, -> B x (C*K) x H x W
    sampled = sampled.unflatten(2, (k, -1)) * mask.unsqueeze(1)
    return F.conv2d(sampled.flatten(1, 2), weight.reshape(o, c * k, 1, 1))


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer holding only ``weight`` (O x C x k x k), like mmcv's with ``bias=False``."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.padding = padding
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        """x: B x C x H x W, offset: B x 2K x H x W, mask: B x K x H x W -> B x O x H x W."""
        return modulated_deform_conv2d(
            x, offset, mask, self.weight, padding=self.padding, dilation=self.dilation
        )
