"""``backend="fastest"``: time every available backend on every graph of a bundle with
representative inputs and keep the fastest per graph. On small CPUs the best backend differs
between graphs (a large encoder favours one runtime, a tiny prompt decoder the one with the
lowest per-call overhead)."""

from __future__ import annotations

import logging
import time

import numpy as np

from .base import Backend

log = logging.getLogger(__name__)


def fastest_backends(
    bundle, device: str | None = None, *, repeats: int = 7
) -> tuple[dict[str, Backend], dict[str, dict[str, float]]]:
    """-> (graph -> fastest backend instance, graph -> {backend name: best-of-``repeats`` ms})."""
    from .registry import available_backends, create_backend

    names = [n for n in available_backends(bundle, device=device) if n != "torch"]
    if not names:
        raise RuntimeError("no runtime backend is available for this bundle")
    side = bundle.input.long_side
    image = np.zeros((1, side, side, 3), dtype=np.uint8)
    boxes = np.array([[[side * 0.25, side * 0.25, side * 0.5, side * 0.5]]], dtype=np.float32)
    runners = {
        n: {g: create_backend(bundle, g, n, device=device) for g in bundle.graphs} for n in names
    }
    feats = runners[names[0]]["encoder"].run({"image": image})["feats"]
    feeds = {
        "encoder": {"image": image},
        "panoptic_decoder": {"feats": feats},
        "prompt_decoder": {"feats": feats, "boxes": boxes},
    }
    # round-robin over the backends (load hits all alike); the minimum estimates the
    # uncontended time, which is what is compared
    timings: dict[str, dict[str, float]] = {}
    best: dict[str, tuple[float, Backend]] = {}
    for graph, feed in feeds.items():
        for name in names:
            runners[name][graph].run(feed)  # warm-up (first-call allocations, compilation)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(repeats):
            for name in names:
                t0 = time.perf_counter()
                runners[name][graph].run(feed)
                samples[name].append((time.perf_counter() - t0) * 1e3)
        timings[graph] = {name: min(v) for name, v in samples.items()}
        name = min(timings[graph], key=timings[graph].get)
        best[graph] = (timings[graph][name], runners[name][graph])
    chosen = {g: b for g, (_, b) in best.items()}
    for graph, backend in chosen.items():
        backend.selection = f"fastest of {timings[graph]} (best ms) for {graph}"
        log.info("fastest backend for %s: %s %s", graph, backend.name, timings[graph])
    return chosen, timings
