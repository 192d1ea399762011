"""Write a model bundle: graphs (ONNX, OpenVINO IR), optional torch weights, manifest.json.

See ``rapsam_edge.bundle`` for the manifest schema; the writer validates what it wrote by
loading it back with ``load_bundle`` (sha256 included) before returning.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..bundle import load_bundle
from ..bundle import sha256_file as _sha256
from ..contract import (
    GRAPH_FORMATS,
    MANIFEST_NAME,
    GraphInfo,
    InputSpec,
    Manifest,
    PostprocessDefaults,
    TensorSpec,
    normalize_classes,
)
from ..errors import ConfigError
from ..model.rapsam import RapSam
from .deform_export import DEFORM_CHOICE, DEFORM_FORMS, has_deform
from .graphs import GRAPHS, graph_spec
from .onnx_export import export_onnx
from .provenance import check_portable
from .staging import load_staged, staged_bundle, write_manifest

__all__ = ["export_bundle"]

log = logging.getLogger(__name__)


def _tool_versions() -> dict[str, str]:
    import onnx

    versions = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "python": platform.python_version(),
    }
    for mod in ("onnxslim", "onnxsim", "openvino", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            pass
    return versions


def _deform_forms(
    model: RapSam, formats: Sequence[str], deform: Mapping[str, str] | None
) -> dict[str, str]:
    """format -> deformable-conv export form; {} for models without DCNv2 layers."""
    if not has_deform(model):
        return {}
    chosen = {f: (deform or {}).get(f, DEFORM_CHOICE[f]) for f in formats}
    bad = {f: v for f, v in chosen.items() if v not in DEFORM_FORMS}
    if bad:
        raise ConfigError(f"deform forms {bad}: choose from {sorted(DEFORM_FORMS)}")
    return chosen


def export_bundle(
    model: RapSam,
    out_dir: str | Path,
    *,
    name: str,
    classes: Sequence[Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    input_size: int | None = None,
    formats: Sequence[str] = ("onnx", "openvino"),
    graphs: Sequence[str] = GRAPHS,
    opset: int | None = None,
    simplifier: str = "auto",
    include_weights: bool = False,
    overwrite: bool = True,
    deform: Mapping[str, str] | None = None,
) -> Path:
    """Export ``model`` to a bundle directory ``out_dir``.

    Arguments:
      classes: C entries, objects with id / name / is_thing (e.g. ``data.classes.ClassInfo``)
        or such dicts; C must equal ``model.num_classes``. Default:
        the vocabulary saved with the weights (``model.config["classes"]``).
      input_size: default long side of the letterboxed input (default ``model.input_size``).
      formats: subset of ("onnx", "openvino"); OpenVINO IR is converted from the ONNX (which
        is kept only if "onnx" is requested).
      include_weights: also ship ``model.safetensors`` + ``config.json`` (torch reference
        backend, parity checks).
      provenance: recorded in the manifest; it may not hold a path of this machine
        (``provenance.check_portable``: name files by name and sha256).
      overwrite: replace a previous bundle at ``out_dir`` (never a directory holding
        anything else); False: refuse an existing bundle.
      opset: ONNX opset (default: 17, or 19 where a ``deformconv`` form needs it).
      deform: format -> deformable-conv export form (``deform_export.DEFORM_FORMS``) for
        models with DCNv2 layers; default the measured choice ``DEFORM_CHOICE``. Recorded in
        the manifest (``export.deform``).
    The bundle is written into a staging folder beside ``out_dir`` and moved into place
    when complete (``deploy.staging``): a failure or an interrupt leaves ``out_dir`` as it
    was.

    Returns the bundle directory.
    Raises:
      ConfigError: bad formats, classes, size, deform forms, or a provenance holding a path
        of this machine. OutputExistsError: ``out_dir`` may not be replaced.
    """
    unknown = sorted(set(formats) - set(GRAPH_FORMATS))
    if unknown or not formats:
        raise ConfigError(f"formats {list(formats)}: choose from {sorted(GRAPH_FORMATS)}")
    cls = _resolve_classes(model, classes)
    input_size = int(input_size or model.input_size)
    if input_size % model.pad_divisor:
        raise ConfigError(f"input_size {input_size} is not a multiple of {model.pad_divisor}")
    check_portable({"name": name, "provenance": dict(provenance or {})}, "manifest")
    out = Path(out_dir)
    forms = _deform_forms(model, formats, deform)
    with staged_bundle(out, replace=overwrite) as stage:
        _export_into(
            model,
            stage,
            name,
            cls,
            input_size,
            formats,
            graphs,
            forms,
            opset=opset,
            simplifier=simplifier,
            include_weights=include_weights,
            provenance=provenance,
        )
    load_bundle(out)  # the bundle in place loads (schema + sha256)
    log.info("wrote bundle %s (%s; graphs %s)", out, ", ".join(formats), ", ".join(graphs))
    return out


def _export_into(
    model: RapSam,
    out: Path,
    name: str,
    cls: Any,
    input_size: int,
    formats: Sequence[str],
    graphs: Sequence[str],
    forms: Mapping[str, str],
    *,
    opset: int | None,
    simplifier: str,
    include_weights: bool,
    provenance: Mapping[str, Any] | None,
) -> None:
    """Write the bundle's files and manifest into the (staging) directory ``out`` and check
    that it loads."""
    model = model.eval()
    graph_entries: dict[str, Any] = {}
    simplifiers: set[str] = set()
    opsets: set[int] = set()
    for g in graphs:
        graph_entries[g] = _export_graph(
            model, g, out, formats, forms, opset, simplifier, simplifiers, opsets
        )
    weights = None
    if include_weights:
        from ..model.io import save_model

        save_model(model, out, classes=cls)
        weights = {"file": "model.safetensors", "config": "config.json"}
    export = {
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "opset": max(opsets),
        **({"deform": dict(sorted(forms.items()))} if forms else {}),
        "simplifier": "+".join(sorted(simplifiers)),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _tool_versions(),
    }
    _write_manifest(model, out, name, cls, input_size, graph_entries, weights, export, provenance)
    load_staged(out)  # validate what we wrote (schema + sha256)


def _resolve_classes(model: RapSam, classes: Sequence[Any] | None) -> Any:
    """The bundle's class list: ``classes``, or the vocabulary saved with the weights."""
    if classes is None:
        classes = getattr(model, "config", {}).get("classes")
        if classes is None:
            raise ConfigError(
                "the model carries no class vocabulary (weights saved before classes were "
                "stored in config.json); pass classes=... (the CLI's --classes FILE.json)"
            )
    cls = normalize_classes(classes)
    if len(cls) != model.num_classes:
        raise ConfigError(f"{len(cls)} classes given, the model has {model.num_classes}")
    return cls


def _export_graph(
    model: RapSam,
    g: str,
    out: Path,
    formats: Sequence[str],
    forms: Mapping[str, str],
    opset: int | None,
    simplifier: str,
    simplifiers: set[str],
    opsets: set[int],
) -> GraphInfo:
    """Export graph ``g`` in each of ``formats`` into ``out``; returns its manifest entry
    (and adds the simplifier and opset used to ``simplifiers`` / ``opsets``)."""
    files: dict[str, str] = {}
    exported: dict[str, Path] = {}  # deform form -> ONNX file of this graph
    for fmt in formats:
        form = forms.get(fmt, "gridsample")
        if form not in exported:
            shipped = "onnx" in formats and forms.get("onnx", "gridsample") == form
            onnx_path = out / (f"{g}.onnx" if shipped else f"{g}.{form}.tmp.onnx")
            res = export_onnx(model, g, onnx_path, opset=opset, simplifier=simplifier, deform=form)
            simplifiers.add(res.simplifier)
            opsets.add(res.opset)
            exported[form] = onnx_path
        if fmt == "openvino":
            from .backends.openvino.convert import convert_to_openvino

            xml, _ = convert_to_openvino(exported[form], out / f"{g}.xml")
            files["openvino"] = xml.name
        else:
            files["onnx"] = exported[form].name
    for path in exported.values():
        if path.name not in files.values():
            path.unlink()
    io = graph_spec(model, g)
    return GraphInfo(
        name=g,
        files=dict(sorted(files.items())),
        precision="fp32",
        inputs=tuple(
            TensorSpec(t["name"], t["dtype"], tuple(t["shape"]), t["name"]) for t in io["inputs"]
        ),
        outputs=tuple(
            TensorSpec(t["name"], t["dtype"], tuple(t["shape"]), t["name"]) for t in io["outputs"]
        ),
    )


def _write_manifest(
    model: RapSam,
    out: Path,
    name: str,
    cls: Any,
    input_size: int,
    graph_entries: Mapping[str, GraphInfo],
    weights: Mapping[str, str] | None,
    export: Mapping[str, Any],
    provenance: Mapping[str, Any] | None,
) -> None:
    """``manifest.json`` for the files now in ``out`` (sha256 of each)."""
    config = getattr(model, "config", {})
    files = {
        p.relative_to(out).as_posix(): _sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    manifest = Manifest(
        name=name,
        variant=config.get("variant", type(model).__name__),
        input=InputSpec(
            long_side=input_size,
            pad_divisor=model.pad_divisor,
            mean=tuple(float(v) for v in model.pixel_mean.flatten()),
            std=tuple(float(v) for v in model.pixel_std.flatten()),
        ),
        feat_stride=model.feat_stride,
        num_queries=model.num_queries,
        classes=cls,
        graphs=dict(graph_entries),
        postprocess=PostprocessDefaults(),
        weights=dict(weights) if weights is not None else None,
        export=dict(export),
        files=files,
        provenance=dict(provenance or {}),
    ).to_dict()
    write_manifest(out, json.loads(json.dumps(manifest)))
