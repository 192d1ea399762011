"""FP16 conversion of a bundle graph for ONNX Runtime: FP16 weights and compute, numerically
fragile operators kept in FP32, graph inputs and outputs keep their FP32 / uint8 dtypes.

Uses ``onnxruntime.transformers.float16.convert_float_to_float16`` (ships with the
``onnxruntime`` wheel; a fork of onnxconverter-common's ``float16`` module, so no extra
package is needed) with ``keep_io_types=True``: a ``Cast`` to FP16 follows each float
input and a ``Cast`` to FP32 precedes each float output, so the runtime contract (names and
dtypes) is unchanged. Every op type in ``keep_fp32_ops`` (and the converter's default block
list) runs in FP32 behind ``Cast`` nodes.

FP16 pays off on GPUs (CUDA / TensorRT execution providers, tensor cores) and ARM CPUs with
FP16 arithmetic. On x86 the ORT CPU provider runs the result (every graph loads and runs)
but slower than FP32: measured on a 2-core AMD EPYC, ORT 1.32, 2 threads, the edge-s
encoder at 480 x 640 at 0.54-0.58x the FP32 speed, the edge-xs encoder at 256 x 320 at
0.6-0.7x, the decoders at 0.75-0.95x; output error vs FP32 (relative L2) 1e-3 (edge-xs
features), 3e-4..1.4e-3 (edge-xs decoders), 1e-2 (random-init edge-s features).

Sources:
  * ONNX Runtime, "Create Float16 and Mixed Precision Models":
    https://onnxruntime.ai/docs/performance/model-optimizations/float16.html
    (``convert_float_to_float16``, ``keep_io_types``, ``op_block_list``,
    ``node_block_list``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import BackendError, ConfigError, InputError, MissingDependencyError

__all__ = ["DEFAULT_KEEP_FP32_OPS", "convert_ort_fp16", "fp16_agreement"]

log = logging.getLogger(__name__)

#: op types kept in FP32 by default: reductions and normalisations whose sums overflow or lose
#: precision in FP16 (LayerNormalization, ReduceMean, Softmax), transcendental and power
#: functions of large arguments (Exp, Pow, Sqrt, Sin / Cos of position-embedding phases),
#: divisions by small numbers (Div, Reciprocal), index arithmetic (Range), resampling
#: coordinates (Resize), and Sigmoid (mask thresholds at 0.5 flip on FP16 rounding)
DEFAULT_KEEP_FP32_OPS: tuple[str, ...] = (
    "Softmax",
    "LayerNormalization",
    "ReduceMean",
    "ReduceSum",
    "Pow",
    "Sqrt",
    "Div",
    "Reciprocal",
    "Exp",
    "Sin",
    "Cos",
    "Range",
    "Resize",
    "Sigmoid",
)


def _float16_module() -> Any:
    try:
        from onnxruntime.transformers import float16
    except ImportError as e:
        raise MissingDependencyError(
            f"onnxruntime.transformers.float16 cannot be imported ({e})",
            hint="pip install onnx (quantization needs it, not torch)",
        ) from e
    return float16


def _io(model: Any) -> dict[str, dict[str, int]]:
    init = {t.name for t in model.graph.initializer}

    def _types(values: Any) -> dict[str, int]:
        return {v.name: v.type.tensor_type.elem_type for v in values if v.name not in init}

    return {"inputs": _types(model.graph.input), "outputs": _types(model.graph.output)}


def convert_ort_fp16(
    src: str | Path,
    dst: str | Path,
    *,
    keep_fp32_ops: Sequence[str] = DEFAULT_KEEP_FP32_OPS,
    keep_fp32_nodes: Sequence[str] = (),
    check: bool = True,
    timing_feed: Mapping[str, np.ndarray] | None = None,
    timing_runs: int = 10,
    threads: int = 2,
) -> dict[str, Any]:
    """Convert the FP32 ONNX graph ``src`` to FP16 (``dst``), I/O dtypes unchanged.

    Arguments:
      src: FP32 ONNX graph (e.g. ``bundle.graph_path("encoder", "onnx")``).
      dst: where to write the FP16 graph (parent directories are created).
      keep_fp32_ops: op types left in FP32 (added to the converter's default block list).
      keep_fp32_nodes: node names left in FP32.
      check: load ``dst`` in an ORT CPU session (fails if a kernel is missing) and run it
        once on zero inputs of a small shape.
      timing_feed: a feed dict (input name -> array) to time FP32 and FP16 on ORT CPU with
        ``threads`` intra-op threads, ``timing_runs`` interleaved runs each after one
        warm-up (None: no timing).
    Returns:
      the record: {"tool", "precision": "fp16", "keep_io_types", "keep_fp32_ops",
      "keep_fp32_nodes", "nodes": {"fp16": n, "fp32": m, "casts": k}, "inputs", "outputs"
      ({name: dtype}), "source", "output", "versions", "ort_cpu_check" (with ``check``:
      {"loaded", "ran", "finite", "smoke_ms"}), "ort_cpu_p50_ms" (with ``timing_feed``:
      {"fp32", "fp16", "threads", "runs"})}.
    Raises:
      InputError: ``src`` is not a file.
      ConfigError: ``keep_fp32_ops`` / ``keep_fp32_nodes`` given as one string.
      MissingDependencyError: onnx / ``onnxruntime.transformers`` missing.
      BackendError: the conversion failed, changed the I/O dtypes, or ORT CPU cannot load or
        run the result.
    """
    f16 = _float16_module()
    import onnx

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"src {str(src)!r} is not a file (an ONNX graph is expected)")
    for what, value in (("keep_fp32_ops", keep_fp32_ops), ("keep_fp32_nodes", keep_fp32_nodes)):
        if isinstance(value, str):
            raise ConfigError(f"{what} must be a sequence of names, not one string")
    model = onnx.load(str(src))
    io_before = _io(model)
    block = sorted(set(f16.DEFAULT_OP_BLOCK_LIST) | set(keep_fp32_ops))
    try:
        converted = f16.convert_float_to_float16(
            model,
            keep_io_types=True,
            op_block_list=block,
            node_block_list=list(keep_fp32_nodes),
        )
    except Exception as e:
        raise BackendError(f"FP16 conversion of {src} failed: {e}") from e
    io_after = _io(converted)
    if io_after != io_before:
        raise BackendError(
            f"FP16 conversion changed the graph I/O of {src}: {io_before} -> {io_after}"
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(dst))
    record = _fp16_record(converted, io_after, src, dst, keep_fp32_ops, keep_fp32_nodes)
    if check:
        record["ort_cpu_check"] = _ort_check(dst)
    if timing_feed is not None:
        record["ort_cpu_p50_ms"] = _time_pair(src, dst, timing_feed, timing_runs, threads)
    return record


def _fp16_record(
    converted: Any,
    io_after: Mapping[str, Mapping[str, int]],
    src: Path,
    dst: Path,
    keep_fp32_ops: Sequence[str],
    keep_fp32_nodes: Sequence[str],
) -> dict[str, Any]:
    """The conversion's record: options, node counts by precision, I/O dtypes, versions."""
    import onnx
    import onnxruntime

    fp16_types = _fp16_tensors(converted)
    casts = sum(n.op_type == "Cast" for n in converted.graph.node)
    n16 = sum(
        n.op_type != "Cast" and any(o in fp16_types for o in n.output) for n in converted.graph.node
    )
    return {
        "tool": "onnxruntime.transformers.float16.convert_float_to_float16",
        "precision": "fp16",
        "keep_io_types": True,
        "keep_fp32_ops": sorted(set(keep_fp32_ops)),
        "keep_fp32_nodes": list(keep_fp32_nodes),
        "nodes": {
            "fp16": int(n16),
            "fp32": int(len(converted.graph.node) - n16 - casts),
            "casts": int(casts),
        },
        "inputs": {k: _dtype_name(v) for k, v in io_after["inputs"].items()},
        "outputs": {k: _dtype_name(v) for k, v in io_after["outputs"].items()},
        "source": Path(src).name,  # names only: the record goes into bundles users share
        "output": Path(dst).name,
        "versions": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
    }


def _time_pair(
    fp32: Path, fp16: Path, feed: Mapping[str, np.ndarray], runs: int, threads: int
) -> dict[str, Any]:
    """p50 latency (ms) of the two graphs on ORT CPU, runs interleaved."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sessions = [
        ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in (fp32, fp16)
    ]
    times: list[list[float]] = [[], []]
    try:
        for s in sessions:
            s.run(None, dict(feed))
        for _ in range(max(int(runs), 1)):
            for i, s in enumerate(sessions):
                t0 = time.perf_counter()
                s.run(None, dict(feed))
                times[i].append(1e3 * (time.perf_counter() - t0))
    except Exception as e:
        raise InputError(f"timing_feed does not run on the graph: {e}") from e
    return {
        "fp32": round(float(np.median(times[0])), 3),
        "fp16": round(float(np.median(times[1])), 3),
        "threads": threads,
        "runs": max(int(runs), 1),
    }


def _fp16_tensors(model: Any) -> set[str]:
    names = set()
    for v in (*model.graph.value_info, *model.graph.output, *model.graph.input):
        if v.type.tensor_type.elem_type == 10:  # FLOAT16
            names.add(v.name)
    for n in model.graph.node:
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == 10:
                    names.update(n.output)
    return names


def _dtype_name(elem_type: int) -> str:
    return {1: "float32", 2: "uint8", 10: "float16", 7: "int64"}.get(elem_type, f"elem{elem_type}")


def _ort_check(path: Path) -> dict[str, Any]:
    """Load on ORT CPU and run once on zeros (dynamic dims: 64 for spatial, 1 otherwise)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise BackendError(f"ORT CPU cannot load the FP16 graph {path}: {e}") from e
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (1 if k < 1 else 64) for k, d in enumerate(i.shape)]
        if i.name.lower().startswith("box") or (len(shape) == 3 and shape[-1] == 4):
            shape = [shape[0], 1, 4]
            arr = np.array([[[8.0, 8.0, 40.0, 40.0]]], dtype=np.float32)
        else:
            dtype = np.uint8 if i.type == "tensor(uint8)" else np.float32
            arr = np.zeros(shape, dtype=dtype)
        feeds[i.name] = arr
    t0 = time.perf_counter()
    try:
        outs = sess.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - ORT's run errors derive from Exception; a smoke run: reported in the record
        return {"loaded": True, "ran": False, "error": str(e).splitlines()[0][:200]}
    return {
        "loaded": True,
        "ran": True,
        "finite": bool(all(np.isfinite(o).all() for o in outs if o.dtype.kind == "f")),
        "smoke_ms": round(1e3 * (time.perf_counter() - t0), 2),
    }


def fp16_agreement(
    src_fp32: str | Path,
    dst_fp16: str | Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
) -> dict[str, float]:
    """Relative L2 error ||fp16 - fp32|| / ||fp32|| of each graph output over ``feeds``
    (ORT CPU), {output name: error}.

    Raises:
      InputError: empty ``feeds``.
    """
    import onnxruntime as ort

    if not feeds:
        raise InputError("feeds is empty")
    a = ort.InferenceSession(str(src_fp32), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(dst_fp16), providers=["CPUExecutionProvider"])
    names = [o.name for o in a.get_outputs()]
    num = dict.fromkeys(names, 0.0)
    den = dict.fromkeys(names, 0.0)
    for feed in feeds:
        for name, x, y in zip(names, a.run(names, dict(feed)), b.run(names, dict(feed))):
            x = np.asarray(x, np.float64)
            y = np.asarray(y, np.float64)
            num[name] += float(((y - x) ** 2).sum())
            den[name] += float((x**2).sum())
    return {n: float(np.sqrt(num[n] / max(den[n], 1e-30))) for n in names}
