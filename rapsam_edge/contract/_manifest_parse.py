"""Validation of a manifest object, field by field (``Manifest.from_dict``): every error is a
``ManifestError`` naming the field, e.g. ``manifest.graphs.encoder.inputs[0].dtype``. Each
helper takes the field path for its message."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from ..errors import ManifestError
from ._manifest_types import (
    FORMAT_NAME,
    SUPPORTED_VERSIONS,
    ClassEntry,
    GraphInfo,
    InputSpec,
    TensorSpec,
    frozen_mapping,
)
from .graphs import (
    DTYPES,
    ENCODER,
    GRAPH_FORMATS,
    GRAPH_IO,
    GRAPH_NAMES,
    PANOPTIC_DECODER,
    PRECISIONS,
)
from .postprocess import PostprocessDefaults

__all__ = ["parse_fields"]


def _get(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ManifestError(f"{where}.{key}: missing")
    return d[key]


def _typed(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    ts = types if isinstance(types, tuple) else (types,)
    # bool is an int subclass: reject it where a number is expected.
    if isinstance(value, bool) and bool not in ts:
        raise ManifestError(f"{where}: expected {_tname(ts)}, got bool {value!r}")
    if not isinstance(value, ts):
        raise ManifestError(f"{where}: expected {_tname(ts)}, got {type(value).__name__} {value!r}")
    return value


def _tname(ts: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in ts)


def _str(d: Mapping, key: str, where: str, *, choices: Iterable[str] | None = None) -> str:
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
    raw = _typed(_get(d, key, where), (int, float), f"{where}.{key}")
    try:
        v = float(raw)
    except OverflowError:  # a JSON integer too large for a float
        raise ManifestError(f"{where}.{key}: {raw!r:.40} is out of range") from None
    if not math.isfinite(v):
        raise ManifestError(f"{where}.{key}: {v} is not finite")
    return v


def _probability(d: Mapping, key: str, where: str) -> float:
    v = _float(d, key, where)
    if not 0.0 <= v <= 1.0:
        raise ManifestError(f"{where}.{key}: {v} is not in [0, 1]")
    return v


def _dict(d: Mapping, key: str, where: str, *, optional: bool = False) -> Mapping[str, Any]:
    if optional and d.get(key) is None:
        return MappingProxyType({})
    return _typed(_get(d, key, where), dict, f"{where}.{key}")


def _relpath(p: str, where: str) -> str:
    pp = PurePosixPath(p)
    if not p or pp.is_absolute() or ".." in pp.parts or "\\" in p:
        raise ManifestError(f"{where}: {p!r} must be a relative path inside the bundle")
    return p


def _tensor(t: Any, where: str, role: Any) -> TensorSpec:
    t = _typed(t, dict, where)
    shape = _typed(_get(t, "shape", where), list, f"{where}.shape")
    for i, d in enumerate(shape):
        _typed(d, (int, str), f"{where}.shape[{i}]")
        if isinstance(d, int) and d < 1:
            raise ManifestError(f"{where}.shape[{i}]: {d} < 1")
    spec = TensorSpec(
        name=_str(t, "name", where),
        dtype=_str(t, "dtype", where, choices=DTYPES),
        shape=tuple(shape),
        role=role.role,
    )
    # the contract fixes each role's dtype and rank (reduced-precision graphs keep
    # float32 I/O); a manifest that says otherwise would feed the graph garbage
    if spec.dtype != role.dtype:
        raise ManifestError(
            f"{where}.dtype: {spec.dtype!r}, but role {role.role!r} is {role.dtype!r}"
        )
    if len(spec.shape) != len(role.shape):
        raise ManifestError(
            f"{where}.shape: rank {len(spec.shape)}, but role {role.role!r} has rank "
            f"{len(role.shape)} {list(role.shape)}"
        )
    return spec


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
    contract = GRAPH_IO[name]
    ios = []
    for key, roles in (("inputs", contract.inputs), ("outputs", contract.outputs)):
        lst = _typed(_get(g, key, where), list, f"{where}.{key}")
        if len(lst) != len(roles):
            raise ManifestError(
                f"{where}.{key}: {len(lst)} tensors, the contract has {len(roles)} "
                f"({', '.join(r.role for r in roles)})"
            )
        specs = tuple(
            _tensor(t, f"{where}.{key}[{i}]", r) for i, (t, r) in enumerate(zip(lst, roles))
        )
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ManifestError(f"{where}.{key}: duplicate tensor names {names}")
        ios.append(specs)
    return GraphInfo(
        name=name,
        files=MappingProxyType(checked),
        precision=_str(g, "precision", where, choices=PRECISIONS),
        inputs=ios[0],
        outputs=ios[1],
    )


def _input_spec(d: Mapping, where: str) -> InputSpec:
    def triple(key: str) -> tuple[float, float, float]:
        v = _typed(_get(d, key, where), list, f"{where}.{key}")
        if len(v) != 3:
            raise ManifestError(f"{where}.{key}: expected 3 values, got {len(v)}")
        values = {str(i): x for i, x in enumerate(v)}
        a, b, c = (_float(values, str(i), f"{where}.{key}") for i in range(3))
        return a, b, c

    pad_divisor = _int(d, "pad_divisor", where, minimum=1)
    long_side = _int(d, "long_side", where, minimum=1)
    if long_side % pad_divisor:
        raise ManifestError(
            f"{where}.long_side: {long_side} is not a multiple of pad_divisor {pad_divisor}"
        )
    pad_value = _int(d, "pad_value", where)
    if pad_value > 255:
        raise ManifestError(f"{where}.pad_value: {pad_value} > 255")
    return InputSpec(
        resize=_str(d, "resize", where, choices={"letterbox"}),
        long_side=long_side,
        pad_divisor=pad_divisor,
        pad_value=pad_value,
        placement=_str(d, "placement", where, choices={"top-left"}),
        layout=_str(d, "layout", where, choices={"NHWC"}),
        dtype=_str(d, "dtype", where, choices={"uint8"}),
        color_order=_str(d, "color_order", where, choices={"RGB", "BGR"}),
        normalization=_str(d, "normalization", where, choices={"in_graph"}),
        mean=triple("mean"),
        std=triple("std"),
    )


def _check_decoder_dims(
    graphs: Mapping[str, GraphInfo], num_queries: int, num_classes: int, w: str
) -> None:
    """The panoptic decoder's fixed sizes must agree with ``num_queries`` and the class list
    (N queries, C + 1 class columns); the backends then check the graph files against these
    specs, so a manifest cannot silently disagree with its graphs."""
    info = graphs.get(PANOPTIC_DECODER)
    if info is None:
        return
    for spec in info.outputs:
        if spec.role in ("cls_logits", "mask_logits", "query_embed"):
            n = spec.shape[1]
            if isinstance(n, int) and n != num_queries:
                raise ManifestError(
                    f"{w}.num_queries: {num_queries}, but {spec.name} has {n} queries"
                )
        if spec.role == "cls_logits" and isinstance(spec.shape[2], int):
            if spec.shape[2] != num_classes + 1:
                raise ManifestError(
                    f"{w}.classes: {num_classes} classes, but {spec.name} has "
                    f"{spec.shape[2]} columns (C + 1 with no-object)"
                )


def _format_version(manifest: Mapping[str, Any], w: str) -> int:
    fmt = _get(manifest, "format", w)
    if fmt != FORMAT_NAME:
        raise ManifestError(f"{w}.format: {fmt!r} is not {FORMAT_NAME!r}")
    version = _get(manifest, "format_version", w)
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or version not in SUPPORTED_VERSIONS
    ):
        raise ManifestError(
            f"{w}.format_version: unsupported version {version!r}; this "
            f"rapsam-edge reads {sorted(SUPPORTED_VERSIONS)}"
        )
    return version


def _files_and_graphs(
    manifest: Mapping[str, Any], w: str
) -> tuple[dict[str, str], dict[str, GraphInfo]]:
    """``files`` (path -> sha256) and the graphs, each graph file with its sha256."""
    files = {}
    for rel, digest in _dict(manifest, "files", w).items():
        _relpath(rel, f"{w}.files[{rel!r}]")
        digest = _typed(digest, str, f"{w}.files[{rel!r}]")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ManifestError(f"{w}.files[{rel!r}]: not a lowercase sha256 hex digest")
        files[rel] = digest

    graphs_raw = _dict(manifest, "graphs", w)
    for g in graphs_raw:
        if g not in GRAPH_NAMES:
            raise ManifestError(f"{w}.graphs.{g}: unknown graph; known {list(GRAPH_NAMES)}")
    if ENCODER not in graphs_raw:
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
    return files, graphs


def parse_fields(manifest: Any) -> dict[str, Any]:
    """Validate a manifest object (as parsed from JSON) field by field; returns the
    ``Manifest`` constructor's keyword arguments (``Manifest.from_dict`` builds it).

    Raises:
      ManifestError: the first invalid field, named in the message.
    """
    w = "manifest"
    _typed(manifest, dict, w)
    version = _format_version(manifest, w)
    files, graphs = _files_and_graphs(manifest, w)

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
        weights = MappingProxyType({k: str(v) for k, v in weights.items()})

    num_queries = _int(manifest, "num_queries", w, minimum=1)
    _check_decoder_dims(graphs, num_queries, len(classes), w)
    return dict(
        format_version=version,
        name=_str(manifest, "name", w),
        variant=_str(manifest, "variant", w),
        input=_input_spec(_dict(manifest, "input", w), f"{w}.input"),
        feat_stride=_int(manifest, "feat_stride", w, minimum=1),
        num_queries=num_queries,
        classes=tuple(classes),
        graphs=MappingProxyType(graphs),
        postprocess=PostprocessDefaults(
            score_threshold=_probability(pp, "score_threshold", f"{w}.postprocess"),
            overlap_threshold=_probability(pp, "overlap_threshold", f"{w}.postprocess"),
            prompt_threshold=_float(pp, "prompt_threshold", f"{w}.postprocess"),
        ),
        weights=weights,
        export=frozen_mapping(_dict(manifest, "export", w, optional=True)),
        files=MappingProxyType(files),
        provenance=frozen_mapping(_dict(manifest, "provenance", w, optional=True)),
    )
