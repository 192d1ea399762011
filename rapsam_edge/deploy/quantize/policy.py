"""The FP32-fallback policy of quantization: which parts stay in floating point.

* Node level (ONNX Runtime INT8): ``choose_exclusions`` picks, from a per-tensor error report
  (``deploy.backends.onnxruntime.sensitivity.tensor_error_report``), the nodes whose own
  error is large, plus the float chain feeding each up to the first heavy operator.
* Graph level (every backend): ``worst_graph`` picks the converted graph whose FP32 copy
  helps the accuracy gate most; ``rapsam-edge quantize --fallback`` reverts graphs one at a
  time until the gate passes (``deploy.quantize.pipeline``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError

__all__ = ["HEAVY_OPS", "choose_exclusions", "gate_score", "worst_graph"]

log = logging.getLogger(__name__)

#: operators whose upstream walk in ``choose_exclusions`` stops (they stay quantized: they
#: are where INT8 saves time)
HEAVY_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})


_FLOAT_TYPES = (1, 10, 16)  # ONNX FLOAT, FLOAT16, BFLOAT16


def _float_tensors(model: Any) -> set[str]:
    """Names of the float tensors of ``model`` (types from its value_info, inferred if
    missing)."""
    import onnx

    g = model.graph
    if not g.value_info:
        g = onnx.shape_inference.infer_shapes(model).graph
    out = {
        v.name
        for v in (*g.value_info, *g.input, *g.output)
        if v.type.tensor_type.elem_type in _FLOAT_TYPES
    }
    out.update(t.name for t in g.initializer if t.data_type in _FLOAT_TYPES)
    return out


def _upstream(graph: Any, seeds: Sequence[str], limit: int) -> list[str]:
    """``seeds`` and the nodes feeding them through float tensors (shape and index inputs
    are not followed), stopping at ``HEAVY_OPS`` (not included), at most ``limit`` extra
    nodes, nearest first."""
    import onnx

    model = graph if isinstance(graph, onnx.ModelProto) else onnx.load(str(graph))
    floats = _float_tensors(model)
    producer = {t: n for n in model.graph.node for t in n.output}
    by_name = {n.name: n for n in model.graph.node}
    out = list(dict.fromkeys(seeds))
    queue = [t for s in out if s in by_name for t in by_name[s].input]
    seen: set[str] = set()
    extra = 0
    while queue and extra < limit:
        t = queue.pop(0)
        if t in seen or t not in producer or t not in floats:
            continue
        seen.add(t)
        node = producer[t]
        if node.op_type in HEAVY_OPS or node.name in out:
            continue
        out.append(node.name)
        extra += 1
        queue.extend(node.input)
    return out


def choose_exclusions(
    report: Sequence[Mapping[str, Any]],
    *,
    max_nodes: int = 4,
    sqnr_floor_db: float = 20.0,
    min_drop_db: float = 3.0,
    graph: str | Path | Any | None = None,
    max_upstream: int = 48,
) -> list[str]:
    """Nodes to leave in FP32, decided from a ``tensor_error_report``.

    Seeds: report rows whose ``sqnr_db`` is below ``sqnr_floor_db`` (dB) and whose node adds
    at least ``min_drop_db`` of error itself (``sqnr_drop_db``: a deep node is not blamed for
    the error of its inputs; a ``Cast`` of a thresholded mask has no drop and is never
    chosen), largest drop first, at most ``max_nodes`` distinct nodes.

    A node that amplifies its input error (``Sin`` / ``Cos`` of a position embedding's
    quantized phase, ``LayerNormalization`` of a tensor with a large common offset) is not
    fixed by excluding it alone: ORT still quantizes its input as the output of the
    (quantized) producer. With ``graph`` (the pre-processed FP32 ONNX graph, path or
    ``ModelProto``), each seed therefore brings the nodes feeding it through float tensors,
    up to the first ``Conv`` / ``ConvTranspose`` / ``MatMul`` / ``Gemm`` (those stay
    quantized), at most ``max_upstream`` in all: e.g. the whole input-independent
    position-embedding chain ``Range -> Div -> Mul -> Concat -> Sin``.

    Returns:
      node names, seeds first (worst first), then their upstream nodes.
    Raises:
      ConfigError: a negative ``max_nodes`` or ``max_upstream``.
    """
    if max_nodes < 0 or max_upstream < 0:
        raise ConfigError(
            f"max_nodes and max_upstream must be >= 0, got {max_nodes}, {max_upstream}"
        )
    cands = [
        r
        for r in report
        if r.get("node")
        and r["sqnr_db"] < sqnr_floor_db
        and r.get("sqnr_drop_db") is not None
        and r["sqnr_drop_db"] >= min_drop_db
    ]
    cands.sort(key=lambda r: (-r["sqnr_drop_db"], r["sqnr_db"]))
    seeds: list[str] = []
    for r in cands:
        if len(seeds) >= max_nodes:
            break
        if r["node"] not in seeds:
            seeds.append(r["node"])
    if graph is None or not seeds:
        return seeds
    return _upstream(graph, seeds, max_upstream)


def gate_score(report: Mapping[str, Any]) -> float:
    """How good a gate report is, for ranking fallback candidates: median mask IoU plus
    label agreement, less 1 % of the PQ and mIoU drops."""
    return (
        report["mask_iou_median"]
        + report["label_agreement"]
        - 0.01 * (report["pq_drop"] + report["miou_drop"])
    )


def worst_graph(
    candidates: Sequence[str], gate_without: Callable[[str], Mapping[str, Any]]
) -> str | None:
    """The candidate graph whose FP32 copy scores best (``gate_score``) when reverted alone:
    ``gate_without(g)`` runs the gate with ``g`` back in FP32. None without candidates."""
    best, best_score = None, -1.0
    for g in candidates:
        score = gate_score(gate_without(g))
        if score > best_score:
            best, best_score = g, score
    return best
