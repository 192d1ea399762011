"""Recordings left open: a ``Recorder`` / ``RerunView`` that is garbage-collected or still open
when the interpreter exits (a script without ``close()``, a KeyboardInterrupt outside
``with``) is finished and moved to its path, with a ``ResourceWarning`` and a logged WARNING
saying so, instead of leaving nothing. A process killed outright (SIGKILL, power loss) runs
no Python code: what it leaves is the temporary file beside the path (``record.py``)."""

from __future__ import annotations

import atexit
import logging
import warnings
import weakref
from typing import Any, Protocol

__all__ = ["finish_unclosed", "track", "untrack"]

log = logging.getLogger("rapsam_edge.ros")


class _Closable(Protocol):
    def close(self) -> Any: ...


_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()
_registered = False


def track(obj: _Closable) -> None:
    """Finish ``obj`` at interpreter exit if it is still open then."""
    global _registered
    if not _registered:
        atexit.register(_close_all)
        _registered = True
    _OPEN.add(obj)


def untrack(obj: object) -> None:
    _OPEN.discard(obj)


def finish_unclosed(obj: _Closable, what: str, why: str) -> None:
    """Close ``obj`` (its frames so far kept), warning that the caller did not; a failure is
    logged, not raised (this runs from a finalizer or ``atexit``)."""
    untrack(obj)
    message = (
        f"{what} was never closed ({why}): closing it now so the frames written are kept; "
        "call close() or use `with`"
    )
    warnings.warn(message, ResourceWarning, stacklevel=2)
    log.warning("%s", message)
    try:
        obj.close()
    except Exception as e:  # noqa: BLE001 - a finalizer must not raise
        log.warning("closing %s failed: %s", what, e)


def _close_all() -> None:
    for obj in list(_OPEN):
        obj._finish_unclosed("the interpreter is exiting")
