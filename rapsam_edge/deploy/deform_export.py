"""How deformable convs (DCNv2) become ONNX: two exact forms, chosen per backend.

* ``gridsample``: the model's own pure-torch DCN (``model/dcn.py``): bilinear ``GridSample``
  (ONNX opset >= 16) over a sampling grid built from symbolic sizes, then a 1x1 ``Conv`` over
  the C*K sampled maps. Every backend runs it (ONNX Runtime, OpenVINO, TensorRT).
* ``deformconv``: one ONNX ``DeformConv`` node (opset 19) per layer, with the same weights,
  offsets (dy, dx per tap, as mmcv) and modulation mask. OpenVINO maps it to its
  ``DeformableConvolution``; ONNX Runtime implements it from 1.22 on.

Which form each backend gets is measured (``benchmarks/bench_deform.py``) and written into
the bundle manifest (``export.deform``); the table below holds the measured choice.

Model code stays export-agnostic: ``deform_form(model, "deformconv")`` swaps the forward of
every ``ModulatedDeformConv2d`` for the tracing-only ``DeformConv`` function for the duration
of an export and restores it afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.onnx import symbolic_helper

from ..model.dcn import ModulatedDeformConv2d, modulated_deform_conv2d

__all__ = ["DEFORM_CHOICE", "DEFORM_FORMS", "DEFORM_OPSET", "deform_form", "has_deform"]

#: opset that has ``DeformConv``
DEFORM_OPSET = 19
#: export form -> the ONNX opset it needs
DEFORM_FORMS: dict[str, int] = {"gridsample": 17, "deformconv": DEFORM_OPSET}
#: bundle format -> the exact form it gets, measured with ``benchmarks/bench_deform.py``
#: (results/deform.md; rapsam-r18 / -r50 encoders, 640x480 and 1344x800, 2 threads): OpenVINO
#: runs DeformConv 4-10 % faster than GridSample; ONNX Runtime runs both within 3 % (run-to-run
#: noise here), so the onnx file keeps GridSample (opset 17), which TensorRT also parses.
DEFORM_CHOICE: dict[str, str] = {"onnx": "gridsample", "openvino": "deformconv"}


@torch.library.custom_op("rapsam_edge::deform_conv2d", mutates_args=())
def _deform_conv2d(
    x: Tensor, weight: Tensor, offset: Tensor, mask: Tensor, padding: int, dilation: int
) -> Tensor:
    """Eager: the pure-torch DCN (tracing sees real values); ONNX: ``DeformConv``."""
    return modulated_deform_conv2d(x, offset, mask, weight, padding=padding, dilation=dilation)


@_deform_conv2d.register_fake
def _(x, weight, offset, mask, padding, dilation):  # noqa: ARG001 - the op's schema, in full
    return x.new_empty(x.shape[0], weight.shape[0], x.shape[2], x.shape[3])


@symbolic_helper.parse_args("v", "v", "v", "v", "i", "i")
def _deform_conv2d_symbolic(g, x, weight, offset, mask, padding, dilation):
    out_channels, _, kh, kw = weight.type().sizes()
    bias = g.op("Constant", value_t=torch.zeros(out_channels))
    return g.op(
        "DeformConv",
        x,
        weight,
        offset,
        bias,
        mask,
        dilations_i=[dilation, dilation],
        group_i=1,
        kernel_shape_i=[kh, kw],
        offset_group_i=1,
        pads_i=[padding] * 4,
        strides_i=[1, 1],
    )


torch.onnx.register_custom_op_symbolic(
    "rapsam_edge::deform_conv2d", _deform_conv2d_symbolic, DEFORM_OPSET
)


def _deformconv_forward(self: ModulatedDeformConv2d, x: Tensor, offset: Tensor, mask: Tensor):
    return _deform_conv2d(x, self.weight, offset, mask, self.padding, self.dilation)


def has_deform(model: nn.Module) -> bool:
    """True when ``model`` holds at least one DCNv2 layer."""
    return any(isinstance(m, ModulatedDeformConv2d) for m in model.modules())


@contextlib.contextmanager
def deform_form(model: nn.Module, form: str) -> Iterator[None]:
    """Within the block, every DCN layer of ``model`` traces as ``form`` (a key of
    ``DEFORM_FORMS``).

    Raises:
      ValueError: unknown form."""
    if form not in DEFORM_FORMS:
        raise ValueError(
            f"unknown deformable-conv export form {form!r}; known: {list(DEFORM_FORMS)}"
        )
    layers = [m for m in model.modules() if isinstance(m, ModulatedDeformConv2d)]
    if form == "gridsample" or not layers:
        yield
        return
    for m in layers:
        m.forward = _deformconv_forward.__get__(m)
    try:
        yield
    finally:
        for m in layers:
            del m.forward
