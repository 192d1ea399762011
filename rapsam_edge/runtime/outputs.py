"""The one check of the graphs' outputs, applied by the Segmenter to every output of every
graph it runs, before anything is computed from them or returned (no torch here).

A graph that is numerically broken (an FP16 overflow, a bad quantization, a corrupt weight)
gives NaN or infinity. The rule, the same as the C++ runtime's (csrc/runtime/segmenter.cpp
``saturate`` / ``require_finite``):

* logits (``cls_logits``, ``mask_logits``): +/-inf is a definite decision (a reduced-
  precision graph saturating) and becomes +/-``SATURATED_LOGIT``; NaN is a ``BackendError``.
* every other output (``feats``, ``query_embed``, ``iou``): an infinity carries no decision,
  so NaN or infinity is a ``BackendError``.

The error names the graph and the tensor's role ("panoptic_decoder query_embed holds NaN or
infinity ..."), so a broken graph is never blamed on the caller (e.g. as the tracker's
"cost") nor passed on in a result.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import ops
from ..contract.graphs import GRAPH_IO
from ..contract.postprocess import SATURATED_LOGIT
from ..errors import BackendError

__all__ = ["LOGIT_ROLES", "check_shapes", "checked_outputs", "finite_logits", "finite_values"]

#: output roles that are logits (an infinity is a decision); every other output role of
#: ``contract.graphs.GRAPH_IO`` must be finite
LOGIT_ROLES = frozenset({"cls_logits", "mask_logits"})
_HINT = (
    "the graph is numerically broken (e.g. FP16 overflow or a bad quantization): re-export "
    "or re-quantize the bundle, or run it at FP32 (OpenVINO precision='f32')"
)


def finite_logits(a: np.ndarray, where: str) -> np.ndarray:
    """``a`` as C-contiguous float32, scanned once for NaN / infinity (``ops.all_finite``,
    the compiled core's threaded scan): +/-inf becomes +/-``SATURATED_LOGIT`` (a definite
    decision), so the post-processing kernels run on finite logits without a scan of their
    own.

    Raises:
      BackendError: ``a`` holds NaN (named by ``where``).
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    if ops.all_finite(a):
        return a
    if np.isnan(a).any():
        raise BackendError(
            f"{where} holds NaN (a numerically broken graph, e.g. FP16 overflow)", hint=_HINT
        )
    return np.clip(a, -SATURATED_LOGIT, SATURATED_LOGIT)


def finite_values(a: np.ndarray, where: str) -> np.ndarray:
    """``a`` (a graph output that is not a logit: ``feats``, ``iou``, ``query_embed``) as
    C-contiguous float32, scanned once (``ops.all_finite``); unlike a logit, an infinity
    carries no decision here.

    Raises:
      BackendError: ``a`` holds NaN or infinity (named by ``where``)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not ops.all_finite(a):
        raise BackendError(
            f"{where} holds NaN or infinity (a numerically broken graph, e.g. FP16 overflow)",
            hint=_HINT,
        )
    return a


def check_shapes(graph: str, out: Mapping[str, np.ndarray], dims: Mapping[str, int]) -> None:
    """Every output of ``graph`` has its contract rank, and each axis the size ``dims``
    gives for its symbol (``B``, ``N``, ``C1``, ``D``, ``h``, ``w``, ``P``; digits are fixed
    sizes), so nothing downstream indexes past what the graph really gave (the C++
    runtime's ``check_output``, csrc/runtime/segmenter.cpp, checks the same).

    Arguments:
      graph: the graph's name (contract.graphs.GRAPH_NAMES).
      out: role -> array, every output role of ``graph``.
      dims: symbol -> the size this run must give; symbols not in it are not compared.
    Raises:
      BackendError: a rank or size differs, naming the graph, the tensor and both shapes.
    """
    for spec in GRAPH_IO[graph].outputs:
        a = out[spec.role]
        want = [int(d) if d.isdigit() else dims.get(d) for d in spec.shape]
        ok = a.ndim == len(want) and all(w is None or w == n for w, n in zip(want, a.shape))
        if not ok:
            expected = ", ".join(
                f"{d}={w}" if w is not None and not d.isdigit() else (d if w is None else str(w))
                for d, w in zip(spec.shape, want)
            )
            raise BackendError(
                f"{graph} output {spec.role} has shape {list(a.shape)}, expected [{expected}]",
                hint="the graph file does not give what its manifest describes: re-export "
                "the bundle",
            )


def checked_outputs(
    graph: str, out: Mapping[str, np.ndarray], dims: Mapping[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Every output of one run of ``graph`` (role -> array, as ``Backend.run_roles`` gives
    them), checked: shapes against ``dims`` (``check_shapes``, when given), then the rule of
    the module doc: logits saturated, the rest finite.

    Raises:
      BackendError: an output holds NaN (or, not a logit, infinity), naming ``graph`` and
        the role; a shape differs from ``dims``; or a role the contract lists for ``graph``
        is missing.
    """
    roles = GRAPH_IO[graph].output_roles
    missing = [r for r in roles if r not in out]
    if missing:
        raise BackendError(f"{graph} gave no {', '.join(missing)} output")
    if dims is not None:
        check_shapes(graph, out, dims)
    return {
        role: (finite_logits if role in LOGIT_ROLES else finite_values)(
            out[role], f"{graph} {role}"
        )
        for role in roles
    }
