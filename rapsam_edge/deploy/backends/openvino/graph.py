"""OpenVINO graph handling for NNCF INT8: reading and checking the IR (``read``,
``check_dst``), the calibration feeds (``check_feeds``), saving with the runtime contract
checked (``save``: same inputs / outputs as the source), and inspecting the result
(``count_fake_quantize``, ``quantized_operations``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import BackendError, InputError, MissingDependencyError

__all__ = [
    "QUANTIZER_TYPES",
    "check_dst",
    "check_feeds",
    "compile_f32",
    "count_fake_quantize",
    "io_signature",
    "nncf_module",
    "ov_module",
    "quantized_operations",
    "read",
    "save",
]

#: node types NNCF inserts to quantize (FakeConvert: FP8 modes, not used by these functions)
QUANTIZER_TYPES = ("FakeQuantize", "FakeConvert")
#: layout-only types that may sit between a quantizer (or int8 weights) and its consumer
_LAYOUT = frozenset({"Convert", "Reshape", "Transpose", "Squeeze", "Unsqueeze"})
#: consumers that do not compute on the values (not counted as quantized operations)
_SKIP = frozenset({"ShapeOf", "Constant", "Result", "Parameter"}) | _LAYOUT


def nncf_module() -> Any:
    try:
        import nncf
    except ImportError as e:
        raise MissingDependencyError(
            "OpenVINO INT8 quantization needs nncf",
            hint="pip install nncf (tested with nncf 3.4)",
        ) from e
    return nncf


def ov_module(purpose: str = "OpenVINO quantization") -> Any:
    """The ``openvino`` module; MissingDependencyError ("<purpose> needs openvino") without it."""
    try:
        import openvino as ov
    except ImportError as e:
        raise MissingDependencyError(
            f"{purpose} needs openvino", hint="pip install openvino"
        ) from e
    return ov


def read(src_xml: str | Path) -> Any:
    ov = ov_module()
    src = Path(src_xml)
    if src.suffix != ".xml" or not src.is_file():
        raise InputError(f"source IR {str(src)!r}: not an existing OpenVINO .xml file")
    try:
        return ov.Core().read_model(str(src))
    except Exception as e:
        raise InputError(f"{src}: cannot read the OpenVINO IR ({e})") from e


def check_dst(src_xml: str | Path, dst_xml: str | Path) -> Path:
    dst = Path(dst_xml)
    if dst.suffix != ".xml":
        raise InputError(f"destination {str(dst)!r} must end in .xml (the .bin goes beside it)")
    if dst.resolve() == Path(src_xml).resolve():
        # read_model memory-maps the source .bin: writing over it would corrupt the source
        raise InputError(f"destination {dst} is the source IR; write to another file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    return dst


def io_signature(model: Any) -> list[tuple[str, str, str, str]]:
    """(kind, name, element type, partial shape) of every input and output."""
    sig = []
    for kind, ports in (("input", model.inputs), ("output", model.outputs)):
        for port in ports:
            sig.append(
                (kind, port.get_any_name(), str(port.get_element_type()), str(port.partial_shape))
            )
    return sig


def check_feeds(model: Any, feeds: Sequence[Mapping[str, np.ndarray]], what: str) -> None:
    if isinstance(feeds, (str, bytes)) or not isinstance(feeds, Sequence) or not feeds:
        raise InputError(f"{what}: a non-empty sequence of feed dicts is required")
    want = {p.get_any_name(): p for p in model.inputs}
    for i, feed in enumerate(feeds):
        if not isinstance(feed, Mapping) or set(feed) != set(want):
            got = sorted(feed) if isinstance(feed, Mapping) else type(feed).__name__
            raise InputError(f"{what}[{i}]: feeds {got} do not match the inputs {sorted(want)}")
        for name, port in want.items():
            arr = feed[name]
            if not isinstance(arr, np.ndarray):
                raise InputError(f"{what}[{i}][{name!r}]: numpy array expected")
            if arr.dtype != port.get_element_type().to_dtype():
                raise InputError(
                    f"{what}[{i}][{name!r}]: dtype {arr.dtype}, the IR wants "
                    f"{port.get_element_type().to_dtype()}"
                )
            if not port.partial_shape.compatible(ov_module().PartialShape(list(arr.shape))):
                raise InputError(
                    f"{what}[{i}][{name!r}]: shape {arr.shape} vs the IR's {port.partial_shape}"
                )


def save(model: Any, src_model: Any, dst: Path) -> None:
    ov = ov_module()
    if io_signature(model) != io_signature(src_model):
        raise BackendError(
            f"nncf changed the graph's inputs / outputs: {io_signature(src_model)} -> "
            f"{io_signature(model)}"
        )
    ov.save_model(model, str(dst), compress_to_fp16=False)


def count_fake_quantize(model: Any) -> int:
    """Number of quantizer nodes (FakeQuantize / FakeConvert) in an ``openvino.Model`` or IR."""
    if isinstance(model, (str, Path)):
        model = read(model)
    return sum(op.get_type_name() in QUANTIZER_TYPES for op in model.get_ops())


def _is_quantized_source(node: Any) -> bool:
    """True when ``node`` (the producer of an operation's input, seen through layout-only ops)
    is a quantizer, or the end of a weight-decompression chain over an 8-bit (or narrower)
    integer constant: Constant(i8 / u8) -> Convert -> [Subtract] -> Multiply."""
    for _ in range(4):
        if node.get_type_name() not in _LAYOUT:
            break
        node = node.input_value(0).get_node()
    kind = node.get_type_name()
    if kind in QUANTIZER_TYPES:
        return True
    if kind != "Multiply":
        return False
    for value in node.input_values():
        src = value.get_node()
        if src.get_type_name() == "Subtract":
            src = src.input_value(0).get_node()
        if src.get_type_name() != "Convert":
            continue
        const = src.input_value(0).get_node()
        typ = const.get_element_type()
        if const.get_type_name() == "Constant" and typ.is_integral() and typ.bitwidth <= 8:
            return True
    return False


def quantized_operations(model: Any) -> list[str]:
    """Friendly names of the operations that take a quantized input, sorted.

    An operation counts as quantized when one of its inputs comes from a FakeQuantize /
    FakeConvert node, or from int8 weights NNCF compressed (Constant i8 / u8 -> Convert ->
    [Subtract] -> Multiply), either directly or through layout-only ops (Reshape, Transpose,
    Convert). Quantizers, shape-only consumers (ShapeOf) and the decompression ops themselves
    are not listed.

    Arguments:
      model: an ``openvino.Model`` or the path of an IR ``.xml``.
    """
    if isinstance(model, (str, Path)):
        model = read(model)
    names = set()
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind in QUANTIZER_TYPES or kind in _SKIP:
            continue
        if kind == "Multiply" and _is_quantized_source(op):
            continue  # a weight-decompression Multiply, part of a quantized weight
        if any(_is_quantized_source(v.get_node()) for v in op.input_values()):
            names.add(op.get_friendly_name())
    return sorted(names)


def compile_f32(model: Any) -> Any:
    """Compile on CPU with f32 inference precision (NNCF's evaluator does the same)."""
    ov = ov_module()
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
