"""Per-frame post-processing shared by every backend.

Each op has a compiled implementation (``rapsam_edge._core``, C++, multi-threaded) and a numpy
reference twin (``rapsam_edge.ops._numpy``, single-threaded) with the same signature and
results. The functions here are stable dispatchers to the implementation in use, so
``from rapsam_edge.ops import panoptic_fuse`` keeps following ``use()``. Arguments are checked
once, in Python (``_checks``), for both: the core is handed arrays that are already valid
(``impl("cpp")`` is the compiled core behind those checks).

Internal: ``kernel(name)`` is the raw kernel of the implementation in use, behind no checks,
for the package's own pipeline (the Segmenter), which validates its arrays once on their way
in and would otherwise pay each op's checks (and NaN/inf scan) a second time.

``RAPSAM_EDGE_OPS`` (read at import) picks the implementation:

- ``auto`` (default): the compiled core; when it is missing or fails to load (import error,
  or a stale build whose version differs from the package's) the numpy twins run, with one
  ``CoreFallbackWarning`` and one WARNING log line (logger ``rapsam_edge.ops``) saying why;
- ``cpp``: the compiled core, else ``CoreUnavailableError`` (CI sets this);
- ``numpy``: the numpy twins, silently.

``RAPSAM_EDGE_THREADS`` (read at import) or ``set_num_threads(n)`` sets the core's threads
(default: the cores this process may use). ``info()`` says what runs and why.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any, TypeVar, cast

import numpy as np

from ..contract.shared import MAX_THREADS, OPS_ENV_VAR, THREADS_ENV_VAR
from ..contract.threads import parse_threads, usable_cores
from ..contract.version import package_version
from ..errors import ConfigError, CoreFallbackWarning, CoreUnavailableError
from . import _checks, _numpy, _tracker
from ._checks import MAX_SIDE, SEGMENT_DTYPE, check_int

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
ENV_VAR = OPS_ENV_VAR
_PACKAGE_VERSION = package_version()
_CHOICES = ("auto", "cpp", "numpy")

# the public names, OP_NAMES among them (tests/test_ops_dispatch.py checks the two agree)
__all__ = [
    "ENV_VAR",
    "MAX_SIDE",
    "MAX_THREADS",
    "OP_NAMES",
    "SEGMENT_DTYPE",
    "THREADS_ENV_VAR",
    "all_finite",
    "core_available",
    "core_error",
    "impl",
    "implementation",
    "info",
    "letterbox",
    "linear_assignment",
    "make_tracker",
    "masks_to_boxes",
    "num_threads",
    "overlay",
    "panoptic_fuse",
    "prompt_masks",
    "rle_decode",
    "rle_encode",
    "set_num_threads",
    "use",
]

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------- configuration
def _env_choice() -> str:
    raw = os.environ.get(ENV_VAR, "")
    choice = raw.strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ConfigError(
            f"{ENV_VAR} must be auto, cpp or numpy, got {raw!r}",
            hint=f"unset {ENV_VAR} (auto: the C++ core when it loads) or set it to cpp or numpy",
        )
    return choice


# ---------------------------------------------------------------- loading the core
def _load_core() -> tuple[ModuleType | None, Exception | None]:
    """(the compiled core, None), or (None, why it cannot be used)."""
    try:
        from .. import _core
    except Exception as exc:  # noqa: BLE001 - a broken build can raise anything at import; kept as the reason
        if isinstance(exc.__cause__, ConfigError):  # its own RAPSAM_EDGE_THREADS check
            raise exc.__cause__ from None
        return None, exc
    version = getattr(_core, "__version__", None)
    if version != _PACKAGE_VERSION:
        return None, ImportError(
            f"stale build: rapsam_edge._core is version {version!r} but the package is "
            f"{_PACKAGE_VERSION!r}"
        )
    return _core, None


parse_threads(os.environ.get(THREADS_ENV_VAR))  # a bad value fails here, before the core
_CHOICE_FROM_ENV = _env_choice()
_CORE, _CORE_ERROR = _load_core()
_fallback_reported = False


def _error_text(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())  # one line


def _report_fallback() -> None:
    """Once per process: a CoreFallbackWarning and one WARNING log line."""
    global _fallback_reported
    if _fallback_reported or _CORE_ERROR is None:
        return
    _fallback_reported = True
    message = (
        f"the compiled C++ core (rapsam_edge._core) did not load ({_error_text(_CORE_ERROR)}); "
        "the ops run on the numpy twins, 20-100x slower. Fix: reinstall with `pip install .` "
        "(needs a C++17 compiler and CMake) so that the core matches the package; set "
        f"{ENV_VAR}=numpy to use the twins without this warning, {ENV_VAR}=cpp to make it an error"
    )
    _log.warning("%s", message)
    warnings.warn(message, CoreFallbackWarning, stacklevel=3)


def _unavailable(context: str) -> CoreUnavailableError:
    assert _CORE_ERROR is not None
    return CoreUnavailableError(
        f"{context}: rapsam_edge._core (the compiled C++ core) is not available "
        f"({_error_text(_CORE_ERROR)})"
    )


# ---------------------------------------------------------------- dispatch
_table: dict[str, Callable[..., Any]] = {}  # op name -> implementation in use
_kernels: dict[str, Callable[..., Any]] = {}  # op name -> its unchecked kernel in use
_active = "numpy"

_F = TypeVar("_F", bound=Callable[..., Any])


def _dispatcher(twin: _F) -> _F:
    """A stable public op: calls the implementation in use, with the twin's signature/doc."""
    name = twin.__name__

    @functools.wraps(twin)
    def op(*args: Any, **kwargs: Any) -> Any:
        return _table[name](*args, **kwargs)

    op.__module__ = __name__
    return cast(_F, op)


letterbox = _dispatcher(_numpy.letterbox)
panoptic_fuse = _dispatcher(_numpy.panoptic_fuse)
prompt_masks = _dispatcher(_numpy.prompt_masks)
masks_to_boxes = _dispatcher(_numpy.masks_to_boxes)
rle_encode = _dispatcher(_numpy.rle_encode)
rle_decode = _dispatcher(_numpy.rle_decode)
linear_assignment = _dispatcher(_numpy.linear_assignment)
overlay = _dispatcher(_numpy.overlay)


def core_available() -> bool:
    """True when the compiled C++ core was built, imports and matches the package version."""
    return _CORE is not None


def core_error() -> Exception | None:
    """Why the compiled core cannot be used (the original exception), None when it loaded."""
    return _CORE_ERROR


def implementation() -> str:
    """Name of the implementation the ops currently dispatch to: "cpp" or "numpy"."""
    return _active


def _compiled(core: ModuleType) -> SimpleNamespace:
    """The compiled core's ops behind the one set of argument checks."""
    return SimpleNamespace(
        **{
            op: _checks.checked(getattr(_checks, f"{op}_args"), getattr(core, op))
            for op in OP_NAMES
        }
    )


_COMPILED = _compiled(_CORE) if _CORE is not None else None


def impl(name: str) -> Any:
    """The ops of one implementation, each checking its arguments: "cpp" (the compiled core;
    CoreUnavailableError without one) or "numpy" (the twins module)."""
    if name == "numpy":
        return _numpy
    if name != "cpp":
        raise ConfigError(f"unknown ops implementation {name!r}; choose cpp or numpy")
    if _COMPILED is None:
        raise _unavailable('impl("cpp")') from _CORE_ERROR
    return _COMPILED


def use(name: str) -> None:
    """Dispatch every op to ``name``: "cpp", "numpy" or "auto" (the core when it loaded, else
    the numpy twins with the fallback warning). "cpp" without a core raises
    CoreUnavailableError chained to the original error; an unknown name raises ConfigError."""
    global _active, _table, _kernels
    choice = name.strip().lower() if isinstance(name, str) else name
    if choice not in _CHOICES:
        raise ConfigError(f"unknown ops implementation {name!r}; choose cpp, numpy or auto")
    if choice == "auto":
        choice = "cpp" if _CORE is not None else "numpy"
        if _CORE is None:
            _report_fallback()
    if choice == "cpp" and _CORE is None:
        raise _unavailable('use("cpp")') from _CORE_ERROR
    ops = _COMPILED if choice == "cpp" else _numpy
    if choice == "cpp" and _CORE is not None:
        _kernels = {op: getattr(_CORE, op) for op in OP_NAMES}
    else:
        _kernels = {op: getattr(_numpy, f"_{op}") for op in OP_NAMES}
    _table = {op: getattr(ops, op) for op in OP_NAMES}  # one atomic switch
    _active = choice
    # the NaN / inf scan of the checks: the core's threaded one when the core is in use
    _checks.use_finite_scan(_CORE.all_finite if choice == "cpp" and _CORE is not None else None)


def kernel(name: str) -> Callable[..., Any]:
    """Internal, for the package's own pipeline: op ``name``'s kernel in the implementation
    in use (the compiled core's function or the numpy twin's ``_numpy._<name>``), which does
    NOT check its arguments. A caller that already validated its arrays calls it so that
    they are not checked (and scanned for NaN / inf) a second time.

    The kernel takes every argument positionally (no defaults), normalised as
    ``_checks.<name>_args`` returns them: arrays of the op's dtype, C-contiguous and
    aligned, pairs as tuples (``letterbox``'s ``size`` as an ``(h, w)`` tuple), scalars as
    Python numbers, float logits already free of NaN and infinity (``all_finite``). Anything
    else is undefined behaviour of the numpy twin or a short InputError of the core's
    memory-safety guards; users call the checked ops (``rapsam_edge.ops.<name>``).

    Raises:
      KeyError: ``name`` is not in ``OP_NAMES``.
    """
    return _kernels[name]


def all_finite(a: Any) -> bool:
    """True when float32 array ``a`` holds no NaN and no infinity: the scan the ops' checks
    use (the compiled core's multi-threaded one while it is in use, else numpy's). For a
    caller that must treat non-finite logits before post-processing (the Segmenter
    saturates +/-inf) in one pass of its own."""
    return _checks._all_finite(np.ascontiguousarray(a, dtype=np.float32))


def make_tracker(
    match_threshold: float,
    class_change_penalty: float,
    birth_score: float,
    max_missed: int,
    momentum: float,
) -> _tracker.CheckedTracker:
    """A new online tracker of the implementation in use (the compiled core's
    ``OnlineTracker`` or its numpy twin ``ops._tracker.OnlineTracker``) behind the one set of
    argument checks (``ops._tracker.CheckedTracker``): ``update(embeddings N x D, classes N,
    scores N) -> N int32 ids`` (arrays or lists), ``reset()``, ``tracks``, ``live_tracks``,
    ``tracks_started``, ``frame_index``.

    Settings: ``match_threshold`` a cosine similarity in [-1, 1], ``class_change_penalty`` >= 0,
    ``birth_score`` and ``momentum`` in [0, 1] (all finite), ``max_missed`` an integer >= 0.

    Raises:
      InputError: a bad setting (named), here; bad ``update`` arguments, named, at the call.
    """
    args = _checks.tracker_args(
        match_threshold, class_change_penalty, birth_score, max_missed, momentum
    )
    cls = _CORE.OnlineTracker if _active == "cpp" and _CORE is not None else _tracker.OnlineTracker
    return _tracker.CheckedTracker(cls(*args))


def num_threads() -> int:
    """Threads a large op uses, the calling thread included: with the compiled core its
    setting (``set_num_threads``, else ``RAPSAM_EDGE_THREADS``, else the cores this process may
    use); with the numpy twins 1, since they are single-threaded."""
    if _active == "cpp" and _CORE is not None:
        return int(_CORE.get_num_threads())
    return 1


def set_num_threads(n: int) -> None:
    """Run the compiled core's ops on ``n`` threads (1 to ``MAX_THREADS``) from now on. Small calls still
    run on the calling thread alone; results do not depend on ``n``. Also applies while the
    numpy twins are in use (to the core, for a later ``use("cpp")``); without a core it only
    checks ``n``. Bad ``n``: InputError."""
    n = check_int(n, "n", 1, MAX_THREADS)
    if _CORE is not None:
        _CORE.set_num_threads(n)


def info() -> dict[str, Any]:
    """What runs the ops and why, for ``rapsam-edge info``: implementation, package and core
    versions, threads (as ``num_threads()``), usable cores, the env settings, core_error
    (one line, or None) and the core's compiler, arch, compile-time SIMD and flags (None
    without a core)."""
    build: dict[str, Any] = _CORE.build_info() if _CORE is not None else {}
    return {
        "implementation": _active,
        "package_version": _PACKAGE_VERSION,
        "core_version": _CORE.__version__ if _CORE is not None else None,
        "threads": num_threads(),
        "core_threads": int(_CORE.get_num_threads()) if _CORE is not None else None,
        "cores": int(build["cores"]) if build else usable_cores(),
        ENV_VAR: os.environ.get(ENV_VAR),
        THREADS_ENV_VAR: os.environ.get(THREADS_ENV_VAR),
        "core_error": None if _CORE_ERROR is None else _error_text(_CORE_ERROR),
        "compiler": build.get("compiler"),
        "arch": build.get("arch"),
        "simd": build.get("simd"),
        "build_type": build.get("build_type"),
        "cxx_flags": build.get("cxx_flags"),
    }


# ---------------------------------------------------------------- initial selection
if _CHOICE_FROM_ENV == "cpp" and _CORE is None:
    raise _unavailable(f"{ENV_VAR}=cpp") from _CORE_ERROR
use(_CHOICE_FROM_ENV)
