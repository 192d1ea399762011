"""OpenVINO ``FakeQuantize`` nodes -> ONNX ``QuantizeLinear`` / ``DequantizeLinear`` pairs, so a
graph quantized by training (NNCF's torch QAT exports ``org.openvinotoolkit::FakeQuantize``)
runs on ONNX Runtime, whose CPU provider fuses the pairs into integer kernels as it does for
its own post-training QDQ graphs (``int8.py``).

A ``FakeQuantize`` with ``levels`` L and constant ranges ``[lo, hi]`` (input range equal to
the output range) computes ``round((clamp(x, lo, hi) - lo) / s) * s + lo`` with
``s = (hi - lo) / (L - 1)``. The pair ``DequantizeLinear(QuantizeLinear(x, s, z), s, z)``
with the 8-bit zero point ``z = round(-lo / s)`` computes the same wherever ``-lo / s`` is an
integer (NNCF's ranges include 0 on a step: symmetric ones exactly, asymmetric ones to float
rounding) and L <= 256. A weight's symmetric range becomes ``int8`` with zero point 0 (codes
-z .. L-1-z), the form ONNX Runtime's integer kernels prefer; activations stay ``uint8``. Per-channel ranges
(one value per row or output channel) become ``axis`` quantization. ``convert`` refuses a
node it cannot express exactly (non-constant ranges, unequal input and output ranges, more
than 256 levels, non-finite or empty ranges, ranges of different shapes, fewer than 5 inputs, a
missing or non-integer ``levels``), naming it by name and output, rather than writing a
different graph; a graph with no FakeQuantize node is refused too (nothing would be INT8). A
constant weight outside its range is clamped into it (as the FakeQuantize would), since the
8-bit code range can be one step wider than the node's ``levels``; an activation whose
``levels`` leave codes of the 8-bit type unused is refused for the same reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ....errors import ConfigError

__all__ = ["FQ_DOMAIN", "fake_quantize_to_qdq"]

#: the domain NNCF and OpenVINO give their FakeQuantize op in ONNX
FQ_DOMAIN = "org.openvinotoolkit"


def _constants(proto: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return out


def _label(node: Any) -> str:
    """The node as messages name it: its name and its output (unique in a valid graph, so a
    node with an empty or a duplicate name is still found)."""
    out = node.output[0] if node.output else ""
    return f"FakeQuantize {node.name!r} (output {out!r})"


def _levels(node: Any) -> int:
    from onnx import AttributeProto

    found = [a for a in node.attribute if a.name == "levels"]
    if len(found) != 1:
        raise ConfigError(f"{_label(node)} has {len(found)} 'levels' attributes; needs one")
    if found[0].type != AttributeProto.INT:
        raise ConfigError(f"{_label(node)}: 'levels' is not an integer attribute")
    levels = int(found[0].i)
    if not 2 <= levels <= 256:
        raise ConfigError(f"{_label(node)} has {levels} levels; QDQ holds 2 .. 256")
    return levels


def _ranges(node: Any, consts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The node's (lo, hi) after the checks QDQ needs: 5 inputs, constant, finite, non-empty
    ranges of one shape, the input range equal to the output range."""
    if len(node.input) != 5 or len(node.output) != 1:
        raise ConfigError(
            f"{_label(node)} has {len(node.input)} inputs and {len(node.output)} outputs; "
            "needs 5 (x, input low, input high, output low, output high) and 1"
        )
    ranges = [consts.get(name) for name in node.input[1:5]]
    if any(r is None for r in ranges):
        raise ConfigError(f"{_label(node)} has a range that is not a constant")
    il, ih, ol, oh = (np.asarray(r, np.float64) for r in ranges)
    shapes = {r.shape for r in (il, ih, ol, oh)}
    if len(shapes) != 1:
        raise ConfigError(f"{_label(node)}: ranges of different shapes {sorted(shapes)}")
    if il.size == 0:
        raise ConfigError(f"{_label(node)}: empty ranges of shape {il.shape}")
    if not all(np.isfinite(r).all() for r in (il, ih, ol, oh)):
        raise ConfigError(f"{_label(node)}: a range that is not finite (NaN or inf)")
    if not (np.array_equal(il, ol) and np.array_equal(ih, oh)):
        raise ConfigError(f"{_label(node)}: input and output ranges differ")
    return il, ih


def _rank(model: Any, name: str, consts: dict[str, np.ndarray]) -> int | None:
    if name in consts:
        return int(consts[name].ndim)
    g = model.graph
    for v in (*g.input, *g.value_info, *g.output):
        if v.name == name and v.type.tensor_type.HasField("shape"):
            return len(v.type.tensor_type.shape.dim)
    return None


def _axis(node: Any, lo: np.ndarray, rank: int | None) -> int | None:
    """None for one range, else the input's axis of a per-channel range (exactly one dim > 1;
    ranges of lower rank than the input align to its last dims, as broadcasting does)."""
    if lo.size == 1:
        return None
    big = [i for i, n in enumerate(lo.shape) if n > 1]
    if len(big) != 1:
        raise ConfigError(f"{_label(node)}: ranges of shape {lo.shape}")
    if rank is None or rank < lo.ndim:
        raise ConfigError(
            f"{_label(node)}: per-channel ranges of shape {lo.shape} on an input of "
            f"{'unknown rank' if rank is None else f'rank {rank}'}"
        )
    return big[0] + rank - lo.ndim


def _qparams(node: Any, lo: np.ndarray, hi: np.ndarray, levels: int, weight: bool, axis):
    """(scale, zero point array of uint8 or int8) of one FakeQuantize node: int8 with zero
    point 0 for a weight's symmetric range, else uint8 with the range's own zero."""
    if np.any(hi <= lo) or np.any(lo > 0) or np.any(hi < 0):
        raise ConfigError(f"{_label(node)}: a range that does not hold 0")
    scale = ((hi - lo) / (levels - 1)).astype(np.float32)
    if not (np.isfinite(scale).all() and np.all(scale > 0)):
        raise ConfigError(f"{_label(node)}: a step (hi - lo) / (levels - 1) out of float32")
    zero = np.round(-lo / scale)
    if np.any(np.abs(zero + lo / scale) > 1e-2):
        raise ConfigError(f"{_label(node)}: 0 is not on a quantization step")
    symmetric = np.all(zero <= 128) and np.all(levels - 1 - zero <= 127)
    if weight and symmetric and np.all(zero == zero.flat[0]):
        # the same steps counted from 0: the kernels' preferred signed, zero-point-0 weights
        zp = np.zeros_like(zero, dtype=np.int8)
    else:
        if not weight and levels != 256:
            # QuantizeLinear clamps to the uint8 codes 0 .. 255, the node to 0 .. levels - 1
            raise ConfigError(
                f"{_label(node)}: an activation with {levels} levels; QDQ holds 256 exactly"
            )
        zp = zero.astype(np.uint8)
    flat = (lambda a: a.reshape(-1)) if axis is not None else (lambda a: a.reshape(()))
    return flat(scale), flat(zp)


def _unique(taken: set[str], name: str) -> str:
    out, i = name, 1
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def _taken_names(model: Any) -> set[str]:
    g = model.graph
    names = {n.name for n in g.node} | {o for n in g.node for o in (*n.input, *n.output)}
    return names | {i.name for i in (*g.initializer, *g.input, *g.output, *g.value_info)}


def _replace(model: Any, node: Any, consts: dict[str, np.ndarray], taken: set[str]) -> list:
    """The Q / DQ pair (and initializers) that replace one FakeQuantize node."""
    from onnx import helper, numpy_helper

    levels = _levels(node)
    lo, hi = _ranges(node, consts)
    src = node.input[0]
    weight = src in consts
    axis = _axis(node, lo, _rank(model, src, consts))
    scale, zp = _qparams(node, lo, hi, levels, weight, axis)
    base = node.output[0]
    s_name, z_name = _unique(taken, f"{base}/qdq_scale"), _unique(taken, f"{base}/qdq_zero")
    q_name = _unique(taken, f"{base}/qdq_q")
    inits = [numpy_helper.from_array(scale, s_name), numpy_helper.from_array(zp, z_name)]
    if weight:
        w = np.asarray(consts[src])
        if not np.isfinite(w).all():
            raise ConfigError(f"{_label(node)}: a weight that is not finite (NaN or inf)")
        clamped = np.clip(w, lo, hi).astype(w.dtype)
        if not np.array_equal(clamped, w):
            # the node clamps to its range; the 8-bit codes may reach one step further
            src = _unique(taken, f"{base}/qdq_weight")
            inits.append(numpy_helper.from_array(clamped, src))
    model.graph.initializer.extend(inits)
    kw = {} if axis is None else {"axis": axis}
    q = _unique(taken, f"{node.name or base}/Q")
    dq = _unique(taken, f"{node.name or base}/DQ")
    return [
        helper.make_node("QuantizeLinear", [src, s_name, z_name], [q_name], q, **kw),
        helper.make_node("DequantizeLinear", [q_name, s_name, z_name], [base], dq, **kw),
    ]


def fake_quantize_to_qdq(proto: Any) -> Any:
    """A copy of ``proto`` with every ``FakeQuantize`` node replaced by a QDQ pair.

    Arguments:
      proto: an ``onnx.ModelProto`` (opset >= 13, for per-axis QDQ).
    Returns:
      the rewritten ``ModelProto``; the ``org.openvinotoolkit`` opset import is dropped when
      no node of that domain is left.
    Raises:
      ConfigError: a FakeQuantize node QDQ cannot express exactly (the message names it), or
        no FakeQuantize node at all (the graph would not be quantized).
    """
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    if not any(n.op_type == "FakeQuantize" and n.domain == FQ_DOMAIN for n in model.graph.node):
        raise ConfigError(
            f"the graph has no FakeQuantize node ({FQ_DOMAIN}); nothing to quantize",
            hint="export the fake-quantized (QAT) graph, not the FP32 one",
        )
    consts = _constants(model)
    taken = _taken_names(model)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "FakeQuantize" or node.domain != FQ_DOMAIN:
            nodes.append(node)
            continue
        nodes.extend(_replace(model, node, consts, taken))
    used = {name for node in nodes for name in node.input} | {o.name for o in model.graph.output}
    # the ranges' Constant nodes that only the replaced FakeQuantize nodes read
    nodes = [n for n in nodes if n.op_type != "Constant" or any(o in used for o in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not any(n.domain == FQ_DOMAIN for n in model.graph.node):
        kept = [o for o in model.opset_import if o.domain != FQ_DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(kept)
    return model
