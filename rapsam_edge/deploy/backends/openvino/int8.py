"""OpenVINO INT8 through NNCF post-training quantization (training side: needs ``nncf``).

``quantize_ov_int8`` runs NNCF's default post-training quantization on an FP32 OpenVINO IR:
it inserts FakeQuantize nodes (8-bit, per-channel symmetric weights; per-tensor activations,
symmetric with ``preset="performance"``, asymmetric with ``"mixed"``), calibrates their ranges
on the calibration feeds (min/max statistics), applies bias correction, and stores the
quantized weights as int8 constants (Convert + Multiply decompression in the IR). The CPU
plugin then runs the quantized convolutions / MatMuls as u8 x i8 kernels (VNNI / AMX where
the CPU has them). Sources: NNCF "Basic Quantization Flow"
(https://docs.openvino.ai/2025/openvino-workflow/model-optimization-guide/quantizing-models-post-training/basic-quantization-flow.html)
and ``nncf.quantize``'s docstring (nncf 3.4).

The runtime contract is kept: input / output names, element types and dynamic dimensions of
the quantized IR equal the source's (checked after quantization; ``BackendError`` if not), so
the runtime's ``OpenVINOBackend`` loads it in place of the FP32 file. The IR is saved with
``openvino.save_model(..., compress_to_fp16=False)``: the float constants that stay (biases,
FP32-kept layers) keep FP32.

Defaults, chosen on a 2-core AMD EPYC (AVX512-VNNI, AVX512-BF16), OpenVINO 2026.4 CPU,
2 threads, LATENCY hint, calibration on 8 frames of the sample clip:
``preset="performance"``: symmetric activations run the cheaper u8 x i8 kernels; the edge-s
encoder at 480 x 640 is 2.9x faster than FP32 with it and 2.65x with "mixed", the decoders
1.4x against 1.0-1.25x ("mixed" adds zero points to the MatMul activations); features agree
with FP32 equally well with both (relative L2 0.029-0.032 on the shipped edge-xs encoder).
``fast_bias_correction=True``: the full bias correction took 2-3x longer and moved the
feature error by < 0.003. ``subset_size`` = all calibration samples: 2 to 24 frames gave the
same error (0.029-0.032), so a few dozen representative frames are plenty.
``model_type``: None; ``"transformer"`` suits the decoders better (no quantizers on the
LayerNorm / Softmax inputs; per-query mask IoU median 0.745 -> 0.864 over all queries of the
shipped panoptic decoder) at the same speed. The prompt decoder stays fragile in INT8: on
boxes around the shipped model's objects ~20 % of prompt masks flip (IoU < 0.5) with every
preset; keeping its ``/prompt_encoder`` and ``/kernel_update`` operations in FP32 with
``model_type="transformer"`` brings that to 1 in 32. Its INT8 gain is 1.0x (edge-xs) to 1.35x
(edge-s), so quantizing the encoder alone is the safe trade.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import BackendError, ConfigError
from .graph import (
    check_dst,
    check_feeds,
    count_fake_quantize,
    nncf_module,
    quantized_operations,
    read,
    save,
)

__all__ = ["MODEL_TYPES", "PRESETS", "int8_record", "nncf_options", "quantize_ov_int8"]

log = logging.getLogger(__name__)

PRESETS = ("performance", "mixed")
MODEL_TYPES = (None, "transformer")


def nncf_options(
    nncf: Any,
    preset: str,
    subset_size: int | None,
    n: int,
    ignored_scope: Sequence[str],
    model_type: str | None,
) -> tuple[dict[str, Any], int]:
    if preset not in PRESETS:
        raise ConfigError(f"preset {preset!r}: choose from {PRESETS}")
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"model_type {model_type!r}: choose from {MODEL_TYPES}")
    if subset_size is None:
        subset_size = n
    if isinstance(subset_size, bool) or not isinstance(subset_size, int) or subset_size < 1:
        raise ConfigError(f"subset_size must be a positive int or None, got {subset_size!r}")
    if isinstance(ignored_scope, str) or not all(isinstance(s, str) for s in ignored_scope):
        raise ConfigError("ignored_scope must be a sequence of node names (str)")
    kwargs: dict[str, Any] = {
        "preset": nncf.QuantizationPreset(preset),
        "target_device": nncf.TargetDevice.CPU,
        "subset_size": subset_size,
        "model_type": None if model_type is None else nncf.ModelType(model_type),
    }
    if ignored_scope:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=list(ignored_scope))
    return kwargs, min(subset_size, n)


def int8_record(
    nncf: Any,
    preset: str,
    samples: int,
    ignored: Sequence[str],
    *,
    fast_bias_correction: bool,
    subset_size: int,
    model_type: str | None,
    model: Any,
) -> dict[str, Any]:
    import openvino

    return {
        "tool": f"nncf {nncf.__version__}",
        "runtime": f"openvino {openvino.__version__}",
        "preset": preset,
        "samples": samples,
        "ignored": list(ignored),
        "fast_bias_correction": fast_bias_correction,
        "subset_size": subset_size,
        "model_type": model_type,
        "target_device": "CPU",
        "fake_quantize": count_fake_quantize(model),
        "quantized_ops": len(quantized_operations(model)),
    }


def quantize_ov_int8(
    src_xml: str | Path,
    dst_xml: str | Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
    *,
    preset: str = "performance",
    fast_bias_correction: bool = True,
    subset_size: int | None = None,
    ignored_scope: Sequence[str] = (),
    model_type: str | None = None,
) -> dict[str, Any]:
    """NNCF post-training INT8 quantization of an FP32 OpenVINO IR.

    Arguments:
      src_xml: the FP32 IR (``.xml``; its ``.bin`` beside it).
      dst_xml: where to write the INT8 IR (``.xml`` + ``.bin``; parent folders are created;
        must not be ``src_xml``).
      calibration: feed dicts, input name -> numpy array with the IR's dtype and a shape its
        dynamic dimensions accept (e.g. the encoder's ``image``: 1 x H x W x 3 uint8 letterboxed
        frames; the decoders' ``feats``: 1 x D x H/8 x W/8 float32 from the FP32 encoder).
        Shapes may differ between samples. NNCF runs the FP32 model on each (``nncf.Dataset``)
        and keeps min / max (weights) and min / max or quantile (activations) statistics.
      preset: "performance" (symmetric weights and activations) or "mixed" (asymmetric
        activations: better for activations with a shifted range, e.g. after GELU / no ReLU).
      fast_bias_correction: NNCF's fast bias correction (True) or the full one (False: slower,
        sometimes more accurate).
      subset_size: calibration samples used (default: all of ``calibration``; NNCF's own
        default is 300).
      ignored_scope: friendly names of nodes to keep in FP32 (``nncf.IgnoredScope(names=...)``;
        every name must exist in the IR, else ``ConfigError``).
      model_type: None or "transformer" (NNCF's extra patterns for attention blocks: no
        quantization of Softmax / LayerNorm inputs, MatMul-specific rules).
    Returns:
      the record: {tool: "nncf X.Y.Z", runtime: "openvino ...", preset, samples (used),
      ignored (names), fast_bias_correction, subset_size, model_type, target_device,
      fake_quantize (quantizer nodes in the result), quantized_ops (operations fed by them)}.
    Raises:
      MissingDependencyError: nncf or openvino is not installed.
      InputError: the source IR cannot be read, ``dst_xml`` is bad, or the calibration feeds do
        not match the IR's inputs (names, dtype, shape).
      ConfigError: an invalid option or an ``ignored_scope`` name the IR does not have.
      BackendError: NNCF failed, or the quantized IR's inputs / outputs differ from the
        source's (names, element types, dynamic shapes).
    """
    nncf = nncf_module()
    model = read(src_xml)
    dst = check_dst(src_xml, dst_xml)
    check_feeds(model, calibration, "calibration")
    kwargs, samples = nncf_options(
        nncf, preset, subset_size, len(calibration), ignored_scope, model_type
    )
    try:
        quantized = nncf.quantize(
            model,
            nncf.Dataset(list(calibration)),
            fast_bias_correction=bool(fast_bias_correction),
            **kwargs,
        )
    except nncf.ValidationError as e:  # e.g. an ignored_scope name that is not in the graph
        raise ConfigError(f"nncf.quantize({Path(src_xml).name}): {str(e).strip()}") from e
    except Exception as e:
        raise BackendError(f"nncf.quantize({Path(src_xml).name}) failed: {e}") from e
    save(quantized, model, dst)
    options = {"fast_bias_correction": bool(fast_bias_correction), "model_type": model_type}
    record = int8_record(
        nncf,
        preset,
        samples,
        ignored_scope,
        subset_size=kwargs["subset_size"],
        model=quantized,
        **options,
    )
    log.info(
        "nncf int8 %s -> %s: %d quantizers, %d quantized ops (%s, %d samples)",
        *(Path(src_xml).name, dst.name, record["fake_quantize"], record["quantized_ops"]),
        *(preset, samples),
    )
    return record
