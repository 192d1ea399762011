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


def modulated_deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    *,
    padding: int = 1,
    dilation: int = 1,
) -> Tensor:
    """Modulated deformable conv, stride 1, no bias.

    Arguments:
      x: B x C x H x W input.
      offset: B x 2K x H x W sampling offsets, (dy, dx) per tap, K = kh * kw.
      mask: B x K x H x W modulation scalars (already passed through a sigmoid).
      weight: O x C x kh x kw.

    Returns:
      B x O x H x W.
    """
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    k = kh * kw
    # Base sampling position of every tap, in input pixels.
    tap_y = torch.arange(kh, dtype=x.dtype, device=x.device) * dilation - padding
    tap_x = torch.arange(kw, dtype=x.dtype, device=x.device) * dilation - padding
    tap_y = tap_y.view(kh, 1).expand(kh, kw).reshape(1, k, 1, 1)
    tap_x = tap_x.view(1, kw).expand(kh, kw).reshape(1, k, 1, 1)
    rows = torch.arange(h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
    cols = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
    offset = offset.view(b, k, 2, h, w)
    py = rows + tap_y + offset[:, :, 0]  # B x K x H x W
    px = cols + tap_x + offset[:, :, 1]
    # Pixel -> grid_sample coordinates (align_corners=False: pixel i centre is (2i+1)/W - 1).
    gx = (2.0 * px + 1.0) / w - 1.0
    gy = (2.0 * py + 1.0) / h - 1.0
    grid = torch.stack((gx, gy), dim=-1).view(b, k * h, w, 2)
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # B x C x (K*H) x W -> B x (C*K) x (H*W), modulated.
    sampled = sampled.view(b, c, k, h, w) * mask.view(b, 1, k, h, w)
    cols_mat = sampled.reshape(b, c * k, h * w)
    out = torch.matmul(weight.reshape(o, c * k), cols_mat)
    return out.view(b, o, h, w)


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
