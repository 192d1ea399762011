"""INT8 post-training static quantization of a bundle graph with ONNX Runtime (QDQ form)
(``quantize_ort_int8``), and the two-pass flow that measures it against FP32 and leaves the
sensitive nodes in FP32 (``quantize_with_report``). Graph preparation is in ``graph_prep``,
the error report in ``sensitivity``, the exclusion policy in ``deploy.quantize.policy``.

The quantized graph keeps the FP32 graph's input and output names and dtypes (``image``
uint8, everything else float32): ONNX Runtime inserts ``QuantizeLinear`` /
``DequantizeLinear`` pairs inside the graph, and its CPU provider fuses each
``DQ -> Conv/MatMul -> Q`` group into an integer kernel (``QLinearConv``,
``QLinearMatMul`` / ``MatMulIntegerToFloat``) when the session is created.

Defaults, measured on a 2-core AMD EPYC (AVX-512 VNNI), ORT 1.32 CPU provider, 2 threads
(``DEFAULTS_RATIONALE``): activations ``QUInt8`` (asymmetric), weights ``QInt8`` symmetric
per output channel, no ``reduce_range``, MinMax calibration, ``preprocess`` first (ORT's
``quant_pre_process`` plus the input normalisation as one ``BatchNormalization``). The
random-init edge-s encoder at 480 x 640 runs 1.7-1.8x faster than FP32 (p50, interleaved;
2.3-2.7x in CPU time), the shipped edge-xs encoder at 256 x 320 ~1.4x; decoders of 1-2 ms
(edge-xs) get slower (Q/DQ overhead), edge-s decoders 1.3x (panoptic) and 2.4x (prompt).

Sources:
  * ONNX Runtime, "Quantize ONNX models":
    https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html
    (static quantization, QDQ format, U8S8 on x86, ``reduce_range`` for non-VNNI CPUs,
    pre-processing, the ``qdq_loss_debug`` debugging tools).
  * ``onnxruntime.quantization.quantize_static`` docstring ("Choosing parameters for CPU
    inference") and ``onnxruntime.quantization.qdq_loss_debug`` (installed version).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import BackendError, ConfigError
from ...quantize.policy import choose_exclusions
from ...quantize.report import format_report, write_report_json
from .feeds import check_calibration, reader, uniform_feed_shapes
from .graph_prep import (
    check_node_names,
    count_ops,
    existing_model,
    float_inputs_for_excluded,
    graph_io,
    ort_quantization,
    preprocess,
    versions,
)
from .logs import quiet_ort, summarize_quiet
from .sensitivity import tensor_error_report

__all__ = [
    "CALIBRATE_METHODS",
    "DEFAULTS_RATIONALE",
    "QUANT_TYPES",
    "quantize_ort_int8",
    "quantize_with_report",
]

log = logging.getLogger(__name__)

#: calibration methods accepted by ``quantize_ort_int8`` (ORT ``CalibrationMethod`` members)
CALIBRATE_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
#: quantized data types accepted for activations and weights (ORT ``QuantType`` members)
QUANT_TYPES = {"quint8": "QUInt8", "qint8": "QInt8"}

DEFAULTS_RATIONALE = (
    "QUInt8 activations x QInt8 weights (U8S8): the pair ORT's x86 integer kernels (MLAS, "
    "VNNI) are built for; QInt8 activations (S8S8) ran the edge-s encoder 1.8x slower than "
    "U8S8 and QInt8 symmetric 2.4x slower, at equal or worse accuracy. Per-channel weights: "
    "same speed as per-tensor (within noise), lower error (edge-xs features 0.036 vs 0.044 "
    "relative L2). reduce_range (7-bit weights, for CPUs without VNNI): same speed, higher "
    "error (0.044 / 0.016 vs 0.036 / 0.014). preprocess: the encoder's INT8 graph 1.3x faster "
    "with it (the image normalisation otherwise runs as NHWC Sub / Div on ORT's slow "
    "broadcast path), same error. MinMax calibration: entropy / percentile gave the same "
    "error (+-0.001) on the clip and take 2-3x longer."
)


def quantize_ort_int8(
    src: str | Path,
    dst: str | Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
    *,
    per_channel: bool = True,
    exclude_nodes: Sequence[str] = (),
    calibrate_method: str = "minmax",
    op_types: Sequence[str] | None = None,
    activation_type: str = "quint8",
    weight_type: str = "qint8",
    reduce_range: bool = False,
    pre_process: bool = True,
    extra_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Static INT8 quantization of one ONNX graph in QDQ form (ONNX Runtime
    ``quantize_static``).

    Arguments:
      src: the FP32 ONNX graph (e.g. ``bundle.graph_path("encoder", "onnx")``).
      dst: where to write the QDQ graph (parent directories are created).
      calibration: feed dicts, input name -> numpy array with the graph input's dtype
        (encoder: ``image`` uint8 1 x H x W x 3; decoders: ``feats`` float32 1 x D x H/8 x W/8,
        ``boxes`` float32 1 x P x 4 in input pixels). Representative frames, 8-100 of them;
        every array is kept in memory.
      per_channel: weights quantized per output channel (else per tensor).
      exclude_nodes: node names left in FP32 (ORT ``nodes_to_exclude``). Names are those of
        the graph after pre-processing, i.e. the ``node`` column of ``tensor_error_report``.
        An excluded node whose input comes from another excluded node (or a graph input)
        reads that tensor in FP32 even where ORT quantized it for some other consumer.
      calibrate_method: "minmax" | "entropy" | "percentile" (range of each activation).
      op_types: operator types to quantize (None: every type ORT can quantize).
      activation_type, weight_type: "quint8" | "qint8".
      reduce_range: 7-bit weights (for CPUs without VNNI; costs accuracy).
      pre_process: run ``preprocess`` first (shape inference + basic optimisation).
      extra_options: passed to ``quantize_static`` (e.g. {"ActivationSymmetric": True}).
    Returns:
      the record (JSON-serialisable): {"tool", "quant_format": "QDQ", "method" (=
      "calibrate_method"), "calibrate_method", "per_channel", "activation_type" ("QUInt8" |
      "QInt8"), "weight_type", "reduce_range", "op_types", "excluded" (node names),
      "excluded_inputs_rewired_to_fp32", "calibration_samples", "pre_process" (variant or
      None), "qdq_nodes" ({"QuantizeLinear": n, "DequantizeLinear": m}), "inputs" /
      "outputs" ({name: dtype}), "source", "output", "versions" ({"onnxruntime", "onnx"})}.
    Raises:
      InputError: ``src`` missing, or calibration feeds that do not match the graph inputs.
      ConfigError: an unknown calibrate_method / quantization type, or an excluded node
        name the graph does not have.
      MissingDependencyError: ``onnxruntime.quantization`` (or onnx) is not installed.
      BackendError: quantization failed or changed the graph's I/O names or dtypes
        (``dst`` is then left untouched).
    """
    q = ort_quantization()
    src, dst = existing_model(src, "src"), Path(dst)
    _check_options(calibrate_method, activation_type, weight_type, exclude_nodes)
    io = graph_io(src)
    feeds = check_calibration(calibration, io["inputs"])
    if calibrate_method != "minmax":
        feeds = uniform_feed_shapes(feeds)
    options = _static_options(
        q, op_types, per_channel, reduce_range, (activation_type, weight_type), exclude_nodes
    )
    options["calibrate_method"] = getattr(q.CalibrationMethod, CALIBRATE_METHODS[calibrate_method])
    options["extra_options"] = dict(extra_options or {})
    pre, rewired = _quantize_checked(q, src, dst, feeds, options, io, pre_process)
    record = {
        "tool": "onnxruntime.quantization.quantize_static",
        "quant_format": "QDQ",
        "method": calibrate_method,
        "calibrate_method": calibrate_method,
        "per_channel": bool(per_channel),
        "activation_type": QUANT_TYPES[activation_type],
        "weight_type": QUANT_TYPES[weight_type],
        "reduce_range": bool(reduce_range),
        "op_types": sorted(op_types) if op_types else "all",
        "excluded": list(exclude_nodes),
        "excluded_inputs_rewired_to_fp32": rewired,
        "calibration_samples": len(feeds),
        "pre_process": pre,
    }
    return {**record, **_result_record(src, dst, io)}


def _quantize_checked(
    q: Any,
    src: Path,
    dst: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    options: Mapping[str, Any],
    io: Mapping[str, Any],
    pre_process: bool,
) -> tuple[str | None, int]:
    """Pre-process (optionally), quantize, rewire the excluded nodes' inputs, check the I/O
    and move the result to ``dst``; returns (pre-processing variant, inputs rewired)."""
    exclude_nodes = options["nodes_to_exclude"]
    with tempfile.TemporaryDirectory(prefix="rapsam-int8-") as tmp:
        model_in, pre = src, None
        if pre_process:
            model_in = Path(tmp) / "preprocessed.onnx"
            pre = preprocess(src, model_in)
        check_node_names(model_in, exclude_nodes)
        out = Path(tmp) / "qdq.onnx"  # moved to dst once checked
        _quantize_static(q, src, model_in, out, feeds, options)
        rewired = float_inputs_for_excluded(out, exclude_nodes)
        got = graph_io(out)
        if got != io:
            raise BackendError(
                f"the quantized graph's I/O {got} differs from the FP32 graph's {io} "
                "(the runtime contract needs the same names and dtypes)"
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), str(dst))
    return pre, rewired


def _static_options(
    q: Any,
    op_types: Sequence[str] | None,
    per_channel: bool,
    reduce_range: bool,
    types: tuple[str, str],
    exclude_nodes: Sequence[str],
) -> dict[str, Any]:
    """``quantize_static`` keywords from this module's option names (``types``: activation
    and weight type)."""
    activation_type, weight_type = types
    return {
        "op_types_to_quantize": list(op_types) if op_types else None,
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "activation_type": getattr(q.QuantType, QUANT_TYPES[activation_type]),
        "weight_type": getattr(q.QuantType, QUANT_TYPES[weight_type]),
        "nodes_to_exclude": list(exclude_nodes),
    }


def _result_record(src: Path, dst: Path, io: Mapping[str, Any]) -> dict[str, Any]:
    """What was written: Q / DQ node counts, the I/O signature, file names (no folders: the
    record goes into bundles users share) and versions."""
    ops = count_ops(dst)
    return {
        "qdq_nodes": {
            "QuantizeLinear": ops.get("QuantizeLinear", 0),
            "DequantizeLinear": ops.get("DequantizeLinear", 0),
        },
        "inputs": io["inputs"],
        "outputs": io["outputs"],
        "source": Path(src).name,
        "output": Path(dst).name,
        "versions": versions(),
    }


def _check_options(
    calibrate_method: str, activation_type: str, weight_type: str, exclude_nodes: Any
) -> None:
    if calibrate_method not in CALIBRATE_METHODS:
        raise ConfigError(
            f"calibrate_method must be one of {sorted(CALIBRATE_METHODS)}, got {calibrate_method!r}"
        )
    for what, value in (("activation_type", activation_type), ("weight_type", weight_type)):
        if value not in QUANT_TYPES:
            raise ConfigError(f"{what} must be one of {sorted(QUANT_TYPES)}, got {value!r}")
    if isinstance(exclude_nodes, str):
        raise ConfigError("exclude_nodes must be a sequence of node names, not one string")


def _quantize_static(
    q: Any,
    src: Path,
    model_in: Path,
    out: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    options: Mapping[str, Any],
) -> None:
    """``quantize_static`` in QDQ form, its known harmless warnings counted (``quiet_ort``)."""
    with quiet_ort() as counts:
        try:
            q.quantize_static(
                str(model_in), str(out), reader(feeds), quant_format=q.QuantFormat.QDQ, **options
            )
        except Exception as e:
            raise BackendError(f"onnxruntime quantize_static failed on {src}: {e}") from e
    summarize_quiet(counts, src)


def quantize_with_report(
    src: str | Path,
    dst: str | Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
    *,
    report_path: str | Path | None = None,
    max_exclusions: int = 4,
    sqnr_floor_db: float = 20.0,
    top: int | None = 50,
    verbose: bool = True,
    **kwargs: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Quantize ``src`` (``quantize_ort_int8``), measure it (``tensor_error_report`` against
    the pre-processed FP32 graph), and if some tensors are below ``sqnr_floor_db``
    re-quantize with ``choose_exclusions`` (plus any ``exclude_nodes`` given) left in FP32.
    The second graph is kept only if its worst graph-output SQNR is better than the first's.

    Arguments:
      src, dst, calibration: as ``quantize_ort_int8`` (``**kwargs`` too).
      report_path: where to write the JSON (record, first and final report); None: no file.
      max_exclusions, sqnr_floor_db: passed to ``choose_exclusions``.
      top: report rows kept (None: all).
      verbose: log a short table of the worst tensors (INFO level of this module's logger).
    Returns:
      (record, report) of the graph written to ``dst``, report worst first (``top`` rows).
      The record gains "output_sqnr_db" ({output name: SQNR in dB on the calibration
      feeds}), "report_path" (when written), and either "first_pass" ({"excluded",
      "output_sqnr_db"} of the first graph, when the second replaced it) or
      "rejected_exclusions" ({"excluded", "output_sqnr_db"} of a second graph that was no
      better). Cost: two quantizations and two reports when a second pass runs (edge-xs:
      4-7 s per graph; edge-s encoder at 640: ~25 s, 2 cores).
    Raises:
      as ``quantize_ort_int8`` and ``tensor_error_report``.
    """
    src = existing_model(src, "src")
    dst = Path(dst)
    given = list(kwargs.pop("exclude_nodes", ()))
    pre_process = bool(kwargs.pop("pre_process", True))
    with tempfile.TemporaryDirectory(prefix="rapsam-int8-report-") as tmp:
        ref, pre = src, None
        if pre_process:  # once: the FP32 reference and the quantizer's input are the same graph
            ref = Path(tmp) / "fp32_preprocessed.onnx"
            pre = preprocess(src, ref)

        def _run(out: Path, exclude: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            rec = quantize_ort_int8(
                ref, out, calibration, exclude_nodes=exclude, pre_process=False, **kwargs
            )
            rec.update(source=src.name, output=dst.name, pre_process=pre)
            rep = tensor_error_report(ref, out, calibration, top=None)
            rec["output_sqnr_db"] = {r["tensor"]: r["sqnr_db"] for r in rep if r["is_output"]}
            return rec, rep

        record, report = _run(dst, given)
        first_report = report
        exclusions = [
            n
            for n in choose_exclusions(
                report, max_nodes=max_exclusions, sqnr_floor_db=sqnr_floor_db, graph=ref
            )
            if n not in given
        ]
        if exclusions:
            trial = Path(tmp) / "second_pass.onnx"
            record, report = _keep_better(
                dst, trial, (record, report), _run(trial, [*given, *exclusions]), given, exclusions
            )
    if verbose:
        log.info("INT8 %s: worst tensors\n%s", dst.name, format_report(report))
    if top is not None:
        report, first_report = report[:top], first_report[:top]
    if report_path is not None:
        record["report_path"] = Path(report_path).name
        payload = {"record": record, "report": report, "first_report": first_report}
        write_report_json(report_path, payload)
    return record, report


def _keep_better(
    dst: Path,
    trial: Path,
    first: tuple[dict[str, Any], list[dict[str, Any]]],
    second: tuple[dict[str, Any], list[dict[str, Any]]],
    given: list[str],
    exclusions: list[str],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The second pass (``trial``, with ``exclusions``) replaces ``dst`` only if its worst
    graph-output SQNR beats the first pass's; the record says which was kept."""
    (record, report), (rec2, rep2) = first, second
    worst1 = min(record["output_sqnr_db"].values(), default=0.0)
    worst2 = min(rec2["output_sqnr_db"].values(), default=0.0)
    if worst2 > worst1:
        shutil.copyfile(trial, dst)
        rec2["first_pass"] = {"excluded": given, "output_sqnr_db": record["output_sqnr_db"]}
        return rec2, rep2
    # the exclusions did not help the outputs: keep the first graph
    record["rejected_exclusions"] = {
        "excluded": exclusions,
        "output_sqnr_db": rec2["output_sqnr_db"],
    }
    return record, report
