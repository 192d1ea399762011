"""Per-operator times from each backend's OWN profiler (``rapsam-edge profile --layers``).

For every graph of a ``Segmenter`` (encoder, panoptic_decoder, prompt_decoder) the graph is
opened a second time from the same file with the same settings plus the library's profiling
switch, run ``warmup`` + ``runs`` times on real inputs made from one frame (the letterboxed
frame for the encoder, its real features for the decoders, three boxes for the prompt
decoder), and the library's per-operator times are aggregated by operator name. The user's
own sessions / compiled models are never switched to profiling, so they are not slowed.

What is measured (per graph; ``ms`` is always milliseconds per run, averaged over ``runs``):

* ONNX Runtime (``ort-cpu``, ``ort-cuda``, ``ort-tensorrt``): a second ``InferenceSession``
  with the backend session's own ``SessionOptions`` (threads, spinning, optimisation level,
  config entries), its providers and provider options, and ``enable_profiling=True``
  (``profile_file_prefix`` in a temporary directory); ``end_profiling()`` writes a Chrome
  trace-event JSON. Each ``cat == "Node"`` event named ``<node>_kernel_time`` is one
  kernel's execution; ``dur`` is in microseconds, ``args.op_name`` its operator type,
  ``args.provider`` the execution provider. Events of the warm-up runs (before the
  first timed run's ``model_run`` session event) are dropped. Names are those of the
  *optimised* graph ORT executes (fused nodes keep or extend an original node's name). On
  GPU providers a kernel's time is its host-side duration. Sources: ONNX Runtime
  "Profiling Tools" (https://onnxruntime.ai/docs/performance/tune-performance/profiling-tools.html)
  and the "Profile the execution of a simple model" example
  (https://onnxruntime.ai/docs/api/python/auto_examples/plot_profiling.html).
* OpenVINO (``openvino``): the backend's model (the same IR / ONNX it read, reshaped as it
  does with ``static_shapes``) compiled on the backend's device with the backend's compile
  config plus ``PERF_COUNT: True`` (``openvino.properties.enable_profiling()``, checked
  to be named "PERF_COUNT" in OpenVINO 2026.4); ``InferRequest.get_profiling_info()``
  gives one ``ProfilingInfo`` per executable-graph node: ``node_name``, ``node_type``,
  ``exec_type`` (the kernel, e.g. ``brgconv_avx512_f32``), ``real_time`` / ``cpu_time``
  (``timedelta``, microsecond resolution) and ``status`` (EXECUTED / NOT_RUN /
  OPTIMIZED_OUT); ``real_time`` of EXECUTED nodes is summed by node name. Names are those
  of OpenVINO's executable graph (``compiled.get_runtime_model()``): most keep the IR's
  operation names, layout conversions appear as extra ``Reorder`` nodes. The CPU plugin
  reports, per node, the MEAN over every inference of the compiled model so far (its
  ``PerfCount::avg``, src/plugins/intel_cpu/src/perf_count.h), so the warm-ups are removed
  by difference: ``(avg_after * (warmup + runs) - avg_warm * warmup) / runs`` (observed
  with OpenVINO 2026.4: the sums fall run over run after a slow first inference; with
  the warm-ups removed they stay below each run's wall time). On other devices (not checked here: no GPU
  / NPU) the counters are taken as per-inference, read after each timed run and averaged. Sources: OpenVINO
  ``ov::ProfilingInfo`` (https://docs.openvino.ai/2025/api/c_cpp_api/structov_1_1_profiling_info.html:
  "If the operation is executed using tiling, the sum time per each tile is indicated as
  the total execution time. Due to parallel execution, the total execution time for all
  nodes might be greater than the total inference time") and "Getting Performance Numbers"
  (internal inference performance counters,
  https://docs.openvino.ai/latest/openvino_docs_MO_DG_Getting_Performance_Numbers.html).
* Other backends (``tensorrt``, ``torch``): no profiler is wired in; the graph is skipped
  with a note (logged and kept in ``LayerTable.graphs``), no rows and no error.

The sum of a graph's operator times (``graph_ms`` in every row) leaves out what happens
between kernels (input / output copies, allocation, scheduling, Python), so it is below
the graph's stage time in the profile report (``stages.encoder``; ``decoder`` is the
panoptic decoder in panoptic / track / stream modes and the prompt decoder in prompt mode):
on edge-xs at 2 threads, of the profiled run's wall time, the encoder's sum is 83-88 %, the
small decoders' 47-76 % (a fixed ~0.3-0.7 ms per call outside the kernels). With parallel
operators (ORT ``inter_op_threads``, OpenVINO tiling) the sum may exceed the wall time.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..contract.graphs import ENCODER, GRAPH_NAMES, PANOPTIC_DECODER, PROMPT_DECODER

__all__ = ["LayerTable", "graph_feeds", "profile_graph", "profile_layers", "top_layers"]

log = logging.getLogger(__name__)

#: boxes given to the prompt decoder, as fractions (x0, y0, x1, y1) of the frame
PROMPT_BOXES = ((0.375, 0.375, 0.625, 0.625), (0.1, 0.1, 0.4, 0.5), (0.55, 0.4, 0.95, 0.9))
#: OpenVINO devices whose performance counters are means since compile (intel_cpu PerfCount)
_OV_CUMULATIVE_DEVICES = ("CPU",)
_KERNEL_SUFFIX = "_kernel_time"


class LayerTable(list):
    """What ``top_layers`` returns: a list of row dicts (JSON-ready) plus ``graphs``, one
    summary per graph: ``backend``, ``profiler`` ("onnxruntime", "openvino" or None),
    ``total_ms`` (sum of all its operators' ms per run, None when skipped), ``run_ms``
    (median wall time of one run of the profiling session / compiled model, ms),
    ``operators`` (how many had time), ``runs``, ``note`` (why it was skipped, else None)."""

    graphs: dict[str, dict[str, Any]]

    def __init__(self, rows: list[dict[str, Any]], graphs: dict[str, dict[str, Any]]):
        super().__init__(rows)
        self.graphs = graphs


# ------------------------------------------------------------------ inputs
def graph_feeds(seg: Any, frame: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs for the Segmenter's three graphs from one frame (in the Segmenter's
    ``color_order``): the letterboxed image, its encoder features (one encoder run on the
    user's backend) and ``PROMPT_BOXES`` in network-input pixels."""
    enc, pan, prm = (seg.graphs[g] for g in GRAPH_NAMES)
    prepared = seg.prepare(frame)
    enc_feeds = {enc.name_of("image"): prepared.image}
    feats = np.ascontiguousarray(enc.run(enc_feeds)[enc.name_of("feats")])
    h, w = prepared.frame_hw
    boxes = np.array(PROMPT_BOXES, dtype=np.float64) * [w, h, w, h] * prepared.scale
    return {
        ENCODER: enc_feeds,
        PANOPTIC_DECODER: {pan.name_of("feats"): feats},
        PROMPT_DECODER: {
            prm.name_of("feats"): feats,
            prm.name_of("boxes"): np.ascontiguousarray(boxes[None], dtype=np.float32),
        },
    }


# ------------------------------------------------------------------ one graph
def _profiler_of(backend: Any) -> str | None:
    session = getattr(backend, "session", None)
    if session is not None and hasattr(session, "end_profiling"):
        return "onnxruntime"
    if all(getattr(backend, a, None) is not None for a in ("core", "model", "config")):
        return "openvino"
    return None


def _add(ops: dict[str, dict[str, Any]], name: str, kind: str, impl: str, us: float) -> None:
    op = ops.setdefault(name, {"type": kind, "impl": impl, "us": 0.0, "calls": 0})
    op["us"] += us
    op["calls"] += 1


def _profile_ort(
    backend: Any, path: Path, feeds: Mapping[str, np.ndarray], runs: int, warmup: int
) -> tuple[dict[str, dict[str, Any]], list[float], int]:
    import onnxruntime as ort

    session = backend.session
    so = session.get_session_options()  # a copy: threads, spinning, config entries
    so.optimized_model_filepath = ""
    with tempfile.TemporaryDirectory(prefix="rapsam-edge-ort-profile-") as tmp:
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "profile")
        options = session.get_provider_options()
        providers = [(p, dict(options.get(p, {}))) for p in session.get_providers()]
        prof = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        walls = []
        try:
            for i in range(warmup + runs):
                t0 = time.perf_counter()
                prof.run(None, dict(feeds))
                if i >= warmup:
                    walls.append((time.perf_counter() - t0) * 1e3)
        finally:
            trace = Path(prof.end_profiling())
        events = json.loads(trace.read_text(encoding="utf-8"))
    if isinstance(events, dict):  # {"traceEvents": [...]} in some versions
        events = events.get("traceEvents", [])
    starts = sorted(
        e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    if len(starts) == warmup + runs:
        cutoff, counted = (starts[warmup] if warmup else -1), runs
    else:  # no run markers: keep everything, divide by every run
        cutoff, counted = -1, warmup + runs
    ops: dict[str, dict[str, Any]] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX) or e.get("ts", 0) < cutoff:
            continue
        args = e.get("args", {})
        _add(
            ops,
            name[: -len(_KERNEL_SUFFIX)],
            str(args.get("op_name", "?")),
            str(args.get("provider", "")),
            float(e.get("dur", 0)),
        )
    return ops, walls, counted


def _ov_counters(request: Any) -> dict[str, tuple[str, str, float]]:
    """node name -> (type, exec type, real time in µs) of the EXECUTED nodes."""
    out: dict[str, tuple[str, str, float]] = {}
    for info in request.get_profiling_info():
        if info.status != info.Status.EXECUTED:
            continue
        us = info.real_time.total_seconds() * 1e6
        kind, impl, prev = out.get(info.node_name, (info.node_type, info.exec_type, 0.0))
        out[info.node_name] = (kind, impl, prev + us)
    return out


def _profile_openvino(
    backend: Any, feeds: Mapping[str, np.ndarray], runs: int, warmup: int
) -> tuple[dict[str, dict[str, Any]], list[float], int]:
    import openvino.properties as props

    model = backend.model
    if getattr(backend, "static_shapes", False):
        model = model.clone()
        model.reshape({name: list(a.shape) for name, a in feeds.items()})
    config = {**backend.config, props.enable_profiling(): True}
    compiled = backend.core.compile_model(model, backend.device, config)
    request = compiled.create_infer_request()
    cumulative = backend.device.split(".")[0].upper() in _OV_CUMULATIVE_DEVICES
    walls: list[float] = []
    for _ in range(warmup):
        request.infer(dict(feeds))
    warm = _ov_counters(request) if cumulative and warmup else {}
    per_run: dict[str, tuple[str, str, float]] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        request.infer(dict(feeds))
        walls.append((time.perf_counter() - t0) * 1e3)
        if not cumulative:
            for name, (kind, impl, us) in _ov_counters(request).items():
                per_run[name] = (kind, impl, per_run.get(name, (kind, impl, 0.0))[2] + us)
    ops: dict[str, dict[str, Any]] = {}
    if cumulative:
        for name, (kind, impl, avg) in _ov_counters(request).items():
            total = avg * (warmup + runs) - warm.get(name, (kind, impl, 0.0))[2] * warmup
            ops[name] = {"type": kind, "impl": impl, "us": max(total, 0.0), "calls": runs}
    else:
        for name, (kind, impl, us) in per_run.items():
            ops[name] = {"type": kind, "impl": impl, "us": us, "calls": runs}
    del request, compiled
    return ops, walls, runs


def profile_graph(
    backend: Any,
    feeds: Mapping[str, np.ndarray],
    *,
    path: str | Path | None = None,
    runs: int = 20,
    warmup: int = 3,
) -> dict[str, Any]:
    """Profile one graph's backend with its library's own profiler (see the module doc).

    Arguments:
      backend: a runtime ``Backend`` (the user's; it is not modified and not run).
      feeds: its inputs (input name -> array).
      path: the graph's ONNX file (ONNX Runtime backends; default: the session's own).
      runs: timed runs; warmup: untimed runs before them (dropped from the counters).
    Returns:
      {"backend", "profiler", "ops": {name: {"type", "impl", "ms" (per run), "calls" (per
      run)}}, "total_ms" (sum of the ops' ms), "run_ms" (median wall ms of one profiled
      run), "runs", "note"}; a backend without a profiler gives no ops, None times and a
      note.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive int, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    profiler = _profiler_of(backend)
    out: dict[str, Any] = {
        "backend": backend.name,
        "profiler": profiler,
        "ops": {},
        "total_ms": None,
        "run_ms": None,
        "runs": runs,
        "note": None,
    }
    if profiler is None:
        out["note"] = f"{backend.name} has no per-operator profiler here; skipped"
        return out
    if profiler == "onnxruntime":
        if path is None:
            path = getattr(backend.session, "_model_path", None)
        if path is None:
            out["note"] = "the ONNX Runtime session's model file is unknown; skipped"
            return out
        raw, walls, counted = _profile_ort(backend, Path(path), feeds, runs, warmup)
    else:
        raw, walls, counted = _profile_openvino(backend, feeds, runs, warmup)
    ops = {
        name: {
            "type": op["type"],
            "impl": op["impl"],
            "ms": op["us"] / 1e3 / counted,
            "calls": op["calls"] / counted,
        }
        for name, op in raw.items()
        if op["us"] > 0
    }
    out["ops"] = ops
    out["total_ms"] = float(sum(op["ms"] for op in ops.values()))
    out["run_ms"] = float(np.median(walls)) if walls else None
    return out


# ------------------------------------------------------------------ all graphs
def profile_layers(
    seg: Any, frame: np.ndarray, *, runs: int = 20, warmup: int = 3
) -> dict[str, dict[str, Any]]:
    """``profile_graph`` for every graph of ``seg`` on real inputs from ``frame`` (H x W x 3
    uint8 in the Segmenter's ``color_order``). Returns {graph: profile_graph's dict}; a
    graph whose profiling fails gets a note with the error (logged) instead of raising, so a
    long profile keeps its report."""
    feeds = graph_feeds(seg, frame)
    out: dict[str, dict[str, Any]] = {}
    order = [g for g in GRAPH_NAMES if g in seg.graphs] + sorted(set(seg.graphs) - set(GRAPH_NAMES))
    for graph in order:
        backend = seg.graphs[graph]
        path = None
        if _profiler_of(backend) == "onnxruntime" and seg.bundle.has(graph, "onnx"):
            path = seg.bundle.graph_path(graph, "onnx")
        try:
            prof = profile_graph(backend, feeds[graph], path=path, runs=runs, warmup=warmup)
        except Exception as e:  # noqa: BLE001 - a library error must not lose the rest of the report
            log.warning("layers: profiling %s on %s failed: %s", graph, backend.name, e)
            prof = {
                "backend": backend.name,
                "profiler": _profiler_of(backend),
                "ops": {},
                "total_ms": None,
                "run_ms": None,
                "runs": runs,
                "note": f"profiling failed: {type(e).__name__}: {e}",
            }
        if prof["note"]:
            log.info("layers: %s (%s): %s", graph, backend.name, prof["note"])
        else:
            log.info(
                "layers: %s on %s (%s profiler): %d operators, %.3f ms per run summed; "
                "%.3f ms wall per profiled run",
                graph,
                backend.name,
                prof["profiler"],
                len(prof["ops"]),
                prof["total_ms"],
                prof["run_ms"],
            )
        out[graph] = prof
    return out


def top_layers(
    seg: Any, frame: np.ndarray, *, top: int = 10, runs: int = 20, warmup: int = 3
) -> LayerTable:
    """The ``top`` slowest operators of each graph of ``seg``, by the backend's own profiler
    (ONNX Runtime session profiling, OpenVINO performance counters; see the module doc).

    Arguments:
      seg: a ``Segmenter``; frame: H x W x 3 uint8 in its ``color_order``.
      top: rows per graph; runs: timed runs per graph; warmup: untimed runs before them.
    Returns:
      a ``LayerTable`` (a list): rows {"graph", "backend", "name" (the library's node
      name), "type" (operator type), "impl" (ORT provider / OpenVINO kernel), "ms" (ms per
      run, mean over ``runs``), "share" (of the graph's profiled total, in (0, 1]),
      "graph_ms" (that total: sum of all the graph's operators, ms per run)}, sorted by
      graph (pipeline order) then ms descending; ``.graphs`` holds each graph's summary
      (totals, wall time per profiled run, notes for skipped graphs).
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    profiles = profile_layers(seg, frame, runs=runs, warmup=warmup)
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    for graph, prof in profiles.items():
        ops = prof["ops"]
        total = prof["total_ms"]
        summary[graph] = {
            "backend": prof["backend"],
            "profiler": prof["profiler"],
            "total_ms": total,
            "run_ms": prof["run_ms"],
            "operators": len(ops),
            "runs": prof["runs"],
            "note": prof["note"],
        }
        ranked = sorted(ops.items(), key=lambda kv: (-kv[1]["ms"], kv[0]))[:top]
        for name, op in ranked:
            rows.append(
                {
                    "graph": graph,
                    "backend": prof["backend"],
                    "name": name,
                    "type": op["type"],
                    "impl": op["impl"],
                    "ms": op["ms"],
                    "share": op["ms"] / total,
                    "graph_ms": total,
                }
            )
    return LayerTable(rows, summary)
