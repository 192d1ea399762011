"""Write a reduced-precision bundle derived from an FP32 one: new graph files for some graphs,
the others copied, one manifest (``contract.Manifest``) with the precision of each graph and
the quantization record (tool settings, gate numbers) under ``export.quantization``."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...bundle import Bundle, sha256_file
from ...contract import GRAPH_FORMATS, MANIFEST_NAME, GraphInfo
from ...errors import ConfigError
from ..staging import load_staged, write_manifest

__all__ = ["graph_file_names", "write_derived_bundle"]


def graph_file_names(graph: str, fmt: str, tag: str) -> list[str]:
    """File names of ``graph`` in ``fmt`` for precision ``tag`` (IR: the .xml and its .bin)."""
    stem = f"{graph}.{tag}"
    if fmt == "openvino":
        return [f"{stem}.xml", f"{stem}.bin"]
    return [f"{stem}{GRAPH_FORMATS[fmt]}"]


def write_derived_bundle(
    source: Bundle,
    out: Path,
    *,
    staged: Path,
    name: str,
    fmt: str,
    graphs: Mapping[str, tuple[str, str]],
    record: Mapping[str, Any],
) -> Bundle:
    """Write the derived bundle into ``out`` and return it loaded (checksums verified).

    ``out`` is a directory the caller owns, ``quantize_bundle``'s staging folder
    (``deploy.staging.staged_bundle``): this function empties it and fills it; moving it into
    place, once the gate passed, is the caller's.

    Arguments:
      source: the FP32 bundle.
      out: the directory to fill (created if missing; what it held is removed).
      staged: where the converted graph files are (copied from there when present, else
        from the source bundle).
      name: the new bundle's name.
      fmt: the one graph format the derived bundle carries ("onnx" or "openvino").
      graphs: graph -> (file name of its main file in ``out``, precision) for the graphs that
        changed; the other graphs are copied from ``source`` in ``fmt`` at their precision.
      record: the quantization record (stored under ``export.quantization``).
    Raises:
      ConfigError: the source has no ``fmt`` file for a graph that is copied.
    """
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    new_graphs: dict[str, GraphInfo] = {}
    for g, info in source.graphs.items():
        if g in graphs:
            main, precision = graphs[g]
        else:
            if fmt not in info.files:
                raise ConfigError(f"bundle {source.name!r} has no {fmt} file for {g} to copy")
            main, precision = info.files[fmt], info.precision
        for rel in [main] + ([main[:-4] + ".bin"] if main.endswith(".xml") else []):
            src = staged / rel if (staged / rel).exists() else source.root / rel
            shutil.copy2(src, out / rel)
        new_graphs[g] = dataclasses.replace(info, files={fmt: main}, precision=precision)
    files = {
        p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()
    }
    manifest = dataclasses.replace(
        source.manifest,
        name=name,
        graphs=new_graphs,
        weights=None,
        files=files,
        export={
            **dict(source.export),
            "quantization": dict(record),
            "source_bundle": source.name,
            "source_manifest_sha256": sha256_file(source.root / MANIFEST_NAME),
        },
    )
    plain = json.loads(json.dumps(manifest.to_dict(), default=_plain))
    write_manifest(out, _finite(plain))
    return load_staged(out)


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None: a gate number with nothing
    to measure (no segment of a class, no mask) is NaN, which JSON cannot hold."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _plain(obj: Any) -> Any:
    """JSON for the numpy scalars a tool's record may hold."""
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
