"""The parts of a bundle manifest (tensor, graph, class and input specs, the format name and
versions): the types ``manifest`` (the ``Manifest`` type) and ``_manifest_parse`` (its
field-by-field validation) both build, so both import them from here, one way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .schema import MANIFEST_SCHEMA

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "SUPPORTED_VERSIONS",
    "ClassEntry",
    "GraphInfo",
    "InputSpec",
    "TensorSpec",
    "frozen_mapping",
]

_TOP = MANIFEST_SCHEMA["properties"]
#: the manifest's "format" (``manifest.schema.json``)
FORMAT_NAME: str = _TOP["format"]["const"]
#: the format versions this package reads, and the one it writes (``manifest.schema.json``)
SUPPORTED_VERSIONS: frozenset[int] = frozenset(_TOP["format_version"]["enum"])
FORMAT_VERSION: int = max(SUPPORTED_VERSIONS)
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class TensorSpec:
    """One graph tensor: its ``role`` in the contract, the ``name`` the graph file uses,
    numpy ``dtype`` and ``shape`` (ints = fixed, strings = dynamic axes)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    role: str = ""

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if isinstance(d, str))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class GraphInfo:
    """One graph of a bundle: files per format, precision, I/O in contract role order."""

    name: str
    files: Mapping[str, str]  # format -> relative path
    precision: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def name_of(self, role: str) -> str:
        """The tensor name the graph file uses for contract role ``role`` (KeyError if the
        graph has no such role)."""
        for t in (*self.inputs, *self.outputs):
            if t.role == role:
                return t.name
        raise KeyError(f"graph {self.name!r} has no tensor with role {role!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": dict(sorted(self.files.items())),
            "precision": self.precision,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }


@dataclass(frozen=True)
class ClassEntry:
    id: int
    name: str
    is_thing: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "is_thing": self.is_thing}


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the encoder's input (``ops.letterbox``)."""

    long_side: int
    pad_divisor: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pad_value: int = 0
    resize: str = "letterbox"
    placement: str = "top-left"
    layout: str = "NHWC"
    dtype: str = "uint8"
    color_order: str = "RGB"
    normalization: str = "in_graph"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resize": self.resize,
            "long_side": self.long_side,
            "pad_divisor": self.pad_divisor,
            "pad_value": self.pad_value,
            "placement": self.placement,
            "layout": self.layout,
            "dtype": self.dtype,
            "color_order": self.color_order,
            "normalization": self.normalization,
            "mean": [round(float(v), 4) for v in self.mean],
            "std": [round(float(v), 4) for v in self.std],
        }


def frozen_mapping(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of ``d`` (empty for None)."""
    return MappingProxyType(dict(d or {}))
