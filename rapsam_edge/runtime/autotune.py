"""``backend="fastest"``: time every available backend on every graph of a bundle with
representative inputs and keep the fastest per graph. On small CPUs the best backend differs
between graphs (a large encoder favours one runtime, a tiny prompt decoder the one with the
lowest per-call overhead)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from .base import Backend

log = logging.getLogger(__name__)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (first-call allocations, lazy compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def fastest_backends(bundle, device: str | None = None, *, repeats: int = 5
                     ) -> tuple[dict[str, Backend], dict[str, dict[str, float]]]:  # fmt: skip
    """-> (graph -> fastest backend instance, graph -> {backend name: median ms})."""
    from .registry import available_backends, create_backend

    names = [n for n in available_backends(bundle, device=device) if n != "torch"]
    if not names:
        raise RuntimeError("no runtime backend is available for this bundle")
    side = bundle.input.long_side
    image = np.zeros((1, side, side, 3), dtype=np.uint8)
    boxes = np.array([[[side * 0.25, side * 0.25, side * 0.5, side * 0.5]]], dtype=np.float32)
    timings: dict[str, dict[str, float]] = {}
    best: dict[str, tuple[float, Backend]] = {}
    for name in names:
        runners = {g: create_backend(bundle, g, name, device=device) for g in bundle.graphs}
        feeds = {
            "encoder": {"image": image},
            "panoptic_decoder": {"feats": runners["encoder"].run({"image": image})["feats"]},
        }
        feeds["prompt_decoder"] = {**feeds["panoptic_decoder"], "boxes": boxes}
        calls = {g: (lambda r=runners[g], f=feeds[g]: r.run(f)) for g in feeds}
        for graph, call in calls.items():
            ms = _median_ms(call, repeats)
            timings.setdefault(graph, {})[name] = ms
            if graph not in best or ms < best[graph][0]:
                best[graph] = (ms, runners[graph])
    chosen = {g: b for g, (_, b) in best.items()}
    for graph, backend in chosen.items():
        backend.selection = f"fastest of {timings[graph]} (ms) for {graph}"
        log.info("fastest backend for %s: %s %s", graph, backend.name, timings[graph])
    return chosen, timings
