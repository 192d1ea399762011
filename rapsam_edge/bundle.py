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
import math
import os
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .contract.files import file_kind, open_regular, read_regular
from .contract.gate_record import check_gate_record
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
from .contract.schema import render
from .contract.shared import MAX_JSON_DEPTH, MAX_MANIFEST_BYTES
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
    "read_manifest",
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
    """sha256 of a regular file, lowercase hex (a named pipe, device, socket or directory is
    refused before it is opened in blocking mode: ``contract.files.open_regular``).

    Raises:
      BundleError: not a regular file, or unreadable.
    """
    h = hashlib.sha256()
    with open_regular(path, "bundle file", BundleError) as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _inside(root: Path, path: Path, rel: str) -> None:
    """Refuse a bundle path that is, or passes through, a symlink, or resolves outside the
    bundle directory (a graph must never read a file the manifest did not vouch for)."""
    p = root
    for part in Path(rel).parts:
        p = p / part
        if p.is_symlink():
            raise BundleError(
                f"bundle {root}: {rel!r} is a symbolic link ({p} -> {os.readlink(p)}); "
                "bundle files must be regular files inside the bundle directory"
            )
    if not path.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"bundle {root}: {rel!r} resolves outside the bundle directory")


def verify_files(bundle: Bundle) -> None:
    """Check the bundle's files (``_verify``); an unreadable directory is a ``BundleError``.

    Raises:
      as ``_verify``; BundleError: the directory cannot be listed.
    """
    try:
        _verify(bundle)
    except BundleError:  # MissingFileError is an OSError too: kept as it is
        raise
    except OSError as e:  # an unreadable sub-directory, a file vanishing while listed
        raise BundleError(f"bundle {bundle.root}: cannot read ({e})") from e


def _verify(bundle: Bundle) -> None:
    """Check the bundle's files before anything parses them.

    Every listed file must be a regular file inside the bundle directory (no symlinks, no
    path leaving it) whose sha256 matches the manifest, and every file in the directory must
    be listed: ONNX graphs may load external data files by name, so an unlisted file could
    be loaded unverified.

    Raises:
      MissingFileError: a listed file is missing. ChecksumError: a digest differs.
      BundleError: a symlink, a path leaving the bundle, or an unlisted file.
    """
    root = bundle.root
    manifest = root / MANIFEST_NAME
    if manifest.is_symlink():
        raise BundleError(f"bundle {root}: {MANIFEST_NAME} is a symbolic link")
    listed = set(bundle.files)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise BundleError(
                f"bundle {root}: {rel!r} is a symbolic link; bundle files must be regular "
                "files inside the bundle directory"
            )
        mode = path.lstat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # never opened: it could block
            raise BundleError(
                f"bundle {root}: {rel!r} is {file_kind(mode)}; bundle files must be regular "
                "files inside the bundle directory"
            )
        if path.is_file() and rel != MANIFEST_NAME and rel not in listed:
            raise BundleError(
                f"bundle {root}: {rel!r} is not listed in the manifest (every file of a bundle "
                "carries a sha256, so that no graph can load an unverified file)",
                hint=f"remove {rel} from the bundle directory, or re-export the bundle",
            )
    for rel, digest in bundle.files.items():
        path = root / rel
        _inside(root, path, rel)
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


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    pass


def _depth(value: Any) -> int:
    """Deepest nesting of objects and arrays (1 for a flat object), without recursion.

    Raises:
      UnicodeEncodeError: a string or key holds a lone UTF-16 surrogate ("\\ud800"), which
        Python's json accepts and nlohmann::json (the C++ runtime) refuses.
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, str):
            v.encode("utf-8")
        elif isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            items = [*v.keys(), *v.values()] if isinstance(v, dict) else v
            stack.extend((c, d + 1) for c in items)
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_float(text: str) -> float:
    """A JSON number as nlohmann::json (the C++ runtime) reads it: beyond a double's range
    (1e400) it is not valid JSON, not infinity."""
    v = float(text)
    if math.isinf(v):
        raise ValueError(f"number overflow parsing {text[:40]!r}")
    return v


def _json_int(digits: str) -> int | float:
    """A JSON integer as nlohmann::json reads it: an int within int64 / uint64, else the
    nearest float (``_json_float``), so both runtimes see the same value."""
    if len(digits.lstrip("-")) <= 20:
        v = int(digits)
        if -(2**63) <= v < 2**64:
            return v
    return _json_float(digits)


def read_manifest(path: Path) -> Any:
    """The JSON value of a manifest file, read as the C++ runtime reads it
    (``csrc/runtime/bundle.cpp``): a regular file (never opened in blocking mode) of at most
    ``MAX_MANIFEST_BYTES``, UTF-8 JSON with no duplicate key, no NaN / Infinity, nesting of
    at most ``MAX_JSON_DEPTH``, integers beyond 64 bits read as floats and numbers beyond a
    double's range refused (as nlohmann does).

    Raises:
      ManifestError: not a regular file, unreadable, too large, not UTF-8, not valid JSON,
        a duplicate key (named), nested too deep.
    """
    hint = "restore the bundle's manifest.json or re-export the bundle (`rapsam-edge export`)"
    raw = read_regular(path, "manifest", ManifestError, max_bytes=MAX_MANIFEST_BYTES, hint=hint)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ManifestError(f"{path}: not valid JSON (starts with a UTF-8 byte order mark)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e})") from e
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_int=_json_int,
            parse_float=_json_float,
        )
    except _DuplicateKey as e:
        raise ManifestError(f"{path}: duplicate key {render(e.args[0])}") from None
    except RecursionError:
        raise ManifestError(
            f"{path}: not valid JSON (nested deeper than {MAX_JSON_DEPTH})"
        ) from None
    except ValueError as e:  # JSONDecodeError, and ints over 4300 digits
        raise ManifestError(f"{path}: not valid JSON ({e})") from e
    try:
        depth = _depth(value)
    except UnicodeEncodeError:
        raise ManifestError(f"{path}: not valid JSON (a lone UTF-16 surrogate)") from None
    if depth > MAX_JSON_DEPTH:
        raise ManifestError(f"{path}: not valid JSON (nested deeper than {MAX_JSON_DEPTH})")
    return value


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
      BundleError: ``path`` is a file other than a ``manifest.json`` (a bundle is a
        directory; the hint says to pass its folder), or a writer's unfinished staging
        folder (``assets.resolve_bundle``).
      ManifestError: also a quantized bundle without a passed (or knowingly skipped) gate
        record (``contract.gate_record``).
    """
    from .assets import resolve_bundle

    root = resolve_bundle(path)
    manifest = read_manifest(root / MANIFEST_NAME)
    manifest_path = root / MANIFEST_NAME
    try:
        bundle = parse_manifest(manifest, root)
    except ManifestError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as e:
        # a malformed value the field checks did not anticipate is still a manifest error
        raise ManifestError(f"{manifest_path}: malformed manifest ({type(e).__name__}: {e})") from e
    check_gate_record(bundle.export)
    if verify:
        verify_files(bundle)
    return bundle
