"""ONNX -> OpenVINO IR (``.xml`` + ``.bin``), FP32, dynamic shapes kept."""

from __future__ import annotations

from pathlib import Path

__all__ = ["convert_to_openvino"]


def convert_to_openvino(onnx_path: str | Path, xml_path: str | Path) -> tuple[Path, Path]:
    """Convert an ONNX graph to OpenVINO IR. Returns (xml, bin) paths.

    ``compress_to_fp16=False`` keeps FP32 weights (OpenVINO's ``save_model`` defaults to FP16
    compression); dynamic dimensions of the ONNX inputs stay dynamic (``?``) in the IR.
    """
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov_model = ov.convert_model(str(onnx_path))
    ov.save_model(ov_model, str(xml_path), compress_to_fp16=False)
    return xml_path, xml_path.with_suffix(".bin")
