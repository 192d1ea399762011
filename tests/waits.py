"""Waiting in tests without hanging them: ``bounded`` runs a call in a daemon thread and
fails the test when it has not finished in time (a hang), whatever the call does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def bounded(fn: Callable[[], Any], limit: float) -> Any:
    """fn() in a daemon thread: its result, or its exception re-raised; fails the test when
    it has not finished within ``limit`` s (a hang)."""
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            out["error"] = exc

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"still running after {limit} s: a hang"
    if "error" in out:
        raise out["error"]
    return out["value"]
