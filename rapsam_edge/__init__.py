"""rapsam-edge: deploy RAP-SAM (interactive, panoptic and video segmentation) on edge devices.

The runtime half (this package's top level, ``ops``, ``runtime``, ``bundle``) never imports
torch; the training half (``model``, ``train``, ``deploy``) does and is imported explicitly.

``Segmenter`` and ``ImageEmbedding`` are loaded on first use (PEP 562), so that importing
``rapsam_edge.errors`` or ``rapsam_edge.contract`` never loads the ops: a bad
``RAPSAM_EDGE_THREADS`` / ``RAPSAM_EDGE_OPS`` then raises its ``ConfigError`` where the ops
are first needed, and a caller can import the error type to catch it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contract.version import package_version
from .errors import RapsamEdgeError

if TYPE_CHECKING:
    from .runtime.segmenter import ImageEmbedding, Segmenter

__version__ = package_version()

__all__ = ["ImageEmbedding", "RapsamEdgeError", "Segmenter", "__version__"]

_LAZY = frozenset({"ImageEmbedding", "Segmenter"})


def __getattr__(name: str) -> Any:
    """``Segmenter`` / ``ImageEmbedding`` from ``rapsam_edge.runtime.segmenter``, imported on
    first use (it loads the ops, which read their environment settings)."""
    if name in _LAZY:
        from .runtime import segmenter

        value = getattr(segmenter, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
