"""The bundle manifest: ONE type (``Manifest``) that export writes (``to_dict``) and the
runtime reads and validates (``Manifest.from_dict``), torch-free.

Manifest (``manifest.json``, format ``rapsam-edge-bundle``, version 1)::

    format, format_version, name, variant
    input:        resize ("letterbox"), long_side, pad_divisor, pad_value, placement
                  ("top-left"), layout ("NHWC"), dtype ("uint8"), color_order ("RGB"),
                  normalization ("in_graph"), mean[3], std[3] (informative: applied in-graph)
    feat_stride, num_queries, num_classes
    classes:      [{id, name, is_thing}]            ids 0..C-1 in order
    graphs:       {encoder|panoptic_decoder|prompt_decoder:
                     {files: {onnx: F, openvino: F.xml}, precision,
                      inputs: [{name, dtype, shape}], outputs: [...]}}
                  tensors in the contract's role order (``contract.graphs.GRAPH_IO``) with
                  the names the graph file uses; shapes: ints, or strings for dynamic axes
    postprocess:  score_threshold, overlap_threshold, prompt_threshold
    weights:      null or {file: "model.safetensors", config: "config.json"} (torch reference)
    export:       free dict (exporter, opset, simplifier, tool versions)
    files:        {relative path: sha256 hex} for every file of the bundle but the manifest
    provenance:   free dict (training data, recipe, metrics)

The field rules (types, required fields, enums, ranges and their upper limits) live in
``manifest.schema.json``, read by both runtimes; the rules between fields in
``_manifest_parse`` (and its C++ twin). Validation errors are ``ManifestError`` naming the
field, e.g. ``manifest.graphs.encoder.inputs[0].dtype``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ManifestError
from ._manifest_parse import parse_fields
from ._manifest_types import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SUPPORTED_VERSIONS,
    ClassEntry,
    GraphInfo,
    InputSpec,
    TensorSpec,
)
from .files import read_regular
from .graphs import GRAPH_NAMES
from .limits import MAX_CONFIG_BYTES, MAX_NESTING, json_nesting
from .postprocess import PostprocessDefaults

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "SUPPORTED_VERSIONS",
    "ClassEntry",
    "GraphInfo",
    "InputSpec",
    "Manifest",
    "TensorSpec",
    "normalize_classes",
    "read_classes_file",
]


@dataclass(frozen=True)
class Manifest:
    """A validated bundle manifest. Build one with keyword arguments (export) or
    ``Manifest.from_dict`` (runtime); ``to_dict()`` gives the JSON object."""

    name: str
    variant: str
    input: InputSpec
    feat_stride: int
    num_queries: int
    classes: tuple[ClassEntry, ...]
    graphs: Mapping[str, GraphInfo]
    postprocess: PostprocessDefaults = field(default_factory=PostprocessDefaults)
    weights: Mapping[str, str] | None = None
    export: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    provenance: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def is_thing(self) -> tuple[bool, ...]:
        return tuple(c.is_thing for c in self.classes)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict (key order as documented)."""
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "name": self.name,
            "variant": self.variant,
            "input": self.input.to_dict(),
            "feat_stride": self.feat_stride,
            "num_queries": self.num_queries,
            "num_classes": self.num_classes,
            "classes": [c.to_dict() for c in self.classes],
            "graphs": {g: self.graphs[g].to_dict() for g in GRAPH_NAMES if g in self.graphs},
            "postprocess": self.postprocess.to_dict(),
            "weights": None if self.weights is None else dict(self.weights),
            "export": dict(self.export),
            "files": dict(sorted(self.files.items())),
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, manifest: Any) -> Manifest:
        """Validate a manifest object (as parsed from JSON) field by field.

        Raises:
          ManifestError: the first invalid field, named in the message.
        """
        return cls(**parse_fields(manifest))


def normalize_classes(classes: Iterable[Any]) -> tuple[ClassEntry, ...]:
    """Class entries from objects with ``id``/``name``/``is_thing`` attributes or such dicts
    (``isthing`` accepted, as COCO writes it).

    Raises:
      ManifestError: ids are not 0..C-1 in order, a name is empty or a field is missing.
    """
    out = []
    for i, c in enumerate(classes):
        where = f"classes[{i}]"
        get = c.get if isinstance(c, Mapping) else lambda k, c=c: getattr(c, k, None)
        thing = get("is_thing")
        if thing is None and isinstance(c, Mapping):
            thing = c.get("isthing")
        cid, name = get("id"), get("name")
        if cid is None or name is None or thing is None:
            raise ManifestError(f"{where}: needs id, name and is_thing, got {c!r}")
        try:
            entry = ClassEntry(id=int(cid), name=str(name), is_thing=bool(thing))
        except (TypeError, ValueError) as e:
            raise ManifestError(f"{where}: {e}") from e
        if entry.id != i:
            raise ManifestError(f"{where}: class {entry.name!r} has id {entry.id}, expected {i}")
        if not entry.name:
            raise ManifestError(f"{where}.name: empty")
        out.append(entry)
    return tuple(out)


def read_classes_file(path: str | Path) -> tuple[ClassEntry, ...]:
    """A class vocabulary from JSON: a list of {id, name, is_thing} (``isthing`` accepted),
    or an object holding it under "classes" or "categories" (COCO panoptic). Entries without
    ``id`` take their position; ids must be 0..C-1 in order (COCO category ids are not: give
    the train classes, as ``rapsam-edge make-data`` writes them beside the dataset).

    Raises:
      ManifestError: unreadable file or malformed vocabulary (names the file).
    """
    path = Path(path)
    raw = read_regular(path, "class vocabulary", ManifestError, max_bytes=MAX_CONFIG_BYTES)
    if json_nesting(raw) > MAX_NESTING:
        raise ManifestError(f"{path}: JSON nested deeper than {MAX_NESTING} levels")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ManifestError(f"{path}: cannot read a class vocabulary ({e})") from e
    if isinstance(data, dict):
        data = data.get("classes", data.get("categories"))
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a list of classes or {{'classes': [...]}}")
    entries = [dict(c, id=c.get("id", i)) if isinstance(c, dict) else c for i, c in enumerate(data)]
    try:
        return normalize_classes(entries)
    except ManifestError as e:
        raise ManifestError(f"{path}: {e}") from e
