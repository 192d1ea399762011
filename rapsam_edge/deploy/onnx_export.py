"""Export one deploy graph to ONNX: trace, check, simplify, pin the I/O shapes.

Exporter: the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``). In torch 2.13
it exports all three graphs with dynamic batch / H / W / P in ~2 s each and matches eager to
float rounding at other sizes than the traced one. The dynamo exporter also works for the
decoders but takes ~10x longer per graph and needs ``torch.export.Dim`` ranges that the
encoder's coordinate features reject (``Invalid ranges``) unless tuned per variant.

Simplifier (in order of preference): ``onnxslim`` (pure Python, folds the shape arithmetic
and drops Identity / Constant clutter: ~350 -> ~170 nodes for the encoder), then ``onnxsim``,
then ONNX Runtime's offline optimisation at the *basic* level (only standard ONNX ops, so the
result still loads in OpenVINO and TensorRT), else none. ``ExportResult.simplifier`` says
which one ran; the bundle manifest records it.

TensorRT friendliness: no data-dependent shapes (``check_static_friendly`` rejects NonZero,
Unique, NonMaxSuppression, ...), uint8 image input cast before any other op, and the graph
inputs / outputs carry the manifest's symbolic shapes (constants pinned, dynamic axes named).
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from ..model.rapsam import RapSam
from .deform_export import DEFORM_FORMS, deform_form, has_deform
from .graphs import GRAPH_IO, example_inputs, make_graph

__all__ = [
    "DATA_DEPENDENT_OPS",
    "DEFAULT_OPSET",
    "ExportResult",
    "check_static_friendly",
    "export_onnx",
    "pin_io_shapes",
    "simplify",
    "trace_wrapper",
]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
#: ops whose output shape depends on tensor values (TensorRT needs them as plugins or
#: data-dependent-shape handling; none of our graphs may contain them).
DATA_DEPENDENT_OPS = frozenset(
    {"NonZero", "Unique", "NonMaxSuppression", "Compress", "Loop", "If", "Scan"}
)
# ONNX dim_param names for the dynamic axes of GRAPH_IO.
_DIM_PARAMS = {
    "B": "batch",
    "H": "height",
    "W": "width",
    "h": "feat_h",
    "w": "feat_w",
    "P": "num_prompts",
}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    simplifier: str  # "onnxslim" | "onnxsim" | "onnxruntime-basic" | "none"
    opset: int


def _constants(model: RapSam) -> dict[str, int]:
    return {
        "D": model.decoder.queries.embedding_dim,
        "N": model.num_queries,
        "C1": model.num_classes + 1,
        "3": 3,
        "4": 4,
    }


def _trace(model: RapSam, graph: str, opset: int) -> onnx.ModelProto:
    return trace_wrapper(make_graph(model, graph), graph, example_inputs(model, graph), opset)


def trace_wrapper(
    wrapper: torch.nn.Module, graph: str, args: tuple, opset: int = DEFAULT_OPSET
) -> onnx.ModelProto:
    """``wrapper`` (a graph's export wrapper, ``graphs.make_graph``, possibly with quantizers
    inserted) traced on ``args`` to ONNX with the contract's tensor names and dynamic axes."""
    spec = GRAPH_IO[graph]
    dynamic_axes = {
        name: {i: _DIM_PARAMS[a] for i, a in enumerate(shape) if a in _DIM_PARAMS}
        for name, _, shape in spec.inputs + spec.outputs
    }
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # Shape arithmetic (feature size -> padded input size) is traced symbolically; the
        # tracer still warns about python scalars. Parity tests at other sizes cover it.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            wrapper,
            args,
            buf,
            input_names=[i[0] for i in spec.inputs],
            output_names=[o[0] for o in spec.outputs],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buf.getvalue())


def simplify(proto: onnx.ModelProto, *, prefer: str = "auto") -> tuple[onnx.ModelProto, str]:
    """Simplify with the best available tool; returns (model, tool name).

    ``prefer``: "auto" (onnxslim > onnxsim > onnxruntime-basic), one of those names, or
    "none".
    """
    order = ["onnxslim", "onnxsim", "onnxruntime-basic"] if prefer == "auto" else [prefer]
    for tool in order:
        if tool == "none":
            return proto, "none"
        try:
            if tool == "onnxslim":
                import onnxslim

                return onnxslim.slim(proto), tool
            if tool == "onnxsim":
                import onnxsim

                out, ok = onnxsim.simplify(proto)
                if ok:
                    return out, tool
                continue
            if tool == "onnxruntime-basic":
                return _ort_basic(proto), tool
            raise ValueError(f"unknown simplifier {tool!r}")
        except ImportError:
            if prefer != "auto":
                raise
            continue
    return proto, "none"


def _ort_basic(proto: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime offline optimisation, basic level (constant folding, redundant node
    elimination; standard ONNX ops only)."""
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(proto, str(src))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(dst)
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        return onnx.load(str(dst))


def pin_io_shapes(proto: onnx.ModelProto, model: RapSam, graph: str) -> None:
    """Write the spec's shapes on the graph inputs / outputs: constants as dim_value,
    dynamic axes as named dim_param (the tracer leaves names like 'Addcls_logits_dim_1')."""
    consts = _constants(model)
    spec = GRAPH_IO[graph]
    shapes = {name: shape for name, _, shape in spec.inputs + spec.outputs}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        want = shapes[vi.name]
        if len(dims) != len(want):
            raise RuntimeError(f"{graph}: {vi.name} has rank {len(dims)}, expected {len(want)}")
        for d, a in zip(dims, want):
            if a in consts:
                d.Clear()
                d.dim_value = consts[a]
            else:
                d.Clear()
                d.dim_param = _DIM_PARAMS[a]


def check_static_friendly(proto: onnx.ModelProto) -> None:
    """Raise if the graph has data-dependent-shape or control-flow ops."""
    bad = sorted({n.op_type for n in proto.graph.node if n.op_type in DATA_DEPENDENT_OPS})
    if bad:
        raise RuntimeError(
            f"graph has data-dependent / control-flow ops {bad}; "
            "TensorRT and static-shape backends cannot take it"
        )


def export_onnx(
    model: RapSam,
    graph: str,
    path: str | Path,
    *,
    opset: int | None = None,
    simplifier: str = "auto",
    deform: str = "gridsample",
) -> ExportResult:
    """Export ``graph`` of ``model`` (eval mode) to ``path``.

    ``deform``: how DCNv2 layers (if any) become ONNX, a key of ``DEFORM_FORMS``
    (``deform_export.py``); ``opset`` defaults to what that form needs (17 or 19)."""
    opset = max(DEFAULT_OPSET, DEFORM_FORMS[deform]) if opset is None else opset
    if opset < 17:
        raise ValueError("opset >= 17 is required (LayerNormalization)")
    if has_deform(model) and opset < DEFORM_FORMS[deform]:
        raise ValueError(f"deform form {deform!r} needs opset >= {DEFORM_FORMS[deform]}")
    model = model.eval()
    path = Path(path)
    with deform_form(model, deform):
        proto = _trace(model, graph, opset)
    onnx.checker.check_model(proto)
    proto, used = simplify(proto, prefer=simplifier)
    pin_io_shapes(proto, model, graph)
    check_static_friendly(proto)
    onnx.checker.check_model(proto, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    log.info(
        "exported %s -> %s (%d nodes, simplifier %s)", graph, path, len(proto.graph.node), used
    )
    return ExportResult(path=path, simplifier=used, opset=opset)
