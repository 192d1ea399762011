"""INT8 post-training static quantization of a bundle graph with ONNX Runtime (QDQ form),
per-tensor error report against FP32, and exclusion of sensitive nodes decided from it.

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

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import BackendError, ConfigError, InputError, MissingDependencyError

__all__ = [
    "CALIBRATE_METHODS",
    "DEFAULTS_RATIONALE",
    "EXACT_DB",
    "HEAVY_OPS",
    "FeedReader",
    "choose_exclusions",
    "format_report",
    "graph_io",
    "preprocess",
    "quantize_ort_int8",
    "quantize_with_report",
    "tensor_error_report",
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


def _ort_quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError as e:  # onnx missing, or an onnxruntime build without the tools
        raise MissingDependencyError(
            f"onnxruntime.quantization cannot be imported ({e})",
            hint="pip install onnx (quantization needs it, not torch)",
        ) from e
    return quantization


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def _existing_model(path: str | Path, what: str) -> Path:
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


def _check_calibration(
    calibration: Sequence[Mapping[str, np.ndarray]], inputs: Mapping[str, str]
) -> list[dict[str, np.ndarray]]:
    """The feed list as plain dicts of contiguous arrays; names and dtypes checked."""
    if isinstance(calibration, Mapping) or not isinstance(calibration, Sequence):
        raise InputError(
            "calibration must be a sequence of feed dicts (input name -> numpy array), got "
            f"{type(calibration).__name__}"
        )
    if len(calibration) == 0:
        raise InputError("calibration is empty: at least one feed dict is needed")
    feeds = []
    for i, feed in enumerate(calibration):
        if not isinstance(feed, Mapping):
            raise InputError(f"calibration[{i}] must be a dict, got {type(feed).__name__}")
        missing = sorted(set(inputs) - set(feed))
        extra = sorted(set(feed) - set(inputs))
        if missing or extra:
            raise InputError(
                f"calibration[{i}] names {sorted(feed)} do not match the graph inputs "
                f"{sorted(inputs)} (missing {missing}, unknown {extra}); read the names from "
                "the manifest (GraphInfo.name_of)"
            )
        out = {}
        for name, dtype in inputs.items():
            arr = feed[name]
            if not isinstance(arr, np.ndarray):
                raise InputError(f"calibration[{i}][{name!r}] must be a numpy array")
            if arr.dtype != np.dtype(dtype):
                raise InputError(
                    f"calibration[{i}][{name!r}] is {arr.dtype}; the graph input is {dtype}"
                )
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise InputError(f"calibration[{i}][{name!r}] holds NaN or infinity")
            out[name] = np.ascontiguousarray(arr)
        feeds.append(out)
    return feeds


class FeedReader:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of feed dicts (name -> array).

    ``get_next`` returns the next feed and None after the last; ``rewind`` starts over (ORT
    calls ``get_next`` until None, once per calibration pass).
    """

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._feeds = [dict(f) for f in feeds]
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self._feeds)

    def __len__(self) -> int:
        return len(self._feeds)


def _reader(feeds: Sequence[Mapping[str, np.ndarray]]) -> Any:
    base = _ort_quantization().CalibrationDataReader

    class _Reader(FeedReader, base):  # ORT checks isinstance(reader, CalibrationDataReader)
        pass

    return _Reader(feeds)


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
    q = _ort_quantization()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    attempts = (
        ("onnx-shape", {"skip_symbolic_shape": True}),
        ("symbolic-auto-merge", {"auto_merge": True}),
    )
    errors = []
    with tempfile.TemporaryDirectory(prefix="rapsam-preprocess-") as tmp, _cwd(tmp):
        for label, kwargs in attempts:
            try:
                q.quant_pre_process(str(src), str(dst), **kwargs)
            except Exception as e:  # ORT raises a bare Exception for incomplete inference
                errors.append(f"{label}: {e}")
                log.debug("quant_pre_process (%s) failed: %s", label, e)
                continue
            untyped = _untyped_tensors(dst)
            if not untyped or label == attempts[-1][0]:
                if normalization_to_bn and _normalization_to_batchnorm(dst):
                    label += "+bn-normalize"
                return label
            log.debug("%s left %d tensors untyped, e.g. %s", label, len(untyped), untyped[:3])
    if dst.is_file():  # the first variant's graph (some tensors untyped) is still usable
        return attempts[0][0]
    raise BackendError(f"quant_pre_process failed on {src}: " + "; ".join(errors))


def _check_node_names(model: Path, names: Sequence[str]) -> None:
    import onnx

    known = {n.name for n in onnx.load(str(model), load_external_data=False).graph.node}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"exclude_nodes names {len(unknown)} nodes the graph does not have, e.g. "
            f"{unknown[:5]}; use the names of the pre-processed graph (the report's `node`)"
        )


def _count_ops(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def uniform_feed_shapes(feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime's histogram calibrators (entropy, percentile) stack every tensor over the
    calibration samples, so each tensor needs one shape. Inputs whose size varies along one
    axis between samples (the prompt decoder's ``boxes``: 1 x P x 4 with P prompts per
    frame) are filled up to the largest size by cycling their own entries, which repeats
    prompts but adds no new values. Inputs varying along several axes are returned as they
    are (the calibrator then reports the mismatch)."""
    if len(feeds) < 2:
        return feeds
    out = [dict(f) for f in feeds]
    for name in feeds[0]:
        shapes = [np.shape(f[name]) for f in feeds]
        if len({len(s) for s in shapes}) != 1 or len(set(shapes)) == 1:
            continue
        axes = [a for a in range(len(shapes[0])) if len({s[a] for s in shapes}) > 1]
        if len(axes) != 1:
            continue
        axis = axes[0]
        size = max(s[axis] for s in shapes)
        for f in out:
            n = f[name].shape[axis]
            if 0 < n < size:
                f[name] = np.take(f[name], np.arange(size) % n, axis=axis)
    return out


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
    q = _ort_quantization()
    src = _existing_model(src, "src")
    dst = Path(dst)
    if calibrate_method not in CALIBRATE_METHODS:
        raise ConfigError(
            f"calibrate_method must be one of {sorted(CALIBRATE_METHODS)}, got {calibrate_method!r}"
        )
    for what, value in (("activation_type", activation_type), ("weight_type", weight_type)):
        if value not in QUANT_TYPES:
            raise ConfigError(f"{what} must be one of {sorted(QUANT_TYPES)}, got {value!r}")
    if isinstance(exclude_nodes, str):
        raise ConfigError("exclude_nodes must be a sequence of node names, not one string")
    io = graph_io(src)
    feeds = _check_calibration(calibration, io["inputs"])
    if calibrate_method != "minmax":
        feeds = uniform_feed_shapes(feeds)

    with tempfile.TemporaryDirectory(prefix="rapsam-int8-") as tmp:
        model_in = src
        pre = None
        if pre_process:
            model_in = Path(tmp) / "preprocessed.onnx"
            pre = preprocess(src, model_in)
        _check_node_names(model_in, exclude_nodes)
        out = Path(tmp) / "qdq.onnx"  # moved to dst once checked
        try:
            q.quantize_static(
                str(model_in),
                str(out),
                _reader(feeds),
                quant_format=q.QuantFormat.QDQ,
                op_types_to_quantize=list(op_types) if op_types else None,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=getattr(q.QuantType, QUANT_TYPES[activation_type]),
                weight_type=getattr(q.QuantType, QUANT_TYPES[weight_type]),
                nodes_to_exclude=list(exclude_nodes),
                calibrate_method=getattr(q.CalibrationMethod, CALIBRATE_METHODS[calibrate_method]),
                extra_options=dict(extra_options or {}),
            )
        except Exception as e:
            raise BackendError(f"onnxruntime quantize_static failed on {src}: {e}") from e
        rewired = _float_inputs_for_excluded(out, exclude_nodes)
        got = graph_io(out)
        if got != io:
            raise BackendError(
                f"the quantized graph's I/O {got} differs from the FP32 graph's {io} "
                "(the runtime contract needs the same names and dtypes)"
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), str(dst))
    ops = _count_ops(dst)
    return {
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
        "qdq_nodes": {
            "QuantizeLinear": ops.get("QuantizeLinear", 0),
            "DequantizeLinear": ops.get("DequantizeLinear", 0),
        },
        "inputs": io["inputs"],
        "outputs": io["outputs"],
        "source": str(src),
        "output": str(dst),
        "versions": _versions(),
    }


def _producers(path: Path) -> dict[str, tuple[str, str]]:
    import onnx

    out = {}
    for n in onnx.load(str(path)).graph.node:
        for t in n.output:
            out[t] = (n.name, n.op_type)
    return out


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
    samples; checked to 0.05 dB in the tests). ``src_fp32`` should be the float graph the QDQ graph was made from (after
    pre-processing, as ``quantize_with_report`` does); tensors absent from either graph are
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
    _ort_quantization()
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    src_fp32 = _existing_model(src_fp32, "src_fp32")
    dst_qdq = _existing_model(dst_qdq, "dst_qdq")
    io = graph_io(src_fp32)
    feeds = _check_calibration(calibration, io["inputs"])
    if graph_io(dst_qdq)["inputs"] != io["inputs"]:
        raise InputError(f"{dst_qdq} and {src_fp32} have different inputs")

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

    q_producers = _producers(dst_qdq)
    fmodel = onnx.load(str(src_fp32), load_external_data=False)
    f_producers = {t: (n.name, n.op_type) for n in fmodel.graph.node for t in n.output}
    node_inputs = {n.name: list(n.input) for n in fmodel.graph.node}
    initializers = {t.name for t in fmodel.graph.initializer}
    graph_inputs = set(io["inputs"])
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
        ins = []
        unknown = False
        for t in node_inputs.get(node or "", []):
            if not t or t in initializers:
                continue
            if t in acc:
                ins.append(acc[t].sqnr_db())
            elif t in graph_inputs:
                ins.append(EXACT_DB)
            else:  # not a float tensor (shape, bool mask, indices)
                unknown = True
        drop = None
        if node is not None and ins:
            drop = min(ins) - sqnr
        elif node is not None and not unknown:  # only initializers: a constant
            drop = EXACT_DB - sqnr
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
    rows.sort(key=lambda r: (r["sqnr_db"], -(r["sqnr_drop_db"] or 0.0), r["tensor"]))
    return rows if top is None else rows[: max(int(top), 0)]


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


def _float_inputs_for_excluded(path: Path, exclude: Sequence[str]) -> int:
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


def _fmt(value: float | None) -> str:
    return "       -" if value is None else f"{value:8.2f}"


def format_report(report: Sequence[Mapping[str, Any]], *, rows: int = 10) -> str:
    """A short fixed-width table of the worst ``rows`` report rows."""
    lines = [f"{'sqnr_dB':>8} {'drop_dB':>8} {'rel_l2':>8}  {'op_type':<20} node -> tensor"]
    for r in list(report)[:rows]:
        lines.append(
            f"{r['sqnr_db']:8.2f} {_fmt(r.get('sqnr_drop_db'))}  {r['relative_l2']:8.4f}  "
            f"{r.get('op_type') or '-':<20} {r.get('node') or '-'} -> {r['tensor']}"
        )
    return "\n".join(lines)


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
    src = _existing_model(src, "src")
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
            rec.update(source=str(src), output=str(dst), pre_process=pre)
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
            rec2, rep2 = _run(trial, [*given, *exclusions])
            worst1 = min(record["output_sqnr_db"].values(), default=0.0)
            worst2 = min(rec2["output_sqnr_db"].values(), default=0.0)
            if worst2 > worst1:
                shutil.copyfile(trial, dst)
                rec2["first_pass"] = {"excluded": given, "output_sqnr_db": record["output_sqnr_db"]}
                record, report = rec2, rep2
            else:  # the exclusions did not help the outputs: keep the first graph
                record["rejected_exclusions"] = {
                    "excluded": exclusions,
                    "output_sqnr_db": rec2["output_sqnr_db"],
                }
    if verbose:
        log.info("INT8 %s: worst tensors\n%s", dst.name, format_report(report))
    if top is not None:
        report = report[:top]
        first_report = first_report[:top]
    if report_path is not None:
        report_path = Path(report_path)
        report_path.parent.mkdir(parents=True, exist_ok=True)
        record["report_path"] = str(report_path)
        payload = {"record": record, "report": report, "first_report": first_report}
        report_path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return record, report


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
