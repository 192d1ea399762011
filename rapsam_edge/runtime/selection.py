"""The one backend selection policy, used by ``create_backend(..., "auto")`` and
``Segmenter(backend="auto")`` alike.

``auto``: when an NVIDIA GPU backend is usable, the first by rank (TensorRT > ORT-TensorRT >
ORT-CUDA) for every graph. Otherwise the usable CPU backends (OpenVINO, ONNX Runtime) are
created with the threading they will run with and timed on the bundle **as the Segmenter
runs them**: encoder, then panoptic decoder, then prompt decoder, one after another on the
encoder's real output, round-robin over the candidates so that load hits all alike; the
fastest per graph (best of ``repeats``) is kept and the others are closed. One candidate
is taken without timing. ``fastest``: the same timing over every usable backend, GPU ones
included.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..contract.graphs import GRAPH_NAMES
from ..errors import BackendUnavailable, ConfigError
from .base import Backend, example_feeds
from .registry import BACKENDS, SELECTION_POLICIES, available_backends, backend_class

__all__ = ["Selection", "select_backends"]

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """The outcome: ``backends`` graph -> backend; ``timings`` graph -> {candidate: best ms}
    (empty when nothing was timed); ``reason`` one line per graph (also each backend's
    ``selection``)."""

    backends: dict[str, Backend]
    timings: dict[str, dict[str, float]] = field(default_factory=dict)


def _options_for(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Under a policy the caller cannot know which backend it gets: drop the options the
    candidate's ``_open`` does not take (logged), instead of failing."""
    params = inspect.signature(backend_class(name)._open).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    kept = {k: v for k, v in options.items() if k in params}
    dropped = sorted(set(options) - set(kept))
    if dropped:
        log.info("%s does not take options %s; ignored for it", name, dropped)
    return kept


def select_backends(
    bundle: Bundle,
    graphs: Sequence[str] | None = None,
    *,
    policy: str = "auto",
    device: str | None = None,
    options: Mapping[str, Any] | None = None,
    repeats: int = 5,
) -> Selection:
    """Pick and create one backend per graph by ``policy`` ("auto" or "fastest").

    Arguments:
      bundle: the loaded bundle.
      graphs: the graphs to create (default: all the bundle has), run in contract order.
      device: passed to every candidate.
      options: backend options (each candidate gets those it takes).
      repeats: timed pipeline runs per candidate.
    Raises:
      ConfigError: unknown policy. BackendUnavailable: no backend can run here.
    """
    if policy not in SELECTION_POLICIES:
        raise ConfigError(f"unknown selection policy {policy!r}; known {list(SELECTION_POLICIES)}")
    graphs = [g for g in GRAPH_NAMES if g in (bundle.graphs if graphs is None else graphs)]
    options = dict(options or {})
    usable = [n for n in available_backends(bundle, device=device) if BACKENDS[n].rank is not None]
    usable = [n for n in usable if all(n in available_backends(bundle, g, device) for g in graphs)]
    if not usable:
        raise BackendUnavailable(
            f"no runtime backend can run bundle {bundle.name!r} here",
            hint="pip install onnxruntime (or openvino); `rapsam-edge info` says why each is unusable",
        )
    gpu = [n for n in usable if BACKENDS[n].gpu]
    if policy == "auto" and gpu:
        chosen = {g: _create(gpu[0], bundle, g, device, options) for g in graphs}
        return _finish(chosen, {}, f"auto: {gpu[0]} (GPU, first by rank of {gpu})")
    candidates = usable if policy == "fastest" else [n for n in usable if not BACKENDS[n].gpu]
    if len(candidates) == 1:
        chosen = {g: _create(candidates[0], bundle, g, device, options) for g in graphs}
        return _finish(chosen, {}, f"{policy}: {candidates[0]} (the only usable backend)")
    runners = {n: {g: _create(n, bundle, g, device, options) for g in graphs} for n in candidates}
    timings = _time_pipelines(bundle, runners, graphs, repeats)
    chosen = {}
    for g in graphs:
        best = min(timings[g], key=timings[g].get)
        chosen[g] = runners[best][g]
        for n in candidates:
            if n != best:
                runners[n][g].close()
    return _finish(chosen, timings, f"{policy}: fastest of {candidates} timed in pipeline order")


def _create(
    name: str, bundle: Bundle, graph: str, device: str | None, options: Mapping[str, Any]
) -> Backend:
    return backend_class(name)(bundle, graph, device, **_options_for(name, options))


def _time_pipelines(
    bundle: Bundle, runners: dict[str, dict[str, Backend]], graphs: Sequence[str], repeats: int
) -> dict[str, dict[str, float]]:
    side, stride = bundle.input.long_side, bundle.feat_stride
    samples: dict[str, dict[str, list[float]]] = {g: {n: [] for n in runners} for g in graphs}
    # Two warm-up rounds (allocations, compilation; the second makes OpenVINO compile its
    # static copies, see runtime.openvino), then settle: the timed rounds see each backend
    # as it will serve, with no compile thread competing for the cores.
    warmup = 2
    for it in range(repeats + warmup):
        if it == warmup:
            for by_graph in runners.values():
                for backend in by_graph.values():
                    backend.settle()
        for name, by_graph in runners.items():
            feats = None
            for g in graphs:
                backend = by_graph[g]
                feeds = example_feeds(backend.info, long_side=side, stride=stride)
                if feats is not None and "feats" in [t.role for t in backend.info.inputs]:
                    feeds[backend.name_of("feats")] = feats
                t0 = time.perf_counter()
                out = backend.run(feeds)
                if it >= warmup:
                    samples[g][name].append((time.perf_counter() - t0) * 1e3)
                if g == "encoder":
                    feats = np.asarray(out[backend.name_of("feats")])
    return {g: {n: min(v) for n, v in by_name.items()} for g, by_name in samples.items()}


def _finish(
    chosen: dict[str, Backend], timings: dict[str, dict[str, float]], how: str
) -> Selection:
    for g, backend in chosen.items():
        detail = (
            f" {', '.join(f'{n} {ms:.2f} ms' for n, ms in timings[g].items())}"
            if g in timings
            else ""
        )
        backend.selection = f"{how}: {backend.name} on {backend.device} for {g}{detail}"
        log.info("%s", backend.selection)
    return Selection(chosen, timings)
