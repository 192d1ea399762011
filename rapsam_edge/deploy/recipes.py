"""Per-target export recipes: ONE literal table. A recipe fixes what a target device wants
from a bundle: graph formats, the input size, which runtime backend to use there, and the
reduced precision (``rapsam-edge quantize --to P --backend Q``, gated against FP32) or None
for FP32."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    formats: tuple[str, ...]  # graph files to write ("onnx", "openvino")
    backend: str  # runtime backend the target runs (rapsam_edge.runtime.registry)
    input_size: int | None  # network long side; None = the model's default
    note: str
    precision: str | None = None  # quantize --to (int8, fp16, bf16); None = FP32
    quantize_backend: str | None = None  # quantize --backend (ort, openvino, tensorrt)


RECIPES: dict[str, Recipe] = {
    "cpu-ort-fp32": Recipe(
        ("onnx",), "ort-cpu", None, "any CPU with ONNX Runtime (x86-64, aarch64)"
    ),
    "x86-openvino-fp32": Recipe(
        ("onnx", "openvino"), "openvino", None, "Intel CPU / iGPU / NPU with OpenVINO"
    ),
    "jetson-orin-tensorrt-fp32": Recipe(
        ("onnx",),
        "tensorrt",
        None,
        "NVIDIA Jetson: the TensorRT engine is built on the device at first run and cached",
    ),
    "cpu-ort-int8": Recipe(
        ("onnx",),
        "ort-cpu",
        None,
        "any CPU, ONNX Runtime static INT8 (QDQ, per-channel)",
        "int8",
        "ort",
    ),
    "x86-openvino-int8": Recipe(
        ("onnx", "openvino"),
        "openvino",
        None,
        "x86 CPU with OpenVINO, NNCF INT8",
        "int8",
        "openvino",
    ),
    "x86-openvino-bf16": Recipe(
        ("onnx", "openvino"),
        "openvino",
        None,
        "x86 CPU with AVX-512 BF16 / AMX: BF16 hint",
        "bf16",
        "openvino",
    ),
    "jetson-orin-tensorrt-fp16": Recipe(
        ("onnx",),
        "tensorrt",
        None,
        "Jetson Orin: TensorRT FP16 engine (gated on the device)",
        "fp16",
        "tensorrt",
    ),
    "jetson-orin-tensorrt-int8": Recipe(
        ("onnx",),
        "tensorrt",
        None,
        "Jetson Orin: TensorRT INT8 from explicit Q/DQ ONNX (gated on the device)",
        "int8",
        "tensorrt",
    ),
}
