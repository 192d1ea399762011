"""Model bundle: a directory with ``manifest.json`` and graph files (runtime side, no torch).

``load_bundle(path_or_name)`` finds the bundle (a directory, its ``manifest.json``, or the
name of a bundle shipped with the package), reads the manifest, validates it field by field
with ``contract.Manifest.from_dict`` (errors name the bad field, e.g.
``manifest.graphs.encoder.inputs[0].shape``), verifies the sha256 of every listed file and
returns a frozen ``Bundle``: the ``Manifest`` plus the directory it lives in. The manifest
schema is documented in ``rapsam_edge.contract.manifest``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from .contract.graphs import GRAPH_FORMATS, GRAPH_NAMES
from .contract.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    ClassEntry,
    GraphInfo,
    InputSpec,
    Manifest,
    TensorSpec,
)
from .contract.postprocess import PostprocessDefaults
from .errors import BundleError, ChecksumError, ManifestError, MissingFileError

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
    "Manifest",
    "ManifestError",
    "MissingFileError",
    "PostprocessDefaults",
    "TensorSpec",
    "load_bundle",
    "parse_manifest",
    "sha256_file",
    "verify_files",
]


@dataclass(frozen=True)
class Bundle(Manifest):
    """A validated manifest and the bundle directory ``root`` it describes."""

    root: Path = field(default=Path("."))

    @classmethod
    def from_manifest(cls, manifest: Manifest, root: str | Path) -> Bundle:
        return cls(**{f.name: getattr(manifest, f.name) for f in fields(Manifest)}, root=Path(root))

    @property
    def manifest(self) -> Manifest:
        """The manifest alone (what export writes)."""
        return Manifest(**{f.name: getattr(self, f.name) for f in fields(Manifest)})

    def formats(self, graph: str) -> tuple[str, ...]:
        """File formats available for ``graph`` (e.g. ("onnx", "openvino"))."""
        return tuple(self._graph(graph).files)

    def has(self, graph: str, fmt: str) -> bool:
        return graph in self.graphs and fmt in self.graphs[graph].files

    def graph_path(self, graph: str, fmt: str) -> Path:
        """Absolute path of ``graph`` in format ``fmt`` ("onnx" | "openvino").

        Raises:
          BundleError: the bundle has no such graph or no file of that format for it.
        """
        info = self._graph(graph)
        if fmt not in info.files:
            raise BundleError(
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
            raise BundleError(
                f"bundle {self.name!r} has no graph {graph!r}; it has {sorted(self.graphs)}"
            )
        return self.graphs[graph]


def parse_manifest(manifest: object, root: str | Path) -> Bundle:
    """Validate a manifest dict and build the ``Bundle`` view (no file access).

    Raises:
      ManifestError: the first invalid field, named in the message.
    """
    return Bundle.from_manifest(Manifest.from_dict(manifest), root)


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


def load_bundle(path: str | Path | None = None, *, verify: bool = True) -> Bundle:
    """Load and validate a bundle.

    Arguments:
      path: a bundle directory, its ``manifest.json``, the name of a bundle shipped with the
        package (e.g. "edge-xs-synthetic"), or None for the shipped default bundle.
      verify: check every listed file's sha256 (default; the files are read once).
    Returns:
      the ``Bundle``.
    Raises:
      MissingFileError: no such bundle (the message lists the shipped ones) or a listed file
        is missing.
      ManifestError: the manifest is not valid JSON or not a valid manifest.
      ChecksumError: a file differs from its sha256.
    """
    from .assets import resolve_bundle

    root = resolve_bundle(path)
    manifest_path = root / MANIFEST_NAME
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{manifest_path}: not UTF-8 text ({e})") from e
    except OSError as e:
        raise BundleError(f"{manifest_path}: cannot read ({e})") from e
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ManifestError(f"{manifest_path}: not valid JSON ({e})") from e
    bundle = parse_manifest(manifest, root)
    if verify:
        verify_files(bundle)
    return bundle
