"""DCNv2 in pure torch vs a naive loop reference (mmcv semantics), and the neck modes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rapsam_edge.model.dcn import modulated_deform_conv2d
from rapsam_edge.model.neck import LiteDeformFPN

torch.set_num_threads(1)


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """mmcv dmcn_im2col_bilinear: C x H x W at (y, x); outside corners count as zero."""
    _, h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return img.new_zeros(img.shape[0])
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    val = img.new_zeros(img.shape[0])
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                val = val + wy * wx * img[:, yy, xx]
    return val


def _naive_dcn(x, offset, mask, weight, pad=1, dil=1):
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    out = x.new_zeros(b, o, h, w)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                cols = []
                for ki in range(kh):
                    for kj in range(kw):
                        k = ki * kw + kj
                        py = i - pad + ki * dil + float(offset[n, 2 * k, i, j])
                        px = j - pad + kj * dil + float(offset[n, 2 * k + 1, i, j])
                        cols.append(_bilinear(x[n], py, px) * mask[n, k, i, j])
                col = torch.stack(cols, dim=1)  # C x K
                out[n, :, i, j] = (weight.reshape(o, c, kh * kw) * col).sum(dim=(1, 2))
    return out


@pytest.mark.parametrize("dilation", [1, 2])
def test_dcn_matches_naive_loop(dilation: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    # Large offsets so that samples fall outside the image and between pixels.
    offset = 2.5 * torch.randn(2, 18, 5, 6, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 9, 5, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    ours = modulated_deform_conv2d(x, offset, mask, weight, padding=dilation, dilation=dilation)
    ref = _naive_dcn(x, offset, mask, weight, pad=dilation, dil=dilation)
    assert ours.shape == (2, 4, 5, 6)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)


def test_dcn_zero_offset_is_conv() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 7, 5, generator=g)
    weight = torch.randn(3, 4, 3, 3, generator=g)
    offset = torch.zeros(1, 18, 7, 5)
    mask = torch.ones(1, 9, 7, 5)
    torch.testing.assert_close(
        modulated_deform_conv2d(x, offset, mask, weight),
        F.conv2d(x, weight, padding=1),
        rtol=1e-5,
        atol=1e-5,
    )


def test_dcn_gradients_reach_offsets() -> None:
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    offset = (0.3 * torch.randn(1, 18, 4, 4)).requires_grad_()
    mask = torch.rand(1, 9, 4, 4, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, requires_grad=True)
    modulated_deform_conv2d(x, offset, mask, weight).square().sum().backward()
    for t in (x, offset, mask, weight):
        assert t.grad is not None and t.grad.abs().sum() > 0


@pytest.mark.parametrize("deform", [True, False])
def test_neck_shapes_and_deploy_keys(deform: bool) -> None:
    neck = LiteDeformFPN(
        in_channels=[8, 16, 32],
        widths=[8, 12, 16],
        levels=[3, 4, 5],
        agg_dim=8,
        out_dim=16,
        deform=deform,
    ).eval()
    feats = [torch.randn(1, 8, 16, 20), torch.randn(1, 16, 8, 10), torch.randn(1, 32, 4, 5)]
    assert neck(feats).shape == (1, 16, 16, 20)
    keys = set(neck.state_dict())
    assert ("deform_conv1.dcn_offset.weight" in keys) == deform
    assert "deform_conv1.dcn.weight" in keys and "conv_a3.weight" in keys
    assert "lateral_conv0.weight" in keys and neck.lateral_conv0.in_channels == 32
