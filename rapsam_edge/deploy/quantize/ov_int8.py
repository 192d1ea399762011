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

``quantize_ov_int8_accuracy_control`` runs ``nncf.quantize_with_accuracy_control``: the same
quantization, then a validation metric (higher is better) on the FP32 and the INT8 model; while
the drop exceeds ``max_drop`` it ranks groups of quantizers by their contribution to the drop
and reverts the worst operations to floating point, one group per iteration
(https://docs.openvino.ai/2025/openvino-workflow/model-optimization-guide/quantizing-models-post-training/quantizing-with-accuracy-control.html).
``quantize_ov_int8_accuracy_control_default`` is the same with a built-in metric: agreement
of the graph's outputs with the FP32 IR's on the calibration feeds.

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

``quantize_ov_int8_accuracy_control`` compiles one model per ranked group of quantizers: on
the edge-xs encoder (95 quantized operations, 4 validation frames, max_drop 1 % of feature
agreement) it took 113 s and kept 44 operations in FP32; on the prompt decoder (8 frames) 950 s.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import BackendError, ConfigError, InputError, MissingDependencyError

__all__ = [
    "DROP_TYPES",
    "MODEL_TYPES",
    "PRESETS",
    "count_fake_quantize",
    "output_agreement",
    "quantize_ov_int8",
    "quantize_ov_int8_accuracy_control",
    "quantize_ov_int8_accuracy_control_default",
    "quantized_operations",
]

log = logging.getLogger(__name__)

PRESETS = ("performance", "mixed")
DROP_TYPES = ("absolute", "relative")
MODEL_TYPES = (None, "transformer")
#: node types NNCF inserts to quantize (FakeConvert: FP8 modes, not used by these functions)
QUANTIZER_TYPES = ("FakeQuantize", "FakeConvert")
#: layout-only types that may sit between a quantizer (or int8 weights) and its consumer
_LAYOUT = frozenset({"Convert", "Reshape", "Transpose", "Squeeze", "Unsqueeze"})
#: consumers that do not compute on the values (not counted as quantized operations)
_SKIP = frozenset({"ShapeOf", "Constant", "Result", "Parameter"}) | _LAYOUT


# ---------------------------------------------------------------------------------------------
# helpers
def _nncf() -> Any:
    try:
        import nncf
    except ImportError as e:
        raise MissingDependencyError(
            "OpenVINO INT8 quantization needs nncf",
            hint="pip install nncf (tested with nncf 3.4)",
        ) from e
    return nncf


def _ov() -> Any:
    try:
        import openvino as ov
    except ImportError as e:
        raise MissingDependencyError(
            "OpenVINO quantization needs openvino", hint="pip install openvino"
        ) from e
    return ov


def _read(src_xml: str | Path) -> Any:
    ov = _ov()
    src = Path(src_xml)
    if src.suffix != ".xml" or not src.is_file():
        raise InputError(f"source IR {str(src)!r}: not an existing OpenVINO .xml file")
    try:
        return ov.Core().read_model(str(src))
    except Exception as e:
        raise InputError(f"{src}: cannot read the OpenVINO IR ({e})") from e


def _check_dst(src_xml: str | Path, dst_xml: str | Path) -> Path:
    dst = Path(dst_xml)
    if dst.suffix != ".xml":
        raise InputError(f"destination {str(dst)!r} must end in .xml (the .bin goes beside it)")
    if dst.resolve() == Path(src_xml).resolve():
        # read_model memory-maps the source .bin: writing over it would corrupt the source
        raise InputError(f"destination {dst} is the source IR; write to another file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    return dst


def _io_signature(model: Any) -> list[tuple[str, str, str, str]]:
    """(kind, name, element type, partial shape) of every input and output."""
    sig = []
    for kind, ports in (("input", model.inputs), ("output", model.outputs)):
        for port in ports:
            sig.append(
                (kind, port.get_any_name(), str(port.get_element_type()), str(port.partial_shape))
            )
    return sig


def _check_feeds(model: Any, feeds: Sequence[Mapping[str, np.ndarray]], what: str) -> None:
    if isinstance(feeds, (str, bytes)) or not isinstance(feeds, Sequence) or not feeds:
        raise InputError(f"{what}: a non-empty sequence of feed dicts is required")
    want = {p.get_any_name(): p for p in model.inputs}
    for i, feed in enumerate(feeds):
        if not isinstance(feed, Mapping) or set(feed) != set(want):
            got = sorted(feed) if isinstance(feed, Mapping) else type(feed).__name__
            raise InputError(f"{what}[{i}]: feeds {got} do not match the inputs {sorted(want)}")
        for name, port in want.items():
            arr = feed[name]
            if not isinstance(arr, np.ndarray):
                raise InputError(f"{what}[{i}][{name!r}]: numpy array expected")
            if arr.dtype != port.get_element_type().to_dtype():
                raise InputError(
                    f"{what}[{i}][{name!r}]: dtype {arr.dtype}, the IR wants "
                    f"{port.get_element_type().to_dtype()}"
                )
            if not port.partial_shape.compatible(_ov().PartialShape(list(arr.shape))):
                raise InputError(
                    f"{what}[{i}][{name!r}]: shape {arr.shape} vs the IR's {port.partial_shape}"
                )


def _options(
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


def _save(model: Any, src_model: Any, dst: Path) -> None:
    ov = _ov()
    if _io_signature(model) != _io_signature(src_model):
        raise BackendError(
            f"nncf changed the graph's inputs / outputs: {_io_signature(src_model)} -> "
            f"{_io_signature(model)}"
        )
    ov.save_model(model, str(dst), compress_to_fp16=False)


def count_fake_quantize(model: Any) -> int:
    """Number of quantizer nodes (FakeQuantize / FakeConvert) in an ``openvino.Model`` or IR."""
    if isinstance(model, (str, Path)):
        model = _read(model)
    return sum(op.get_type_name() in QUANTIZER_TYPES for op in model.get_ops())


def _is_quantized_source(node: Any) -> bool:
    """True when ``node`` (the producer of an operation's input, seen through layout-only ops)
    is a quantizer, or the end of a weight-decompression chain over an 8-bit (or narrower)
    integer constant: Constant(i8 / u8) -> Convert -> [Subtract] -> Multiply."""
    for _ in range(4):
        if node.get_type_name() not in _LAYOUT:
            break
        node = node.input_value(0).get_node()
    kind = node.get_type_name()
    if kind in QUANTIZER_TYPES:
        return True
    if kind != "Multiply":
        return False
    for value in node.input_values():
        src = value.get_node()
        if src.get_type_name() == "Subtract":
            src = src.input_value(0).get_node()
        if src.get_type_name() != "Convert":
            continue
        const = src.input_value(0).get_node()
        typ = const.get_element_type()
        if const.get_type_name() == "Constant" and typ.is_integral() and typ.bitwidth <= 8:
            return True
    return False


def quantized_operations(model: Any) -> list[str]:
    """Friendly names of the operations that take a quantized input, sorted.

    An operation counts as quantized when one of its inputs comes from a FakeQuantize /
    FakeConvert node, or from int8 weights NNCF compressed (Constant i8 / u8 -> Convert ->
    [Subtract] -> Multiply), either directly or through layout-only ops (Reshape, Transpose,
    Convert). Quantizers, shape-only consumers (ShapeOf) and the decompression ops themselves
    are not listed.

    Arguments:
      model: an ``openvino.Model`` or the path of an IR ``.xml``.
    """
    if isinstance(model, (str, Path)):
        model = _read(model)
    names = set()
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind in QUANTIZER_TYPES or kind in _SKIP:
            continue
        if kind == "Multiply" and _is_quantized_source(op):
            continue  # a weight-decompression Multiply, part of a quantized weight
        if any(_is_quantized_source(v.get_node()) for v in op.input_values()):
            names.add(op.get_friendly_name())
    return sorted(names)


def _record(
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


# ---------------------------------------------------------------------------------------------
# plain post-training quantization
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
    nncf = _nncf()
    model = _read(src_xml)
    dst = _check_dst(src_xml, dst_xml)
    _check_feeds(model, calibration, "calibration")
    kwargs, samples = _options(
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
    _save(quantized, model, dst)
    record = _record(
        nncf,
        preset,
        samples,
        ignored_scope,
        fast_bias_correction=bool(fast_bias_correction),
        subset_size=kwargs["subset_size"],
        model_type=model_type,
        model=quantized,
    )
    log.info(
        "nncf int8 %s -> %s: %d quantizers, %d quantized ops (%s, %d samples)",
        Path(src_xml).name,
        dst.name,
        record["fake_quantize"],
        record["quantized_ops"],
        preset,
        samples,
    )
    return record


# ---------------------------------------------------------------------------------------------
# accuracy-controlled quantization
def _compile_f32(model: Any) -> Any:
    """Compile on CPU with f32 inference precision (NNCF's evaluator does the same)."""
    ov = _ov()
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def _drop(metric_fp32: float, metric: float, drop_type: str) -> float:
    """The drop as NNCF computes it (``calculate_accuracy_drop``): FP32 minus INT8, or for
    "relative" ``1 - metric / metric_fp32`` (negative: the INT8 model scores higher)."""
    if drop_type == "absolute" or metric >= metric_fp32:
        diff = metric_fp32 - metric
        return diff if drop_type == "absolute" or not metric_fp32 else diff / abs(metric_fp32)
    if metric_fp32 == 0:
        return float("inf")
    return abs(1.0 - metric / metric_fp32)


def quantize_ov_int8_accuracy_control(
    src_xml: str | Path,
    dst_xml: str | Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
    validation: Sequence[Any],
    validate: Callable[[Any, Iterable[Any]], float],
    *,
    max_drop: float,
    drop_type: str = "absolute",
    preset: str = "performance",
    fast_bias_correction: bool = True,
    subset_size: int | None = None,
    ignored_scope: Sequence[str] = (),
    model_type: str | None = None,
    max_num_iterations: int | None = None,
    ranking_subset_size: int | None = None,
) -> dict[str, Any]:
    """INT8 quantization that reverts the most sensitive operations to FP32 until the metric
    drop is within ``max_drop`` (``nncf.quantize_with_accuracy_control``).

    Arguments:
      src_xml, dst_xml, calibration, preset, fast_bias_correction, subset_size, ignored_scope,
        model_type: as in ``quantize_ov_int8``.
      validation: the validation items, any objects ``validate`` understands (e.g. feed dicts,
        or (feeds, reference) pairs). NNCF hands ``validate`` subsets of them to rank layers.
      validate: ``validate(compiled_model, items) -> float``, higher is better;
        ``compiled_model`` is an ``openvino.CompiledModel`` (CPU, f32 inference precision;
        call it with a feed dict, index its result by output name), ``items`` an iterable over
        some of ``validation``. It must be deterministic and work on any non-empty subset
        (NNCF calls it on one item first to decide that it returns a metric).
      max_drop: the largest accepted drop of the metric (FP32 minus INT8), >= 0; in the
        metric's units ("absolute") or as a fraction of the FP32 metric ("relative").
      drop_type: "absolute" or "relative".
      max_num_iterations: most groups of operations to revert (default: no limit).
      ranking_subset_size: validation items used to rank groups (default: NNCF's, ``subset_size``).
    Returns:
      the record of ``quantize_ov_int8`` plus {max_drop, drop_type, metric_fp32, metric_int8
      (every quantizer kept, before any revert), metric (the result's), drop (in ``drop_type``
      units), within_max_drop (bool), kept_fp32 (names of the operations reverted to floating
      point), validation_items}. The three metrics are recomputed here with ``validate`` on all
      of ``validation`` (three passes besides NNCF's). When even the fully reverted model misses
      ``max_drop``, NNCF returns its last model: it is still written, with
      ``within_max_drop=False`` and a warning in the log.
    Raises:
      as ``quantize_ov_int8``; ConfigError also for a bad ``max_drop`` / ``drop_type``, and
      InputError for an empty ``validation`` or a ``validate`` that is not callable.
    """
    nncf = _nncf()
    if drop_type not in DROP_TYPES:
        raise ConfigError(f"drop_type {drop_type!r}: choose from {DROP_TYPES}")
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or max_drop < 0:
        raise ConfigError(f"max_drop must be a number >= 0, got {max_drop!r}")
    if not callable(validate):
        raise InputError("validate must be callable: validate(compiled_model, items) -> float")
    if isinstance(validation, (str, bytes)) or not isinstance(validation, Sequence):
        raise InputError("validation must be a sequence of items")
    if not validation:
        raise InputError("validation is empty")
    for name, value in (
        ("max_num_iterations", max_num_iterations),
        ("ranking_subset_size", ranking_subset_size),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(f"{name} must be a positive int or None, got {value!r}")
    model = _read(src_xml)
    dst = _check_dst(src_xml, dst_xml)
    _check_feeds(model, calibration, "calibration")
    kwargs, samples = _options(
        nncf, preset, subset_size, len(calibration), ignored_scope, model_type
    )
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    failures: list[BaseException] = []

    def validation_fn(compiled_model: Any, items: Iterable[Any]) -> float:
        # NNCF swallows an exception from the first call (it then assumes that validate
        # returns per-item outputs): record it to re-raise it with its cause
        try:
            value = validate(compiled_model, items)
            return float(value)
        except Exception as e:
            failures.append(e)
            raise

    with tempfile.TemporaryDirectory(prefix="rapsam-nncf-") as tmp:
        restorer: dict[str, Any] = {"intermediate_model_dir": tmp}
        if max_num_iterations is not None:
            restorer["max_num_iterations"] = max_num_iterations
        if ranking_subset_size is not None:
            restorer["ranking_subset_size"] = ranking_subset_size
        try:
            quantized = nncf.quantize_with_accuracy_control(
                model,
                nncf.Dataset(list(calibration)),
                nncf.Dataset(list(validation)),
                validation_fn=validation_fn,
                max_drop=float(max_drop),
                drop_type=nncf.DropType(drop_type),
                fast_bias_correction=bool(fast_bias_correction),
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    **restorer
                ),
                **kwargs,
            )
        except Exception as e:
            if failures:
                raise InputError(
                    f"validate(compiled_model, items) failed: {failures[0]!r}"
                ) from failures[0]
            if isinstance(e, nncf.ValidationError):
                raise ConfigError(f"nncf.quantize_with_accuracy_control: {str(e).strip()}") from e
            raise BackendError(
                f"nncf.quantize_with_accuracy_control({Path(src_xml).name}) failed: {e}"
            ) from e
        # the fully quantized model NNCF started from (saved by NNCF before reverting)
        full = _ov().Core().read_model(str(Path(tmp) / "intermediate_model.xml"))
        metric_int8 = float(validate(_compile_f32(full), list(validation)))
        full_ops = quantized_operations(full)
        del full
    metric_fp32 = float(validate(_compile_f32(model), list(validation)))
    metric = float(validate(_compile_f32(quantized), list(validation)))
    drop = _drop(metric_fp32, metric, drop_type)
    kept = sorted(set(full_ops) - set(quantized_operations(quantized)))
    within = bool(drop <= max_drop + 1e-12)
    _save(quantized, model, dst)
    record = _record(
        nncf,
        preset,
        samples,
        ignored_scope,
        fast_bias_correction=bool(fast_bias_correction),
        subset_size=kwargs["subset_size"],
        model_type=model_type,
        model=quantized,
    )
    record.update(
        max_drop=float(max_drop),
        drop_type=drop_type,
        metric_fp32=metric_fp32,
        metric_int8=metric_int8,
        metric=metric,
        drop=float(drop),
        within_max_drop=within,
        kept_fp32=kept,
        validation_items=len(validation),
    )
    (log.info if within else log.warning)(
        "nncf accuracy control %s: metric %.4f (fp32) / %.4f (int8) -> %.4f, drop %.4g %s "
        "(max %.4g), %d ops kept in FP32",
        Path(src_xml).name,
        metric_fp32,
        metric_int8,
        metric,
        drop,
        drop_type,
        max_drop,
        len(kept),
    )
    return record


def output_agreement(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    *,
    iou_outputs: Sequence[str] = (),
) -> float:
    """Agreement of ``outputs`` with ``reference`` in [0, 1], averaged over the reference's
    names: for names in ``iou_outputs`` (mask logits, B x N x h x w) the mean IoU of the masks
    ``> 0`` over B x N (1 where both masks are empty); for the others
    ``max(0, 1 - ||out - ref|| / ||ref||)`` (relative L2 error, 1 where both are zero)."""
    scores = []
    for name, ref in reference.items():
        out = np.asarray(outputs[name], dtype=np.float32)
        ref = np.asarray(ref, dtype=np.float32)
        if name in iou_outputs:
            a = (ref > 0).reshape(ref.shape[0] * ref.shape[1], -1)
            b = (out > 0).reshape(a.shape[0], -1)
            inter = (a & b).sum(1)
            union = (a | b).sum(1)
            scores.append(float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean()))
        else:
            den = float(np.linalg.norm(ref))
            err = float(np.linalg.norm(out - ref))
            scores.append(1.0 if den == 0 and err == 0 else max(0.0, 1.0 - err / max(den, 1e-12)))
    return float(np.mean(scores))


def quantize_ov_int8_accuracy_control_default(
    src_xml: str | Path,
    dst_xml: str | Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    max_drop: float,
    iou_outputs: Sequence[str] = (),
    **options: Any,
) -> dict[str, Any]:
    """``quantize_ov_int8_accuracy_control`` with ``feeds`` as both calibration and validation
    data and the metric 100 x ``output_agreement`` (points, 0-100) of the graph's outputs with
    the FP32 IR's outputs on the same feeds (the FP32 model scores 100).

    Arguments:
      feeds: as ``calibration`` of ``quantize_ov_int8``.
      max_drop: the largest accepted drop, in points (e.g. 1.0: agreement >= 99).
      iou_outputs: output names scored by mask IoU (``> 0``) instead of relative L2 error,
        e.g. ``[graph.name_of("mask_logits")]`` of a decoder.
      options: the other keywords of ``quantize_ov_int8_accuracy_control``.
    Returns / Raises: as ``quantize_ov_int8_accuracy_control``; the record adds
      ``metric_name``.
    """
    model = _read(src_xml)
    _check_feeds(model, feeds, "feeds")
    names = [p.get_any_name() for p in model.outputs]
    unknown = sorted(set(iou_outputs) - set(names))
    if unknown:
        raise ConfigError(f"iou_outputs {unknown}: the IR's outputs are {names}")
    compiled = _compile_f32(model)
    refs = []
    for feed in feeds:
        res = compiled(dict(feed))
        refs.append({n: np.array(res[n]) for n in names})
    del compiled, model
    items = [(dict(f), r) for f, r in zip(feeds, refs)]

    def validate(compiled_model: Any, batch: Iterable[Any]) -> float:
        scores = []
        for feed, ref in batch:
            res = compiled_model(feed)
            out = {n: res[n] for n in ref}
            scores.append(output_agreement(ref, out, iou_outputs=iou_outputs))
        return 100.0 * float(np.mean(scores))

    record = quantize_ov_int8_accuracy_control(
        src_xml, dst_xml, list(feeds), items, validate, max_drop=max_drop, **options
    )
    record["metric_name"] = (
        "100 x output agreement with FP32 (mask IoU for "
        f"{list(iou_outputs)}, 1 - relative L2 error for the other outputs)"
    )
    return record
