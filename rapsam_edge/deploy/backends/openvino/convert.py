"""ONNX -> OpenVINO IR (``.xml`` + ``.bin``), FP32, dynamic shapes kept.

ONNX ``DeformConv`` (opset 19) is converted by our own frontend extension to OpenVINO's
``DeformableConvolution`` (opset 8) with ``bilinear_interpolation_pad=True``: this OpenVINO's
ONNX frontend has no rule for ``DeformConv-19``, and its ``org.openvinotoolkit`` DeformableConv2D
rule leaves that flag False, which clamps samples within one pixel outside the map to the
border instead of reading zeros (mmcv's DCNv2 and ONNX ``DeformConv`` read zeros). The IR holds
the native op, so the runtime needs no extension.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["convert_to_openvino", "deformconv_extension"]


def _deformconv(node):
    """ONNX DeformConv(X, W, offset[, B][, mask]) -> DeformableConvolution (+ bias)."""
    import openvino.opset8 as ops

    n = node.get_input_size()
    x, w, offset = (node.get_input(i) for i in range(3))
    bias = node.get_input(3) if n > 3 else None
    mask = node.get_input(4) if n > 4 else None
    pads = list(node.get_attribute("pads", [0, 0, 0, 0]))
    out = ops.deformable_convolution(
        x,
        offset,
        w,
        strides=list(node.get_attribute("strides", [1, 1])),
        pads_begin=pads[:2],
        pads_end=pads[2:],
        dilations=list(node.get_attribute("dilations", [1, 1])),
        mask=mask,
        group=int(node.get_attribute("group", 1)),
        deformable_group=int(node.get_attribute("offset_group", 1)),
        bilinear_interpolation_pad=True,
    )
    if bias is not None:
        out = ops.add(out, ops.unsqueeze(bias, ops.constant([1, 2])))
    return out.outputs()


def deformconv_extension():
    """The ONNX frontend extension that converts ``DeformConv`` (see module docstring)."""
    from openvino.frontend.onnx import ConversionExtension

    return ConversionExtension("DeformConv", _deformconv)


def convert_to_openvino(onnx_path: str | Path, xml_path: str | Path) -> tuple[Path, Path]:
    """Convert an ONNX graph to OpenVINO IR. Returns (xml, bin) paths.

    ``compress_to_fp16=False`` keeps FP32 weights (OpenVINO's ``save_model`` defaults to FP16
    compression); dynamic dimensions of the ONNX inputs stay dynamic (``?``) in the IR.
    """
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov_model = ov.convert_model(str(onnx_path), extension=[deformconv_extension()])
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=False)
    return xml_path, xml_path.with_suffix(".bin")
