"""Latency statistics of one stage: percentiles the way the profiler reports them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["STAT_KEYS", "summarize"]

#: the statistics every stage reports, in milliseconds (plus the sample count ``n``)
STAT_KEYS = ("p50", "p90", "p99", "mean", "max")


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 (linear interpolation, numpy's default), mean and max of
    ``samples_ms`` (milliseconds), and ``n``. An empty sequence gives NaNs and n = 0."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        return {**dict.fromkeys(STAT_KEYS, float("nan")), "n": 0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(a.mean()),
        "max": float(a.max()),
        "n": int(a.size),
    }
