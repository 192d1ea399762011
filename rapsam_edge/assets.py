"""Where the shipped bundles and the sample clip live: inside the installed package
(``rapsam_edge/models``, copied there at install time) or in a source checkout (``models/``),
and how a bundle argument (path, shipped name or None) becomes a bundle directory."""

from __future__ import annotations

from pathlib import Path

from .contract.manifest import MANIFEST_NAME
from .contract.shared import (
    DEFAULT_BUNDLE,
    PARTIAL_BUNDLE_MARK,
    REALTIME_BUNDLE,
    SAMPLE_CLIP,
    SHIPPED_BUNDLES,
)
from .errors import BundleError, ConfigError, InputError, MissingFileError

__all__ = [
    "DEFAULT_BUNDLE",
    "REALTIME_BUNDLE",
    "SAMPLE_CLIP",
    "default_bundle",
    "models_dir",
    "resolve_bundle",
    "sample_clip",
    "shipped_bundles",
]


def models_dir() -> Path:
    """The installed copy if present, else the repository's ``models/``.

    Raises:
      MissingFileError: neither holds the shipped default bundle.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "models", here.parent / "models"):
        if (candidate / DEFAULT_BUNDLE / MANIFEST_NAME).is_file():
            return candidate
    raise MissingFileError(
        f"the shipped bundle {DEFAULT_BUNDLE!r} was found neither in {here / 'models'} nor in "
        f"{here.parent / 'models'}",
        hint="reinstall rapsam-edge (`pip install .`) or pass a bundle directory",
    )


def shipped_bundles() -> tuple[str, ...]:
    """Names of the bundles shipped with the package (``contract.json``'s list, the one
    CMakeLists.txt installs), sorted, that are present in ``models_dir()``."""
    try:
        root = models_dir()
    except MissingFileError:
        return ()
    return tuple(sorted(n for n in SHIPPED_BUNDLES if (root / n / MANIFEST_NAME).is_file()))


def default_bundle() -> Path:
    return models_dir() / DEFAULT_BUNDLE


def sample_clip() -> Path:
    return models_dir() / SAMPLE_CLIP


def resolve_bundle(spec: str | Path | None) -> Path:
    """The bundle directory for a path (directory or its ``manifest.json``), a shipped
    bundle's name, or None (the shipped default). A path that exists wins over a name.

    Raises:
      ConfigError: an empty name ("" is not the current directory).
      MissingFileError: nothing matches; the message lists the shipped bundles.
      BundleError: the path is a file (a bundle is a directory); its manifest.json is there
        but is not a file (a directory, a FIFO, a broken link); the directory is a bundle
        writer's unfinished staging folder (its name holds ``PARTIAL_BUNDLE_MARK``).
    """
    if spec is None:
        return default_bundle()
    if not isinstance(spec, (str, Path)):  # an untyped caller's wrong type
        raise InputError(
            f"bundle must be a directory, a shipped bundle's name or None, got {type(spec).__name__}"
        )
    if isinstance(spec, str) and not spec.strip():  # Path("") would be the current directory
        raise ConfigError(
            f"bundle must name a directory or a shipped bundle, got {spec!r}",
            hint="pass None for the shipped default bundle, or a bundle directory",
        )
    path = Path(spec)
    root = path.parent if path.name == MANIFEST_NAME else path
    if PARTIAL_BUNDLE_MARK in root.name or PARTIAL_BUNDLE_MARK in root.resolve().name:
        raise BundleError(
            f"bundle {str(spec)!r}: {root.resolve().name} is the staging folder of an export or quantize "
            "that did not finish (interrupted or failed): not a bundle",
            hint="remove it (the next export / quantize to the same --out does), and re-run it",
        )
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        return root
    if manifest.exists() or manifest.is_symlink():  # there, but not a file to read
        kind = (
            "a directory"
            if manifest.is_dir()
            else "a broken link"
            if not manifest.exists()
            else "not a regular file"
        )
        raise BundleError(
            f"bundle {str(spec)!r}: its {MANIFEST_NAME} ({manifest}) is {kind}, not a JSON file",
            hint="restore the bundle's manifest.json or re-export the bundle (`rapsam-edge export`)",
        )
    if str(spec) in shipped_bundles():
        return models_dir() / str(spec)
    if root.is_file():
        raise BundleError(
            f"bundle {str(spec)!r}: {root} is a file; a bundle is a directory holding "
            f"{MANIFEST_NAME} and the graph files",
            hint=f"pass the bundle's folder (e.g. {root.parent}), not a file in it",
        )
    what = "has no manifest.json (not a rapsam-edge bundle?)" if root.is_dir() else "does not exist"
    raise MissingFileError(
        f"bundle {str(spec)!r}: {root} {what}; shipped bundles: {list(shipped_bundles())}"
    )
