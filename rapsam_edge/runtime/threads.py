"""How many threads the SDK's compute uses, per process: ``RAPSAM_EDGE_THREADS`` if set,
else the cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count()`` where
that does not exist). The C++ core reads the same variable."""

from __future__ import annotations

import os

from ..errors import ConfigError

__all__ = ["ENV_VAR", "default_threads"]

ENV_VAR = "RAPSAM_EDGE_THREADS"


def default_threads() -> int:
    """Threads for one graph / op at a time (>= 1).

    Raises:
      ConfigError: ``RAPSAM_EDGE_THREADS`` is set but not a positive integer.
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"{ENV_VAR}={raw!r}: expected a positive integer")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
