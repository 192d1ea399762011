"""OpenVINO INT8 with accuracy control (NNCF ``quantize_with_accuracy_control``).

``quantize_ov_int8_accuracy_control`` runs ``nncf.quantize_with_accuracy_control``: the same
quantization, then a validation metric (higher is better) on the FP32 and the INT8 model; while
the drop exceeds ``max_drop`` it ranks groups of quantizers by their contribution to the drop
and reverts the worst operations to floating point, one group per iteration
(https://docs.openvino.ai/2025/openvino-workflow/model-optimization-guide/quantizing-models-post-training/quantizing-with-accuracy-control.html).
``quantize_ov_int8_accuracy_control_default`` is the same with a built-in metric: agreement
of the graph's outputs with the FP32 IR's on the calibration feeds.

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

from ....errors import BackendError, ConfigError, InputError
from .graph import (
    check_dst,
    check_feeds,
    compile_f32,
    nncf_module,
    ov_module,
    quantized_operations,
    read,
    save,
)
from .int8 import int8_record, nncf_options

__all__ = [
    "DROP_TYPES",
    "output_agreement",
    "quantize_ov_int8_accuracy_control",
    "quantize_ov_int8_accuracy_control_default",
]

log = logging.getLogger(__name__)

DROP_TYPES = ("absolute", "relative")


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
    nncf = nncf_module()
    _check_arguments(
        drop_type, max_drop, validate, validation, max_num_iterations, ranking_subset_size
    )
    model, dst = read(src_xml), check_dst(src_xml, dst_xml)
    check_feeds(model, calibration, "calibration")
    kwargs, samples = nncf_options(
        nncf, preset, subset_size, len(calibration), ignored_scope, model_type
    )
    kwargs.update(max_drop=float(max_drop), drop_type=nncf.DropType(drop_type))
    kwargs["fast_bias_correction"] = bool(fast_bias_correction)
    restorer = {
        "max_num_iterations": max_num_iterations,
        "ranking_subset_size": ranking_subset_size,
    }
    quantized, metric_int8, full_ops = _run_nncf(
        nncf, model, src_xml, calibration, validation, validate, kwargs, restorer
    )
    result = _measure(
        model, quantized, validate, validation, (metric_int8, full_ops), drop_type, max_drop
    )
    save(quantized, model, dst)
    options = {"fast_bias_correction": bool(fast_bias_correction), "model_type": model_type}
    options.update(subset_size=kwargs["subset_size"], model=quantized)
    record = int8_record(nncf, preset, samples, ignored_scope, **options)
    record.update(result)
    _log_result(Path(src_xml).name, record)
    return record


def _measure(
    model: Any,
    quantized: Any,
    validate: Callable[[Any, Iterable[Any]], float],
    validation: Sequence[Any],
    full: tuple[float, list[str]],
    drop_type: str,
    max_drop: float,
) -> dict[str, Any]:
    """The accuracy-control part of the record: the metric of the FP32, the fully quantized
    (``full``: its metric and quantized operations) and the result model, the drop, and the
    operations NNCF reverted to FP32."""
    metric_int8, full_ops = full
    metric_fp32 = float(validate(compile_f32(model), list(validation)))
    metric = float(validate(compile_f32(quantized), list(validation)))
    drop = _drop(metric_fp32, metric, drop_type)
    return {
        "max_drop": float(max_drop),
        "drop_type": drop_type,
        "metric_fp32": metric_fp32,
        "metric_int8": metric_int8,
        "metric": metric,
        "drop": float(drop),
        "within_max_drop": bool(drop <= max_drop + 1e-12),
        "kept_fp32": sorted(set(full_ops) - set(quantized_operations(quantized))),
        "validation_items": len(validation),
    }


def _log_result(name: str, record: Mapping[str, Any]) -> None:
    (log.info if record["within_max_drop"] else log.warning)(
        "nncf accuracy control %s: metric %.4f (fp32) / %.4f (int8) -> %.4f, drop %.4g %s "
        "(max %.4g), %d ops kept in FP32",
        *(name, record["metric_fp32"], record["metric_int8"], record["metric"]),
        *(record["drop"], record["drop_type"], record["max_drop"], len(record["kept_fp32"])),
    )


def _check_arguments(
    drop_type: str,
    max_drop: Any,
    validate: Any,
    validation: Any,
    max_num_iterations: Any,
    ranking_subset_size: Any,
) -> None:
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


def _run_nncf(
    nncf: Any,
    model: Any,
    src_xml: str | Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
    validation: Sequence[Any],
    validate: Callable[[Any, Iterable[Any]], float],
    kwargs: Mapping[str, Any],
    restorer_options: Mapping[str, int | None],
) -> tuple[Any, float, list[str]]:
    """``nncf.quantize_with_accuracy_control``; returns the result, the metric of the fully
    quantized model NNCF started from, and that model's quantized operations."""
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
        restorer.update({k: v for k, v in restorer_options.items() if v is not None})
        try:
            quantized = nncf.quantize_with_accuracy_control(
                model,
                nncf.Dataset(list(calibration)),
                nncf.Dataset(list(validation)),
                validation_fn=validation_fn,
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
        full = ov_module().Core().read_model(str(Path(tmp) / "intermediate_model.xml"))
        metric_int8 = float(validate(compile_f32(full), list(validation)))
        full_ops = quantized_operations(full)
        del full
    return quantized, metric_int8, full_ops


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
    model = read(src_xml)
    check_feeds(model, feeds, "feeds")
    names = [p.get_any_name() for p in model.outputs]
    unknown = sorted(set(iou_outputs) - set(names))
    if unknown:
        raise ConfigError(f"iou_outputs {unknown}: the IR's outputs are {names}")
    compiled = compile_f32(model)
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
