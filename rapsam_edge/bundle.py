"""Model bundle: a directory with ``manifest.json`` and graph files (runtime side, no torch).

``load_bundle(path)`` reads the manifest, validates it field by field (errors name the bad
field, e.g. ``manifest.graphs.encoder.inputs[0].shape``), checks the format version and
verifies the sha256 of every listed file, and returns a frozen ``Bundle`` view.

Manifest (format ``rapsam-edge-bundle``, version 1)::

    format, format_version, name, variant
    input:        resize ("letterbox"), long_side, pad_divisor, pad_value, placement
                  ("top-left"), layout ("NHWC"), dtype ("uint8"), color_order ("RGB"),
                  normalization ("in_graph"), mean[3], std[3] (informative: applied in-graph)
    feat_stride, num_queries, num_classes
    classes:      [{id, name, is_thing}]            ids 0..C-1 in order
    graphs:       {encoder|panoptic_decoder|prompt_decoder:
                     {files: {onnx: F, openvino: F.xml}, precision,
                      inputs: [{name, dtype, shape}], outputs: [...]}}
                  shapes: ints, or strings for dynamic axes ("B", "H", "W", "H/8", "P")
    postprocess:  score_threshold, overlap_threshold, prompt_threshold
    weights:      null or {file: "model.safetensors", config: "config.json"} (torch reference)
    export:       free dict (exporter, opset, simplifier, tool versions)
    files:        {relative path: sha256 hex} for every file of the bundle but the manifest
    provenance:   free dict (training data, recipe, metrics)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GRAPH_FORMATS",
    "GRAPH_NAMES",
    "MANIFEST_NAME",
    "Bundle",
    "BundleError",
    "ChecksumError",
    "ClassEntry",
    "GraphInfo",
    "InputSpec",
    "ManifestError",
    "MissingFileError",
    "PostprocessDefaults",
    "TensorSpec",
    "load_bundle",
    "parse_manifest",
    "sha256_file",
    "verify_files",
]

FORMAT_NAME = "rapsam-edge-bundle"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MANIFEST_NAME = "manifest.json"
GRAPH_NAMES = ("encoder", "panoptic_decoder", "prompt_decoder")
#: graph file formats a bundle may carry: format -> file suffix
GRAPH_FORMATS = MappingProxyType({"onnx": ".onnx", "openvino": ".xml"})
DTYPES = frozenset({"uint8", "float32", "float16", "int32", "int64"})


class BundleError(Exception):
    """Base class of every bundle problem."""


class ManifestError(BundleError, ValueError):
    """The manifest is malformed; the message names the field."""


class ChecksumError(BundleError):
    """A file's sha256 does not match the manifest."""


class MissingFileError(BundleError, FileNotFoundError):
    """A file listed in the manifest is not in the bundle."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | str, ...]  # ints = fixed, strings = dynamic axes

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if isinstance(d, str))


@dataclass(frozen=True)
class GraphInfo:
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


@dataclass(frozen=True)
class ClassEntry:
    id: int
    name: str
    is_thing: bool


@dataclass(frozen=True)
class InputSpec:
    resize: str
    long_side: int
    pad_divisor: int
    pad_value: int
    placement: str
    layout: str
    dtype: str
    color_order: str
    normalization: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class PostprocessDefaults:
    score_threshold: float
    overlap_threshold: float
    prompt_threshold: float


@dataclass(frozen=True)
class Bundle:
    """Frozen view of a validated bundle. ``root`` is the bundle directory."""

    root: Path
    format_version: int
    name: str
    variant: str
    input: InputSpec
    feat_stride: int
    num_queries: int
    num_classes: int
    classes: tuple[ClassEntry, ...]
    graphs: Mapping[str, GraphInfo]
    postprocess: PostprocessDefaults
    weights: Mapping[str, str] | None
    export: Mapping[str, Any]
    files: Mapping[str, str]
    provenance: Mapping[str, Any]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def is_thing(self) -> tuple[bool, ...]:
        return tuple(c.is_thing for c in self.classes)

    def formats(self, graph: str) -> tuple[str, ...]:
        """File formats available for ``graph`` (e.g. ("onnx", "openvino"))."""
        return tuple(self._graph(graph).files)

    def has(self, graph: str, fmt: str) -> bool:
        return graph in self.graphs and fmt in self.graphs[graph].files

    def graph_path(self, graph: str, fmt: str) -> Path:
        """Absolute path of ``graph`` in format ``fmt`` ("onnx" | "openvino")."""
        info = self._graph(graph)
        if fmt not in info.files:
            raise KeyError(
                f"bundle {self.name!r} has no {fmt!r} file for graph {graph!r}; "
                f"it has {sorted(info.files)}"
            )
        return self.root / info.files[fmt]

    def sha256(self, relpath: str) -> str:
        return self.files[relpath]

    def weights_path(self) -> Path | None:
        """The torch weights (``model.safetensors``) if the bundle ships them."""
        return None if self.weights is None else self.root / self.weights["file"]

    def _graph(self, graph: str) -> GraphInfo:
        if graph not in self.graphs:
            raise KeyError(f"unknown graph {graph!r}; bundle has {sorted(self.graphs)}")
        return self.graphs[graph]


# ---------------------------------------------------------------------------------------
# Validation helpers: each takes the field path for the error message.


def _get(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ManifestError(f"{where}.{key}: missing")
    return d[key]


def _typed(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    # bool is an int subclass: reject it where a number is expected.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ManifestError(f"{where}: expected {_tname(types)}, got bool {value!r}")
    if not isinstance(value, types):
        raise ManifestError(
            f"{where}: expected {_tname(types)}, got {type(value).__name__} {value!r}"
        )
    return value


def _tname(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in ts)


def _str(d: Mapping, key: str, where: str, *, choices: frozenset[str] | None = None) -> str:
    v = _typed(_get(d, key, where), str, f"{where}.{key}")
    if choices is not None and v not in choices:
        raise ManifestError(f"{where}.{key}: {v!r} is not one of {sorted(choices)}")
    if not v:
        raise ManifestError(f"{where}.{key}: empty string")
    return v


def _int(d: Mapping, key: str, where: str, *, minimum: int = 0) -> int:
    v = _typed(_get(d, key, where), int, f"{where}.{key}")
    if v < minimum:
        raise ManifestError(f"{where}.{key}: {v} < {minimum}")
    return v


def _float(d: Mapping, key: str, where: str) -> float:
    return float(_typed(_get(d, key, where), (int, float), f"{where}.{key}"))


def _dict(d: Mapping, key: str, where: str, *, optional: bool = False) -> Mapping[str, Any]:
    if optional and d.get(key) is None:
        return MappingProxyType({})
    return _typed(_get(d, key, where), dict, f"{where}.{key}")


def _relpath(p: str, where: str) -> str:
    pp = PurePosixPath(p)
    if not p or pp.is_absolute() or ".." in pp.parts or "\\" in p:
        raise ManifestError(f"{where}: {p!r} must be a relative path inside the bundle")
    return p


def _tensor(t: Any, where: str) -> TensorSpec:
    t = _typed(t, dict, where)
    shape = _typed(_get(t, "shape", where), list, f"{where}.shape")
    for i, d in enumerate(shape):
        _typed(d, (int, str), f"{where}.shape[{i}]")
        if isinstance(d, int) and d < 1:
            raise ManifestError(f"{where}.shape[{i}]: {d} < 1")
    return TensorSpec(
        name=_str(t, "name", where),
        dtype=_str(t, "dtype", where, choices=DTYPES),
        shape=tuple(shape),
    )


def _graph(name: str, g: Any, where: str) -> GraphInfo:
    g = _typed(g, dict, where)
    files = _dict(g, "files", where)
    if not files:
        raise ManifestError(f"{where}.files: no file for any format")
    checked = {}
    for fmt, rel in files.items():
        if fmt not in GRAPH_FORMATS:
            raise ManifestError(
                f"{where}.files.{fmt}: unknown format; known {sorted(GRAPH_FORMATS)}"
            )
        rel = _relpath(_typed(rel, str, f"{where}.files.{fmt}"), f"{where}.files.{fmt}")
        if not rel.endswith(GRAPH_FORMATS[fmt]):
            raise ManifestError(
                f"{where}.files.{fmt}: {rel!r} should end with {GRAPH_FORMATS[fmt]}"
            )
        checked[fmt] = rel
    ios = []
    for key in ("inputs", "outputs"):
        lst = _typed(_get(g, key, where), list, f"{where}.{key}")
        if not lst:
            raise ManifestError(f"{where}.{key}: empty")
        ios.append(tuple(_tensor(t, f"{where}.{key}[{i}]") for i, t in enumerate(lst)))
    return GraphInfo(
        name=name,
        files=MappingProxyType(checked),
        precision=_str(g, "precision", where, choices=frozenset({"fp32", "fp16", "int8", "mixed"})),
        inputs=ios[0],
        outputs=ios[1],
    )


def _input_spec(d: Mapping, where: str) -> InputSpec:
    def triple(key: str) -> tuple[float, float, float]:
        v = _typed(_get(d, key, where), list, f"{where}.{key}")
        if len(v) != 3:
            raise ManifestError(f"{where}.{key}: expected 3 values, got {len(v)}")
        return tuple(float(_typed(x, (int, float), f"{where}.{key}[{i}]")) for i, x in enumerate(v))  # type: ignore[return-value]

    pad_divisor = _int(d, "pad_divisor", where, minimum=1)
    long_side = _int(d, "long_side", where, minimum=1)
    if long_side % pad_divisor:
        raise ManifestError(
            f"{where}.long_side: {long_side} is not a multiple of pad_divisor {pad_divisor}"
        )
    return InputSpec(
        resize=_str(d, "resize", where, choices=frozenset({"letterbox"})),
        long_side=long_side,
        pad_divisor=pad_divisor,
        pad_value=_int(d, "pad_value", where),
        placement=_str(d, "placement", where, choices=frozenset({"top-left"})),
        layout=_str(d, "layout", where, choices=frozenset({"NHWC"})),
        dtype=_str(d, "dtype", where, choices=frozenset({"uint8"})),
        color_order=_str(d, "color_order", where, choices=frozenset({"RGB", "BGR"})),
        normalization=_str(d, "normalization", where, choices=frozenset({"in_graph"})),
        mean=triple("mean"),
        std=triple("std"),
    )


def parse_manifest(manifest: Mapping[str, Any], root: str | Path) -> Bundle:
    """Validate a manifest dict and build the ``Bundle`` view (no file access)."""
    w = "manifest"
    _typed(manifest, dict, w)
    fmt = _get(manifest, "format", w)
    if fmt != FORMAT_NAME:
        raise ManifestError(f"{w}.format: {fmt!r} is not {FORMAT_NAME!r}")
    version = _get(manifest, "format_version", w)
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise ManifestError(
            f"{w}.format_version: unsupported version {version!r}; this "
            f"rapsam-edge reads {sorted(SUPPORTED_VERSIONS)}"
        )

    files_raw = _dict(manifest, "files", w)
    files = {}
    for rel, digest in files_raw.items():
        _relpath(rel, f"{w}.files[{rel!r}]")
        digest = _typed(digest, str, f"{w}.files[{rel!r}]")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ManifestError(f"{w}.files[{rel!r}]: not a lowercase sha256 hex digest")
        files[rel] = digest

    graphs_raw = _dict(manifest, "graphs", w)
    for g in graphs_raw:
        if g not in GRAPH_NAMES:
            raise ManifestError(f"{w}.graphs.{g}: unknown graph; known {list(GRAPH_NAMES)}")
    if "encoder" not in graphs_raw:
        raise ManifestError(f"{w}.graphs.encoder: missing")
    graphs = {
        g: _graph(g, graphs_raw[g], f"{w}.graphs.{g}") for g in GRAPH_NAMES if g in graphs_raw
    }
    for g, info in graphs.items():
        for fmt, rel in info.files.items():
            needed = [rel] + ([rel[:-4] + ".bin"] if fmt == "openvino" else [])
            for r in needed:
                if r not in files:
                    raise ManifestError(f"{w}.files: {r!r} (graph {g}, {fmt}) has no sha256")

    classes_raw = _typed(_get(manifest, "classes", w), list, f"{w}.classes")
    classes = []
    for i, c in enumerate(classes_raw):
        cw = f"{w}.classes[{i}]"
        c = _typed(c, dict, cw)
        cid = _int(c, "id", cw)
        if cid != i:
            raise ManifestError(f"{cw}.id: {cid} != its position {i} (ids must be 0..C-1)")
        classes.append(
            ClassEntry(
                id=cid,
                name=_str(c, "name", cw),
                is_thing=_typed(_get(c, "is_thing", cw), bool, f"{cw}.is_thing"),
            )
        )
    num_classes = _int(manifest, "num_classes", w, minimum=1)
    if num_classes != len(classes):
        raise ManifestError(f"{w}.num_classes: {num_classes} != {len(classes)} listed classes")

    pp = _dict(manifest, "postprocess", w)
    weights = manifest.get("weights")
    if weights is not None:
        weights = _typed(weights, dict, f"{w}.weights")
        for key in ("file", "config"):
            rel = _relpath(_str(weights, key, f"{w}.weights"), f"{w}.weights.{key}")
            if rel not in files:
                raise ManifestError(f"{w}.weights.{key}: {rel!r} has no sha256 in files")
        weights = MappingProxyType(dict(weights))

    return Bundle(
        root=Path(root),
        format_version=version,
        name=_str(manifest, "name", w),
        variant=_str(manifest, "variant", w),
        input=_input_spec(_dict(manifest, "input", w), f"{w}.input"),
        feat_stride=_int(manifest, "feat_stride", w, minimum=1),
        num_queries=_int(manifest, "num_queries", w, minimum=1),
        num_classes=num_classes,
        classes=tuple(classes),
        graphs=MappingProxyType(graphs),
        postprocess=PostprocessDefaults(
            score_threshold=_float(pp, "score_threshold", f"{w}.postprocess"),
            overlap_threshold=_float(pp, "overlap_threshold", f"{w}.postprocess"),
            prompt_threshold=_float(pp, "prompt_threshold", f"{w}.postprocess"),
        ),
        weights=weights,
        export=MappingProxyType(dict(_dict(manifest, "export", w, optional=True))),
        files=MappingProxyType(files),
        provenance=MappingProxyType(dict(_dict(manifest, "provenance", w, optional=True))),
    )


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_files(bundle: Bundle) -> None:
    """Check that every listed file exists and matches its sha256."""
    for rel, digest in bundle.files.items():
        path = bundle.root / rel
        if not path.is_file():
            raise MissingFileError(
                f"bundle {bundle.root}: {rel!r} is listed in the manifest but missing"
            )
        got = sha256_file(path)
        if got != digest:
            raise ChecksumError(
                f"bundle {bundle.root}: {rel!r} sha256 {got} does not match "
                f"the manifest's {digest} (corrupt or modified file)"
            )


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Load a bundle directory (or its ``manifest.json``); ``verify`` checks every sha256."""
    path = Path(path)
    root = path.parent if path.name == MANIFEST_NAME else path
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise MissingFileError(f"{manifest_path}: no manifest (not a rapsam-edge bundle?)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ManifestError(f"{manifest_path}: not valid JSON ({e})") from e
    bundle = parse_manifest(manifest, root)
    if verify:
        verify_files(bundle)
    return bundle
