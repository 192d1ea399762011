"""Per-target export recipes: ONE literal table. A recipe fixes what a target device wants
from a bundle: graph formats, the input size, and which runtime backend to use there. Only
FP32 recipes exist so far; quantized ones (INT8 / FP16 with an accuracy gate) come with the
quantization work and will be added to this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    formats: tuple[str, ...]  # graph files to write ("onnx", "openvino")
    backend: str  # runtime backend the target runs (rapsam_edge.runtime.registry)
    input_size: int | None  # network long side; None = the model's default
    note: str


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
}
