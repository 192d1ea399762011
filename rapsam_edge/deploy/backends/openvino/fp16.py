"""OpenVINO FP16-compressed IR, and the BF16 inference hint (training side; needs openvino).

``convert_ov_fp16`` writes an FP16-compressed copy of an FP32 IR:
``openvino.save_model(model, dst, compress_to_fp16=True)`` stores the floating-point
constants (weights, biases) as f16, each followed by a ``Convert`` to f32 marked as
decompression; the inputs, outputs and all activations keep their types (the ``image`` input
stays u8, outputs f32). It halves the ``.bin``; it does not by itself change the compute
precision. What the device does with it is decided at compile time by the
``INFERENCE_PRECISION_HINT`` (OpenVINO docs: ``openvino.save_model``,
https://docs.openvino.ai/2024/api/ie_python_api/_autosummary/openvino.save_model.html, and
"CPU Device", supported inference precisions,
https://docs.openvino.ai/2024/openvino-workflow/running-inference/inference-devices-and-modes/cpu-device.html):

* CPU with the runtime's default ``precision="f32"``: the convolutions / MatMuls run the f32
  kernels (e.g. ``brgconv_avx512_1x1_f32`` in the execution graph) and read the f16 weights,
  decompressed to f32: FP32 arithmetic on weights rounded to f16, the same speed as the FP32
  IR (measured on the shipped edge-xs encoder: features within relative L2 7e-4 of the FP32
  IR's).
* CPU with ``precision="bf16"`` (CPUs with AVX512_BF16 / AMX-BF16): bf16 compute, from either
  IR (8e-3 relative L2 on the same features). OpenVINO's own default hint on such a CPU is
  bf16; the runtime pins f32 unless asked.
* CPU with ``precision="f16"``: f16 compute only on CPUs with AVX512_FP16 / AMX-FP16
  (``OPTIMIZATION_CAPABILITIES`` lists "FP16"); elsewhere the plugin falls back (observed with
  OpenVINO 2026.4 on an AVX512_BF16 CPU without FP16: it compiles to bf16).
* GPU / NPU: f16 compute is their default; the FP16 IR is their natural input.

BF16 needs no new file: it is the runtime hint ``OpenVINOBackend(..., precision="bf16")``
(``INFERENCE_PRECISION_HINT=bf16``) applied to the FP32 IR at compile time. OpenVINO's CPU
plugin would pick bf16 by itself on a BF16-capable CPU; the runtime pins f32 by default so that
results match the bundle, and ``bf16_supported()`` says whether asking for bf16 gives native
BF16 (the ``OPTIMIZATION_CAPABILITIES`` of the CPU device lists "BF16").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ....errors import BackendError, InputError, MissingDependencyError
from .graph import ov_module

__all__ = ["bf16_supported", "convert_ov_fp16", "cpu_capabilities"]

log = logging.getLogger(__name__)


def _ov() -> Any:
    return ov_module("OpenVINO FP16 conversion")


def _io_signature(model: Any) -> list[tuple[str, str, str, str]]:
    return [
        (kind, p.get_any_name(), str(p.get_element_type()), str(p.partial_shape))
        for kind, ports in (("input", model.inputs), ("output", model.outputs))
        for p in ports
    ]


def convert_ov_fp16(src_xml: str | Path, dst_xml: str | Path) -> dict[str, Any]:
    """FP16-compressed copy of an FP32 OpenVINO IR.

    Arguments:
      src_xml: the FP32 IR ``.xml`` (its ``.bin`` beside it).
      dst_xml: where to write the FP16 IR ``.xml`` + ``.bin`` (parents are created; not
        ``src_xml``).
    Returns:
      the record: {tool: "openvino X (save_model compress_to_fp16=True)", weights: "f16",
      compute: what the CPU plugin does with it, f16_constants (f16 Constant nodes written),
      bin_bytes_fp32, bin_bytes}.
    Raises:
      MissingDependencyError: openvino is not installed.
      InputError: the source is not a readable IR, or ``dst_xml`` is not a distinct ``.xml``.
    """
    ov = _ov()
    src, dst = Path(src_xml), Path(dst_xml)
    if src.suffix != ".xml" or not src.is_file():
        raise InputError(f"source IR {str(src)!r}: not an existing OpenVINO .xml file")
    if dst.suffix != ".xml":
        raise InputError(f"destination {str(dst)!r} must end in .xml (the .bin goes beside it)")
    if dst.resolve() == src.resolve():
        raise InputError(f"destination {dst} is the source IR; write to another file")
    try:
        model = ov.Core().read_model(str(src))
    except Exception as e:
        raise InputError(f"{src}: cannot read the OpenVINO IR ({e})") from e
    signature = _io_signature(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(dst), compress_to_fp16=True)
    saved = ov.Core().read_model(str(dst))
    if _io_signature(saved) != signature:  # save_model keeps I/O types; checked all the same
        raise InputError(f"{dst}: inputs / outputs changed by FP16 compression")
    f16 = sum(
        op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.f16
        for op in saved.get_ops()
    )
    record = {
        "tool": f"openvino {ov.__version__} (save_model compress_to_fp16=True)",
        "weights": "f16",
        "compute": (
            "CPU with the runtime's default hint f32: f32 kernels on f16 weights decompressed "
            "to f32; bf16 / f16 compute only through INFERENCE_PRECISION_HINT on CPUs that have "
            "them; GPU / NPU: f16"
        ),
        "f16_constants": int(f16),
        "bin_bytes_fp32": src.with_suffix(".bin").stat().st_size,
        "bin_bytes": dst.with_suffix(".bin").stat().st_size,
    }
    log.info(
        "openvino fp16 %s -> %s: %d f16 constants, .bin %d -> %d bytes",
        src.name,
        dst.name,
        f16,
        record["bin_bytes_fp32"],
        record["bin_bytes"],
    )
    return record


def cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO CPU ``OPTIMIZATION_CAPABILITIES`` (e.g. ("BF16", "FP32", "INT8", ...)); () when
    openvino is not installed or has no CPU device (nothing is supported then).

    Raises:
      BackendError: OpenVINO has a CPU device but cannot say what it supports (a broken
        install): not taken for "no BF16".
    """
    try:
        ov = _ov()
    except MissingDependencyError:
        return ()
    core = ov.Core()
    if "CPU" not in core.available_devices:
        return ()
    try:
        return tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception as e:  # OpenVINO raises its own RuntimeError subclasses
        raise BackendError(
            f"OpenVINO's CPU plugin cannot report OPTIMIZATION_CAPABILITIES: {e}",
            hint='`rapsam-edge info` shows the OpenVINO install; python -c "import openvino as '
            'ov; print(ov.Core().available_devices)" should list CPU; else reinstall openvino',
        ) from e


def bf16_supported() -> bool:
    """True when OpenVINO's CPU plugin reports native BF16 ("BF16" in its
    ``OPTIMIZATION_CAPABILITIES``: AVX512_BF16 or AMX-BF16), i.e. the runtime hint
    ``precision="bf16"`` runs bf16 kernels rather than an f32 fallback."""
    return "BF16" in cpu_capabilities()
