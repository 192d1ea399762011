"""Per-stage latency statistics (p50 / p90 / p99) for the CLI reports."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class StageTimes:
    """Collects milliseconds per named stage; ``summary()`` gives percentiles."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def add(self, timings: dict[str, float]) -> None:
        """Record one sample per stage: ``timings`` stage name -> milliseconds."""
        for stage, ms in timings.items():
            self.samples[stage].append(float(ms))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage: ``n`` (samples) and ``mean_ms``, ``p50_ms``, ``p90_ms``, ``p99_ms``
        (milliseconds), in the order the stages were first added."""
        out = {}
        for stage, values in self.samples.items():
            v = np.asarray(values)
            out[stage] = {
                "n": int(v.size),
                "mean_ms": float(v.mean()),
                "p50_ms": float(np.percentile(v, 50)),
                "p90_ms": float(np.percentile(v, 90)),
                "p99_ms": float(np.percentile(v, 99)),
            }
        return out

    def table(self) -> str:
        """``summary()`` as a fixed-width text table, one line per stage."""
        summary = self.summary()
        w = max([14, *map(len, summary)])  # a long stage name widens the column
        lines = [
            f"{'stage':{w}s} {'n':>5s} {'p50 ms':>9s} {'p90 ms':>9s} {'p99 ms':>9s} {'mean ms':>9s}"
        ]
        for stage, s in summary.items():
            lines.append(
                f"{stage:{w}s} {s['n']:5d} {s['p50_ms']:9.2f} {s['p90_ms']:9.2f} "
                f"{s['p99_ms']:9.2f} {s['mean_ms']:9.2f}"
            )
        return "\n".join(lines)
