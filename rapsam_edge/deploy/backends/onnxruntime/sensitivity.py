"""Sensitivity of a QDQ graph: the per-tensor error against its FP32 graph
(``tensor_error_report``: SQNR, relative L2, the error each node adds), the measurement the
FP32-fallback policy (``deploy.quantize.policy.choose_exclusions``) decides from.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import InputError
from .feeds import check_calibration
from .graph_prep import existing_model, graph_io, ort_quantization, producers

__all__ = ["EXACT_DB", "tensor_error_report"]


class _ErrorAccumulator:
    """Sums of squares over calibration samples for one tensor: SQNR and relative L2 of the
    concatenation equal those of ORT's ``compute_signal_to_quantization_noice_ratio``."""

    __slots__ = ("diff", "local", "ref", "ref_pre")

    def __init__(self) -> None:
        self.ref = self.diff = self.ref_pre = self.local = 0.0

    def add(self, ref: np.ndarray, test: np.ndarray, pre: np.ndarray | None = None) -> None:
        # float32 BLAS dot products: ~0.01 dB from the float64 result, 10x faster
        r = np.asarray(ref, dtype=np.float32).reshape(-1)
        t = np.asarray(test, dtype=np.float32).reshape(-1)
        d = t - r
        self.ref += float(np.dot(r, r))
        self.diff += float(np.dot(d, d))
        if pre is not None:
            p = np.asarray(pre, dtype=np.float32).reshape(-1)
            d = t - p
            self.ref_pre += float(np.dot(p, p))
            self.local += float(np.dot(d, d))

    @staticmethod
    def _db(signal: float, noise: float) -> float:
        eps = float(np.finfo(np.float32).eps)
        db = 20.0 * math.log10(max(math.sqrt(signal), eps) / max(math.sqrt(noise), eps))
        return min(db, EXACT_DB)

    def sqnr_db(self) -> float:
        return self._db(self.ref, self.diff)

    def relative_l2(self) -> float:
        return math.sqrt(self.diff) / max(math.sqrt(self.ref), float(np.finfo(np.float32).eps))

    def local_sqnr_db(self) -> float:
        return self._db(self.ref_pre, self.local)


#: SQNR (dB) reported for a tensor that is exact (or better than this): a graph input, or a
#: tensor whose error is below float32 rounding
EXACT_DB = 100.0


def _augmented_session(src: Path, dst: Path) -> tuple[Any, list[str]]:
    """``src`` with every float tensor also an output (``qdq_loss_debug``), as an ORT session
    without graph optimisation (the tensors keep their names), and the names of its
    outputs with ORT's save suffix removed."""
    import onnxruntime as ort
    from onnxruntime.quantization import qdq_loss_debug as dbg

    dbg.modify_model_output_intermediate_tensors(str(src), str(dst))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(dst), sess_options=opts, providers=["CPUExecutionProvider"])
    suffix = getattr(dbg, "_TENSOR_SAVE_POSTFIX", "_ReshapedSavedOutput")
    names = [o.name.removesuffix(suffix) for o in sess.get_outputs()]
    return sess, names


def tensor_error_report(
    src_fp32: str | Path,
    dst_qdq: str | Path,
    calibration: Sequence[Mapping[str, np.ndarray]],
    *,
    top: int | None = 20,
) -> list[dict[str, Any]]:
    """Per-tensor error of a QDQ graph against its FP32 graph on ``calibration``, worst first.

    Both graphs run with every intermediate float tensor made an output
    (``onnxruntime.quantization.qdq_loss_debug.modify_model_output_intermediate_tensors``,
    graph optimisation off), one calibration sample at a time so that memory stays bounded
    (``collect_activations`` would hold every activation of every sample: gigabytes for
    edge-s at 640); QDQ tensors are matched to FP32 tensors by name
    (``qdq_loss_debug.create_activation_matching``) and sums of squares are accumulated, which
    gives the numbers of ORT's ``compute_activation_error`` (SQNR over the concatenated
    samples; checked to 0.05 dB in the tests). ``src_fp32`` should be the float graph the
    QDQ graph was made from (after pre-processing, as ``quantize_with_report`` does); tensors absent from either graph are
    skipped. The graph outputs are always listed (quantized or not).

    Rows (dicts):
      tensor: the activation's name.
      node, op_type: the node producing it in the QDQ graph (a quantized ``Relu`` / ``Clip``
        is folded into its producer's Q/DQ range, so that producer is named).
      sqnr_db: SQNR (dB, capped at ``EXACT_DB``) of the QDQ graph's dequantized tensor
        against the FP32 tensor: the error accumulated up to that tensor (ORT's
        ``xmodel_err``). Rule of thumb: >= 30 dB harmless, < 20 dB worth looking at.
      relative_l2: ||q - f|| / ||f|| of the same (= 10 ** (-sqnr_db / 20)).
      local_sqnr_db: SQNR of the tensor's own QuantizeLinear -> DequantizeLinear step
        (ORT's ``qdq_err``); None for a graph output that is not quantized.
      sqnr_drop_db: the ``sqnr_db`` of the node's worst float input minus its own: the error
        that node adds (graph inputs count as exact); None when its inputs are not float
        tensors (e.g. a ``Cast`` of a boolean mask).
      quantized, is_output: booleans.
    Sorted by ``sqnr_db`` ascending (worst first); the first ``top`` rows (None: all).

    Raises:
      InputError: a missing graph file or calibration feeds that do not match the graph.
      MissingDependencyError: ``onnxruntime.quantization`` is not installed.
    """
    ort_quantization()
    src_fp32 = existing_model(src_fp32, "src_fp32")
    dst_qdq = existing_model(dst_qdq, "dst_qdq")
    io = graph_io(src_fp32)
    feeds = check_calibration(calibration, io["inputs"])
    if graph_io(dst_qdq)["inputs"] != io["inputs"]:
        raise InputError(f"{dst_qdq} and {src_fp32} have different inputs")
    acc, quantized = _accumulate_errors(src_fp32, dst_qdq, feeds)
    rows = _report_rows(src_fp32, dst_qdq, io, acc, quantized)
    rows.sort(key=lambda r: (r["sqnr_db"], -(r["sqnr_drop_db"] or 0.0), r["tensor"]))
    return rows if top is None else rows[: max(int(top), 0)]


def _accumulate_errors(
    src_fp32: Path, dst_qdq: Path, feeds: Sequence[Mapping[str, np.ndarray]]
) -> tuple[dict[str, _ErrorAccumulator], set[str]]:
    """Run both graphs with every float tensor an output, one sample at a time; sums of
    squares per tensor, and the names of the tensors the QDQ graph quantized."""
    from onnxruntime.quantization import qdq_loss_debug as dbg

    acc: dict[str, _ErrorAccumulator] = {}
    quantized: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="rapsam-qdq-debug-") as tmp:
        f_sess, f_names = _augmented_session(src_fp32, Path(tmp) / "float_aug.onnx")
        q_sess, q_names = _augmented_session(dst_qdq, Path(tmp) / "qdq_aug.onnx")
        for feed in feeds:
            f_acts = {n: [a] for n, a in zip(f_names, f_sess.run(None, feed))}
            q_acts = {n: [a] for n, a in zip(q_names, q_sess.run(None, feed))}
            matching = dbg.create_activation_matching(q_acts, f_acts)
            for name, match in matching.items():
                if "float" not in match or match["float"][0].size != match["post_qdq"][0].size:
                    continue
                quantized.add(name)
                acc.setdefault(name, _ErrorAccumulator()).add(
                    match["float"][0], match["post_qdq"][0], match["pre_qdq"][0]
                )
            # unquantized float tensors present in both (graph outputs, outputs of excluded
            # nodes): needed for the graph outputs' rows and for the inputs of each node
            for name, (fa,) in f_acts.items():
                if name in matching or name not in q_acts or q_acts[name][0].size != fa.size:
                    continue
                acc.setdefault(name, _ErrorAccumulator()).add(fa, q_acts[name][0])
        del f_sess, q_sess
    return acc, quantized


def _report_rows(
    src_fp32: Path,
    dst_qdq: Path,
    io: Mapping[str, Mapping[str, str]],
    acc: Mapping[str, _ErrorAccumulator],
    quantized: set[str],
) -> list[dict[str, Any]]:
    """One row per quantized tensor and graph output (unsorted)."""
    import onnx

    q_producers = producers(dst_qdq)
    fmodel = onnx.load(str(src_fp32), load_external_data=False)
    f_producers = {t: (n.name, n.op_type) for n in fmodel.graph.node for t in n.output}
    node_inputs = {n.name: list(n.input) for n in fmodel.graph.node}
    initializers = {t.name for t in fmodel.graph.initializer}
    outputs = set(io["outputs"])
    rows = []
    for name in sorted(quantized | (outputs & set(acc))):
        a = acc[name]
        sqnr = a.sqnr_db()
        node, op = (
            q_producers.get(name + "_QuantizeLinear_Input")
            or q_producers.get(name)
            or f_producers.get(name)
            or (None, None)
        )
        drop = _sqnr_drop(
            node, sqnr, node_inputs.get(node or "", []), acc, initializers, set(io["inputs"])
        )
        rows.append(
            {
                "tensor": name,
                "node": node,
                "op_type": op,
                "sqnr_db": sqnr,
                "relative_l2": a.relative_l2(),
                "local_sqnr_db": a.local_sqnr_db() if name in quantized else None,
                "sqnr_drop_db": drop,
                "quantized": name in quantized,
                "is_output": name in outputs,
            }
        )
    return rows


def _sqnr_drop(
    node: str | None,
    sqnr: float,
    inputs: Sequence[str],
    acc: Mapping[str, _ErrorAccumulator],
    initializers: set[str],
    graph_inputs: set[str],
) -> float | None:
    """The error ``node`` adds: its worst float input's SQNR minus its own (graph inputs and
    constants are exact); None when an input is not a float tensor."""
    ins = []
    unknown = False
    for t in inputs:
        if not t or t in initializers:
            continue
        if t in acc:
            ins.append(acc[t].sqnr_db())
        elif t in graph_inputs:
            ins.append(EXACT_DB)
        else:  # not a float tensor (shape, bool mask, indices)
            unknown = True
    if node is not None and ins:
        return min(ins) - sqnr
    if node is not None and not unknown:  # only initializers: a constant
        return EXACT_DB - sqnr
    return None
