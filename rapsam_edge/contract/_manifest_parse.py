"""Validation of a manifest object (``Manifest.from_dict``): every error is a
``ManifestError`` naming the field, e.g. ``manifest.graphs.encoder.inputs[0].dtype``.

Two steps, the same in the C++ runtime (``csrc/runtime/manifest_check.cpp``), so that both
refuse the same manifests naming the same field:

1. the field rules (types, required fields, enums, ranges, graph names, the encoder
   required) from ``manifest.schema.json``, walked by ``schema.first_error``;
2. the rules between fields, in this order: per graph, its file paths, tensor counts, dtypes and ranks per role (``contract.json``)
   and unique tensor names; the ``files`` paths; every graph file (and an OpenVINO graph's
   ``.bin``) has a sha256; class ids 0..C-1 in order; ``num_classes`` equals the class
   list; the weights files are listed; the panoptic decoder's sizes agree with
   ``num_queries`` and the classes; ``long_side`` is a multiple of ``pad_divisor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from ..errors import ManifestError
from ._manifest_types import ClassEntry, GraphInfo, InputSpec, TensorSpec, frozen_mapping
from .graphs import GRAPH_IO, GRAPH_NAMES, PANOPTIC_DECODER
from .postprocess import PostprocessDefaults
from .schema import child_path, first_error, render

__all__ = ["parse_fields"]


def _bad(where: str, what: str) -> ManifestError:
    return ManifestError(f"{where}: {what}")


def _relpath(p: str, where: str) -> str:
    pp = PurePosixPath(p)
    if not p or pp.is_absolute() or ".." in pp.parts or "\\" in p:
        raise _bad(where, f"{render(p)} must be a relative path inside the bundle")
    return p


def _graph(name: str, g: Mapping[str, Any], where: str) -> GraphInfo:
    for fmt, rel in sorted(g["files"].items()):  # keys sorted, as the C++ twin visits them
        _relpath(rel, f"{where}.files.{fmt}")
    contract = GRAPH_IO[name]
    ios = []
    for key, roles in (("inputs", contract.inputs), ("outputs", contract.outputs)):
        lst = g[key]
        if len(lst) != len(roles):
            raise _bad(
                f"{where}.{key}",
                f"{len(lst)} tensors, the contract has {len(roles)} "
                f"({', '.join(r.role for r in roles)})",
            )
        specs: list[TensorSpec] = []
        for i, (t, role) in enumerate(zip(lst, roles)):
            tw = f"{where}.{key}[{i}]"
            # the contract fixes each role's dtype and rank (reduced-precision graphs keep
            # float32 I/O); a manifest that says otherwise would feed the graph garbage
            if t["dtype"] != role.dtype:
                raise _bad(
                    f"{tw}.dtype",
                    f"{render(t['dtype'])}, but role {render(role.role)} is {render(role.dtype)}",
                )
            if len(t["shape"]) != len(role.shape):
                raise _bad(
                    f"{tw}.shape",
                    f"rank {len(t['shape'])}, but role {render(role.role)} has rank "
                    f"{len(role.shape)} [{', '.join(role.shape)}]",
                )
            if any(s.name == t["name"] for s in specs):
                raise _bad(f"{tw}.name", f"duplicate tensor name {render(t['name'])}")
            specs.append(TensorSpec(t["name"], t["dtype"], tuple(t["shape"]), role.role))
        ios.append(tuple(specs))
    return GraphInfo(
        name=name,
        files=MappingProxyType(dict(g["files"])),
        precision=g["precision"],
        inputs=ios[0],
        outputs=ios[1],
    )


def _files_and_graphs(m: Mapping[str, Any], w: str) -> dict[str, GraphInfo]:
    graphs = {
        g: _graph(g, m["graphs"][g], f"{w}.graphs.{g}") for g in GRAPH_NAMES if g in m["graphs"]
    }
    files = m["files"]
    for rel in sorted(files):
        _relpath(rel, child_path(f"{w}.files", rel))
    for g, info in graphs.items():
        for fmt, rel in sorted(info.files.items()):
            needed = [rel] + ([rel[:-4] + ".bin"] if fmt == "openvino" else [])
            for r in needed:
                if r not in files:
                    raise _bad(f"{w}.files", f"{render(r)} (graph {g}, {fmt}) has no sha256")
    return graphs


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
                raise _bad(
                    f"{w}.num_queries", f"{num_queries}, but {render(spec.name)} has {n} queries"
                )
        if spec.role == "cls_logits" and isinstance(spec.shape[2], int):
            if spec.shape[2] != num_classes + 1:
                raise _bad(
                    f"{w}.classes",
                    f"{num_classes} classes, but {render(spec.name)} has {spec.shape[2]} "
                    "columns (C + 1 with no-object)",
                )


def _cross_fields(m: Mapping[str, Any], w: str) -> tuple[dict[str, GraphInfo], list[ClassEntry]]:
    """The rules between fields (module docstring, step 2), on a schema-valid manifest."""
    graphs = _files_and_graphs(m, w)
    classes = []
    for i, c in enumerate(m["classes"]):
        if c["id"] != i:
            raise _bad(
                f"{w}.classes[{i}].id", f"{c['id']} != its position {i} (ids must be 0..C-1)"
            )
        classes.append(ClassEntry(id=c["id"], name=c["name"], is_thing=c["is_thing"]))
    if m["num_classes"] != len(classes):
        raise _bad(f"{w}.num_classes", f"{m['num_classes']} != {len(classes)} listed classes")
    weights = m.get("weights")
    if weights is not None:
        for key in ("file", "config"):
            rel = _relpath(weights[key], f"{w}.weights.{key}")
            if rel not in m["files"]:
                raise _bad(f"{w}.weights.{key}", f"{render(rel)} has no sha256 in files")
    _check_decoder_dims(graphs, m["num_queries"], len(classes), w)
    inp = m["input"]
    if inp["long_side"] % inp["pad_divisor"]:
        raise _bad(
            f"{w}.input.long_side",
            f"{inp['long_side']} is not a multiple of pad_divisor {inp['pad_divisor']}",
        )
    return graphs, classes


def _triple(v: list) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def parse_fields(manifest: Any) -> dict[str, Any]:
    """Validate a manifest object (as parsed from JSON): the schema's field rules, then the
    rules between fields; returns the ``Manifest`` constructor's keyword arguments
    (``Manifest.from_dict`` builds it).

    Raises:
      ManifestError: the first invalid field, named in the message.
    """
    w = "manifest"
    err = first_error(manifest, path=w)
    if err is not None:
        raise _bad(*err)
    graphs, classes = _cross_fields(manifest, w)
    inp, pp, weights = manifest["input"], manifest["postprocess"], manifest.get("weights")
    return dict(
        format_version=manifest["format_version"],
        name=manifest["name"],
        variant=manifest["variant"],
        input=InputSpec(
            resize=inp["resize"],
            long_side=inp["long_side"],
            pad_divisor=inp["pad_divisor"],
            pad_value=inp["pad_value"],
            placement=inp["placement"],
            layout=inp["layout"],
            dtype=inp["dtype"],
            color_order=inp["color_order"],
            normalization=inp["normalization"],
            mean=_triple(inp["mean"]),
            std=_triple(inp["std"]),
        ),
        feat_stride=manifest["feat_stride"],
        num_queries=manifest["num_queries"],
        classes=tuple(classes),
        graphs=MappingProxyType(graphs),
        postprocess=PostprocessDefaults(
            score_threshold=float(pp["score_threshold"]),
            overlap_threshold=float(pp["overlap_threshold"]),
            prompt_threshold=float(pp["prompt_threshold"]),
        ),
        weights=None if weights is None else MappingProxyType(dict(weights)),
        export=frozen_mapping(manifest.get("export")),
        files=MappingProxyType(dict(manifest["files"])),
        provenance=frozen_mapping(manifest.get("provenance")),
    )
