"""Per-frame post-processing shared by every backend.

Each op has a compiled implementation (``rapsam_edge._core``, C++) and a numpy reference
twin (``rapsam_edge.ops._numpy``) with the same signature and results. This module picks
one: the compiled core when it is built, numpy otherwise. ``RAPSAM_EDGE_OPS=cpp`` makes a
missing core an ImportError (CI sets it), ``RAPSAM_EDGE_OPS=numpy`` forces the twins;
``use("cpp" | "numpy")`` switches at run time.
"""

from __future__ import annotations

import os
from types import ModuleType

from . import _numpy
from ._checks import SEGMENT_DTYPE

# numpy twins as the defaults (and for type checkers); use() rebinds them below
from ._numpy import (  # noqa: F401
    letterbox,
    linear_assignment,
    masks_to_boxes,
    overlay,
    panoptic_fuse,
    prompt_masks,
    rle_decode,
    rle_encode,
)

OP_NAMES = (
    "letterbox",
    "panoptic_fuse",
    "prompt_masks",
    "masks_to_boxes",
    "rle_encode",
    "rle_decode",
    "linear_assignment",
    "overlay",
)
ENV_VAR = "RAPSAM_EDGE_OPS"

__all__ = [
    "ENV_VAR",
    "OP_NAMES",
    "SEGMENT_DTYPE",
    "core_available",
    "implementation",
    "use",
    *OP_NAMES,
]


def _load_core() -> ModuleType | None:
    try:
        from .. import _core
    except ImportError:
        return None
    return _core


_CORE = _load_core()
_IMPLS: dict[str, ModuleType | None] = {"cpp": _CORE, "numpy": _numpy}
_active = "numpy"


def core_available() -> bool:
    """True when the compiled C++ core was built and imports."""
    return _CORE is not None


def implementation() -> str:
    """Name of the implementation the ops currently dispatch to: "cpp" or "numpy"."""
    return _active


def use(name: str) -> None:
    """Dispatch every op to ``name`` ("cpp", "numpy" or "auto")."""
    global _active
    if name == "auto":
        name = "cpp" if _CORE is not None else "numpy"
    if name not in _IMPLS:
        raise ValueError(f"unknown ops implementation {name!r}; choose cpp, numpy or auto")
    if _IMPLS[name] is None:
        raise ImportError(
            "rapsam_edge._core (the compiled C++ core) is not built; reinstall with "
            "`pip install .` (needs a C++17 compiler and CMake), or set "
            f"{ENV_VAR}=numpy to use the slower numpy twins"
        )
    impl = _IMPLS[name]
    for op in OP_NAMES:
        globals()[op] = getattr(impl, op)
    _active = name


use(os.environ.get(ENV_VAR, "auto").strip().lower() or "auto")
