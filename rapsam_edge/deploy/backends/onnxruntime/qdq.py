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
than 256 levels), naming it, rather than writing a different graph.
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


def _axis(lo: np.ndarray) -> int | None:
    """None for one range, else the axis of a per-channel range (exactly one dim > 1)."""
    if lo.size == 1:
        return None
    big = [i for i, n in enumerate(lo.shape) if n > 1]
    return big[0] if len(big) == 1 else -1


def _qparams(node: Any, lo: np.ndarray, hi: np.ndarray, levels: int, weight: bool):
    """(scale, zero point array of uint8 or int8, axis) of one FakeQuantize node: int8 with
    zero point 0 for a weight's symmetric range, else uint8 with the range's own zero."""
    if not 2 <= levels <= 256:
        raise ConfigError(f"FakeQuantize {node.name!r} has {levels} levels; QDQ holds <= 256")
    if np.any(hi <= lo) or np.any(lo > 0) or np.any(hi < 0):
        raise ConfigError(f"FakeQuantize {node.name!r}: a range that does not hold 0")
    scale = ((hi - lo) / (levels - 1)).astype(np.float32)
    zero = np.round(-lo / scale)
    if np.any(np.abs(zero + lo / scale) > 1e-2):
        raise ConfigError(f"FakeQuantize {node.name!r}: 0 is not on a quantization step")
    axis = _axis(lo)
    if axis == -1:
        raise ConfigError(f"FakeQuantize {node.name!r}: ranges of shape {lo.shape}")
    symmetric = np.all(zero <= 128) and np.all(levels - 1 - zero <= 127)
    if weight and symmetric and np.all(zero == zero.flat[0]):
        # the same steps counted from 0: the kernels' preferred signed, zero-point-0 weights
        zp = np.zeros_like(zero, dtype=np.int8)
    else:
        zp = zero.astype(np.uint8)
    flat = (lambda a: a.reshape(-1)) if axis is not None else (lambda a: a.reshape(()))
    return flat(scale), flat(zp), axis


def fake_quantize_to_qdq(proto: Any) -> Any:
    """A copy of ``proto`` with every ``FakeQuantize`` node replaced by a QDQ pair.

    Arguments:
      proto: an ``onnx.ModelProto`` (opset >= 13, for per-axis QDQ).
    Returns:
      the rewritten ``ModelProto``; the ``org.openvinotoolkit`` opset import is dropped when
      no node of that domain is left.
    Raises:
      ConfigError: a FakeQuantize node QDQ cannot express exactly (the message names it).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    consts = _constants(model)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "FakeQuantize" or node.domain != FQ_DOMAIN:
            nodes.append(node)
            continue
        ranges = [consts.get(name) for name in node.input[1:5]]
        if any(r is None for r in ranges):
            raise ConfigError(f"FakeQuantize {node.name!r} has a range that is not a constant")
        il, ih, ol, oh = (np.asarray(r, np.float64) for r in ranges)
        if not (np.array_equal(il, ol) and np.array_equal(ih, oh)):
            raise ConfigError(f"FakeQuantize {node.name!r}: input and output ranges differ")
        levels = next(a.i for a in node.attribute if a.name == "levels")
        weight = node.input[0] in consts
        scale, zp, axis = _qparams(node, il, ih, levels, weight)
        base = node.output[0]
        s_name, z_name, q_name = f"{base}/qdq_scale", f"{base}/qdq_zero", f"{base}/qdq_q"
        model.graph.initializer.extend(
            [numpy_helper.from_array(scale, s_name), numpy_helper.from_array(zp, z_name)]
        )
        kw = {} if axis is None else {"axis": axis}
        nodes.append(
            helper.make_node(
                "QuantizeLinear", [node.input[0], s_name, z_name], [q_name], f"{node.name}/Q", **kw
            )
        )
        nodes.append(
            helper.make_node(
                "DequantizeLinear", [q_name, s_name, z_name], [base], f"{node.name}/DQ", **kw
            )
        )
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
