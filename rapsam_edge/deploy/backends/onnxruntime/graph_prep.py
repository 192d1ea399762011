"""Graph preparation for ONNX Runtime INT8: ``preprocess`` (ORT's ``quant_pre_process`` plus
the input normalisation rewritten as one ``BatchNormalization``), the graph's I/O signature
(``graph_io``) and the QDQ-graph surgery that gives excluded nodes their FP32 inputs back
(``float_inputs_for_excluded``). Needs ``onnx`` and ``onnxruntime``, not torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import BackendError, ConfigError, InputError, MissingDependencyError

__all__ = [
    "check_node_names",
    "count_ops",
    "existing_model",
    "float_inputs_for_excluded",
    "graph_io",
    "ort_quantization",
    "preprocess",
    "producers",
    "versions",
]

log = logging.getLogger(__name__)


def ort_quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError as e:  # onnx missing, or an onnxruntime build without the tools
        raise MissingDependencyError(
            f"onnxruntime.quantization cannot be imported ({e})",
            hint="pip install onnx (quantization needs it, not torch)",
        ) from e
    return quantization


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def existing_model(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {str(path)!r} is not a file (an ONNX graph is expected)")
    return path


_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16"}


def graph_io(model: str | Path | Any) -> dict[str, dict[str, str]]:
    """Inputs and outputs of an ONNX graph: {"inputs": {name: dtype}, "outputs": {...}}
    (dtype as a numpy name, e.g. "uint8", "float32"; "elem<N>" for other ONNX types)."""
    import onnx

    m = (
        model
        if isinstance(model, onnx.ModelProto)
        else onnx.load(str(model), load_external_data=False)
    )
    init = {t.name for t in m.graph.initializer}

    def _io(values: Any) -> dict[str, str]:
        out = {}
        for v in values:
            if v.name in init:
                continue
            et = v.type.tensor_type.elem_type
            out[v.name] = _ONNX_DTYPES.get(et, f"elem{et}")
        return out

    return {"inputs": _io(m.graph.input), "outputs": _io(m.graph.output)}


@contextlib.contextmanager
def _cwd(path: str | Path) -> Iterator[None]:
    """Run in ``path``: ORT's symbolic shape inference writes ``sym_shape_infer_temp.onnx``
    (and external-data files) to the working directory when it fails. Not thread-safe."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _untyped_tensors(path: Path) -> list[str]:
    """Node outputs whose element type the graph does not record (the quantizer skips them)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    typed = {
        v.name
        for v in (*m.graph.value_info, *m.graph.output, *m.graph.input)
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type
    }
    return [t for n in m.graph.node for t in n.output if t and t not in typed]


def _normalization_to_batchnorm(path: Path) -> list[str]:
    """Rewrite each per-channel input normalisation ``Div(Sub(x, mean), std)`` (or
    ``Mul(Sub(x, mean), 1 / std)``) on a 4-D NCHW tensor, with constant ``1 x C x 1 x 1``
    operands, as one ``BatchNormalization`` (mean = mean, var = std**2 - eps, scale 1, bias
    0): the same values to float rounding.

    Why: in the quantized encoder, ORT's layout transformer moves the image's NHWC -> NCHW
    ``Transpose`` below ``Sub`` / ``Div`` (QLinearConv runs NHWC), where broadcasting a
    3-element constant along the last axis takes ORT's slow path (~1.7 ms each at 256 x 320
    on this CPU, a quarter of the INT8 encoder); ``BatchNormalization`` keeps its own fast
    per-channel kernel. Returns the names of the new nodes; rewrites ``path`` in place.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    shapes = {
        v.name: [
            d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim
        ]
        for v in (*g.value_info, *g.input)
    }
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    eps = 1e-5
    made = []
    for sub in list(g.node):
        shape = shapes.get(sub.input[0], [])
        if sub.op_type != "Sub" or sub.input[1] not in inits or len(shape) != 4:
            continue
        nxt = consumers.get(sub.output[0], [])
        if len(nxt) != 1 or nxt[0].op_type not in ("Div", "Mul") or nxt[0].input[1] not in inits:
            continue
        div = nxt[0]
        mean = numpy_helper.to_array(inits[sub.input[1]]).astype(np.float64)
        k = numpy_helper.to_array(inits[div.input[1]]).astype(np.float64)
        if mean.ndim < 3 or k.shape != mean.shape or mean.shape[-2:] != (1, 1):
            continue
        if mean.ndim == 4 and mean.shape[0] != 1:
            continue
        std = k.ravel() if div.op_type == "Div" else 1.0 / k.ravel()
        if not np.all(np.isfinite(std)) or np.any(np.abs(std) ** 2 <= eps):
            continue
        c = std.size
        if shape[1] != c and not (shape[1] is None and c > 1):  # BN needs one value a channel
            continue
        prefix = f"{div.name}_bn_"
        arrays = {  # BatchNormalization divides by sqrt(var): a negative std's sign -> scale
            "scale": np.sign(std).astype(np.float32),
            "bias": np.zeros(c, np.float32),
            "mean": mean.ravel().astype(np.float32),
            "var": (std**2 - eps).astype(np.float32),
        }
        g.initializer.extend(numpy_helper.from_array(v, prefix + n) for n, v in arrays.items())
        bn = helper.make_node(
            "BatchNormalization",
            [sub.input[0], *(prefix + n for n in arrays)],
            [div.output[0]],
            name=f"{div.name}_bn",
            epsilon=eps,
        )
        at = list(g.node).index(sub)
        g.node.remove(sub)
        g.node.remove(div)
        g.node.insert(at, bn)
        made.append(bn.name)
    if made:
        used = {t for n in g.node for t in n.input}
        for t in [t for t in g.initializer if t.name not in used]:
            g.initializer.remove(t)
        onnx.save(model, str(path))
    return made


_UNTYPED = (
    "quant_pre_process (%s) left %d tensors untyped, e.g. %s: the quantizer skips them "
    "(they stay FP32)"
)


def preprocess(src: str | Path, dst: str | Path, *, normalization_to_bn: bool = True) -> str:
    """``onnxruntime.quantization.quant_pre_process``: shape inference and ORT basic graph
    optimisation (constant folding, Conv+BN / Conv+Mul folding), so that the quantizer knows
    every tensor's type and shape.

    ONNX shape inference is tried first (0.1 s); ORT's symbolic shape inference
    (``auto_merge=True``: without it, it fails on the encoder, whose position embedding's
    ``Range`` sizes come from the input shape; 3-4 s on it) runs only when some tensor is
    still untyped. On the shipped graphs both give the same QDQ graph. Runs in a temporary
    working directory (ORT drops files into the current one when symbolic inference fails).
    Then, with ``normalization_to_bn``, the encoder's ``(x - mean) / std`` becomes one
    ``BatchNormalization`` (``_normalization_to_batchnorm``: same values; the INT8 encoder
    runs ~25% faster at 256 x 320).

    Returns:
      the variant used: "onnx-shape" or "symbolic-auto-merge", with "+bn-normalize" when
      the normalisation was rewritten.
    Raises:
      BackendError: neither variant produced a graph.
    """
    q = ort_quantization()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    attempts = (
        ("onnx-shape", {"skip_symbolic_shape": True}),
        ("symbolic-auto-merge", {"auto_merge": True}),
    )
    errors = []
    written: tuple[str, list[str]] | None = None  # the last graph written and its untyped
    with tempfile.TemporaryDirectory(prefix="rapsam-preprocess-") as tmp, _cwd(tmp):
        for label, kwargs in attempts:
            try:
                q.quant_pre_process(str(src), str(dst), **kwargs)
            # ORT raises a bare Exception for incomplete inference; each failure is kept and
            # named in the BackendError when no variant succeeds
            except Exception as e:  # noqa: BLE001
                errors.append(f"{label}: {e}")
                log.debug("quant_pre_process (%s) failed: %s", label, e)
                continue
            untyped = _untyped_tensors(dst)
            written = (label, untyped)
            if not untyped or label == attempts[-1][0]:
                if untyped:
                    log.warning(_UNTYPED, label, len(untyped), untyped[:3])
                if normalization_to_bn and _normalization_to_batchnorm(dst):
                    label += "+bn-normalize"
                return label
            log.debug("%s left %d tensors untyped, e.g. %s", label, len(untyped), untyped[:3])
    if written is not None:  # the first variant's graph (some tensors untyped) is still usable
        label, untyped = written
        log.warning("quant_pre_process: %s", "; ".join(errors))
        log.warning(_UNTYPED, label, len(untyped), untyped[:3])
        return label
    raise BackendError(f"quant_pre_process failed on {src}: " + "; ".join(errors))


def check_node_names(model: Path, names: Sequence[str]) -> None:
    import onnx

    known = {n.name for n in onnx.load(str(model), load_external_data=False).graph.node}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"exclude_nodes names {len(unknown)} nodes the graph does not have, e.g. "
            f"{unknown[:5]}; use the names of the pre-processed graph (the report's `node`)"
        )


def count_ops(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def producers(path: Path) -> dict[str, tuple[str, str]]:
    import onnx

    out = {}
    for n in onnx.load(str(path)).graph.node:
        for t in n.output:
            out[t] = (n.name, n.op_type)
    return out


def float_inputs_for_excluded(path: Path, exclude: Sequence[str]) -> int:
    """Give excluded nodes the FP32 tensor instead of its Q -> DQ copy where the tensor's
    producer is excluded too (or is a graph input).

    ORT's QDQ quantizer points every consumer of a quantized activation at its
    DequantizeLinear output, excluded consumers included (the tensor is quantized because
    some other consumer is), so an excluded ``Add`` after an excluded ``Range`` would still
    see the 8-bit ``Range``. A tensor produced by a quantized node is left alone: its
    producer's Q must stay its only consumer for ORT to fuse it into an integer kernel.
    Returns the number of inputs rewired; the graph is rewritten in place.
    """
    import onnx

    excluded = set(exclude)
    if not excluded:
        return 0
    model = onnx.load(str(path))
    g = model.graph
    producer = {t: n for n in g.node for t in n.output}
    inits = {t.name for t in g.initializer}
    graph_inputs = {i.name for i in g.input}
    rewired = 0
    for node in g.node:
        if node.name not in excluded:
            continue
        for k, t in enumerate(node.input):
            dq = producer.get(t)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear" or q.input[0] in inits:
                continue
            src = q.input[0]
            origin = producer.get(src)
            if (origin is not None and origin.name in excluded) or src in graph_inputs:
                node.input[k] = src
                rewired += 1
    if rewired:
        used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
        changed = True
        while changed:  # drop Q / DQ pairs nobody reads any more
            changed = False
            for n in list(g.node):
                if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not (
                    set(n.output) & used
                ):
                    g.node.remove(n)
                    used = {t for m in g.node for t in m.input} | {o.name for o in g.output}
                    changed = True
        onnx.save(model, str(path))
    return rewired
