"""How many threads the SDK's compute uses, per process: ``RAPSAM_EDGE_THREADS`` if set,
else the cores this process may run on, at most ``MAX_THREADS``.

ONE rule, which the C++ core follows too (``rapsam::parse_num_threads`` in
``csrc/parallel.cpp``; ``tests/test_single_source.py`` feeds both the same strings):
the value, stripped of ASCII spaces, tabs, CR and LF, is unset when empty, else must be 1 to 4
ASCII digits giving an integer in [1, MAX_THREADS]; anything else is a ``ConfigError``.
"""

from __future__ import annotations

import os

from ..errors import ConfigError
from .shared import MAX_THREADS, THREADS_ENV_VAR

__all__ = ["default_threads", "parse_threads", "usable_cores"]

_SPACE = " \t\n\r"


def parse_threads(raw: str | None) -> int | None:
    """``RAPSAM_EDGE_THREADS``'s value -> a thread count, or None when unset / blank.

    Raises:
      ConfigError: not an integer in [1, MAX_THREADS].
    """
    value = (raw or "").strip(_SPACE)
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 4) or not (
        1 <= int(value) <= MAX_THREADS
    ):
        raise ConfigError(
            f"{THREADS_ENV_VAR} must be an integer in [1, {MAX_THREADS}], got {raw!r}",
            hint=f"unset {THREADS_ENV_VAR} to use every core this process may run on",
        )
    return int(value)


def usable_cores() -> int:
    """Cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` where
    that does not exist), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def default_threads() -> int:
    """Threads for one graph / op at a time: ``RAPSAM_EDGE_THREADS`` if set, else
    ``min(usable_cores(), MAX_THREADS)``.

    Raises:
      ConfigError: ``RAPSAM_EDGE_THREADS`` is set but breaks the rule above.
    """
    parsed = parse_threads(os.environ.get(THREADS_ENV_VAR))
    return parsed if parsed is not None else min(usable_cores(), MAX_THREADS)
