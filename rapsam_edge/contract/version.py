"""The package version, written in ONE place: ``[project] version`` of ``pyproject.toml``.

An installed package reads it from its metadata (``importlib.metadata``); a source-tree run
(``pyproject.toml`` beside the package, as in a checkout or an in-place build) reads that
file, the same line CMake reads for the compiled core's version, so the two always agree.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

__all__ = ["DIST_NAME", "package_version"]

DIST_NAME = "rapsam-edge"
_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# the line CMakeLists.txt reads too: version = "X"
_VERSION_LINE = re.compile(r'^version *= *"([^"]+)"', re.MULTILINE)


def _source_tree_version() -> str | None:
    try:
        text = _PYPROJECT.read_text(encoding="utf-8")
    except OSError:
        return None
    if not re.search(rf'^name *= *"{DIST_NAME}"', text, re.MULTILINE):
        return None  # some other project's pyproject above an installed copy
    found = _VERSION_LINE.search(text)
    return found.group(1) if found else None


def package_version() -> str:
    """The version of this copy of the package ("0+unknown" when neither source says)."""
    from_tree = _source_tree_version()
    if from_tree is not None:
        return from_tree
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        return "0+unknown"
