"""Creating backends: by name (``create_backend``), per graph from a name or a mapping
(``create_backends``, what ``Segmenter`` calls), and by the one selection policy
(``select_backends``), which ``create_backend(..., "auto")`` and ``Segmenter(backend="auto")``
use alike. It reads the backend table in ``runtime.registry``.

``auto``: when an NVIDIA GPU backend is usable, the first by rank (TensorRT > ORT-TensorRT >
ORT-CUDA) for every graph. Otherwise the usable CPU backends (OpenVINO, ONNX Runtime) are
created with the threading they will run with and timed on the bundle **as the Segmenter
runs them**: encoder, then panoptic decoder, then prompt decoder, one after another on the
encoder's real output, round-robin over the candidates so that load hits all alike; the
fastest per graph (best of ``repeats``) is kept and the others are closed. One candidate
is taken without timing. ``fastest``: the same timing over every usable backend, GPU ones
included. Options a candidate does not take are dropped for it with a WARNING that names
them and the backend (the caller asked for them, so the drop is never silent).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle, load_bundle
from ..contract.graphs import ENCODER, GRAPH_NAMES
from ..errors import BackendUnavailable, BundleError, ConfigError
from .base import Backend, check_device, example_feeds
from .registry import (
    BACKENDS,
    SELECTION_POLICIES,
    available_backends,
    backend_class,
    bundle_reason,
    canonical_name,
    unavailable_reason,
)

__all__ = [
    "Selection",
    "backend_name",
    "create_backend",
    "create_backends",
    "select_backends",
]

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """The outcome: ``backends`` graph -> backend; ``timings`` graph -> {candidate: best ms}
    (empty when nothing was timed); ``reason`` one line per graph (also each backend's
    ``selection``)."""

    backends: dict[str, Backend]
    timings: dict[str, dict[str, float]] = field(default_factory=dict)


def _open_params(name: str) -> list[str] | None:
    """The options backend ``name``'s ``_open`` takes (None: any, it has ``**options``)."""
    params = inspect.signature(backend_class(name)._open).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [p for p in params if p not in ("self", "bundle", "device")]


def _check_options(options: Mapping[str, Any]) -> None:
    """Refuse an option that no backend a policy may pick takes (a typo would otherwise be
    dropped for every candidate).

    Raises:
      ConfigError: naming the option and the options those backends take."""
    known: set[str] = set()
    for name in (n for n, entry in BACKENDS.items() if entry.rank is not None):
        params = _open_params(name)
        if params is None:
            return
        known.update(params)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"no backend takes the option(s) {unknown}",
            hint=f"backend options: {', '.join(sorted(known))}",
        )


def _options_for(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Under a policy the caller cannot know which backend it gets: the options the
    candidate's ``_open`` does not take are dropped for it, with a WARNING naming each
    dropped option and the backend (an option meant for another backend, e.g.
    ``intra_op_threads`` of ONNX Runtime when OpenVINO is picked, is not an error; an
    option no backend takes is, see ``_check_options``)."""
    params = _open_params(name)
    if params is None:
        return dict(options)
    kept = {k: v for k, v in options.items() if k in params}
    dropped = sorted(set(options) - set(kept))
    if dropped:
        log.warning(
            "backend %s does not take the option(s) %s: dropped for it (it takes %s)",
            name,
            ", ".join(f"{k}={options[k]!r}" for k in dropped),
            ", ".join(params) or "none",
        )
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
      ConfigError: unknown policy, or an option no backend takes. BackendUnavailable: no
        backend can run here.
    """
    if policy not in SELECTION_POLICIES:
        raise ConfigError(f"unknown selection policy {policy!r}; known {list(SELECTION_POLICIES)}")
    graphs = [g for g in GRAPH_NAMES if g in (bundle.graphs if graphs is None else graphs)]
    check_device(device)
    options = dict(options or {})
    _check_options(options)
    usable = [n for n in available_backends(bundle, device=device) if BACKENDS[n].rank is not None]
    usable = [n for n in usable if all(n in available_backends(bundle, g, device) for g in graphs)]
    if not usable:
        raise _no_backend(bundle, graphs, device)
    gpu = [n for n in usable if BACKENDS[n].gpu]
    if policy == "auto" and gpu:
        kept = _options_for(gpu[0], options)  # once per backend: one WARNING, not one per graph
        chosen = {g: _create(gpu[0], bundle, g, device, kept) for g in graphs}
        return _finish(chosen, {}, f"auto: {gpu[0]} (GPU, first by rank of {gpu})")
    candidates = usable if policy == "fastest" else [n for n in usable if not BACKENDS[n].gpu]
    per = {n: _options_for(n, options) for n in candidates}
    if len(candidates) == 1:
        chosen = {g: _create(candidates[0], bundle, g, device, per[candidates[0]]) for g in graphs}
        return _finish(chosen, {}, f"{policy}: {candidates[0]} (the only usable backend)")
    runners = {n: {g: _create(n, bundle, g, device, per[n]) for g in graphs} for n in candidates}
    timings = _time_pipelines(bundle, runners, graphs, repeats)
    chosen = {}
    for g in graphs:
        best = min(timings[g], key=lambda n: timings[g][n])
        chosen[g] = runners[best][g]
        for n in candidates:
            if n != best:
                runners[n][g].close()
    return _finish(chosen, timings, f"{policy}: fastest of {candidates} timed in pipeline order")


def _no_backend(bundle: Bundle, graphs: Sequence[str], device: str | None) -> BackendUnavailable:
    """The error when no policy-pickable backend can run ``graphs`` of ``bundle`` on
    ``device``, with the hint that fits: the devices the backends have (a device was asked
    for, and some backend runs here on its default), else the install lines of the CPU
    backends that read this bundle's graph files (an IR-only bundle: OpenVINO's)."""
    ranked = [n for n, e in BACKENDS.items() if e.rank is not None]

    def runs(n: str, dev: str | None) -> bool:
        return all(unavailable_reason(n, bundle, g, dev) is None for g in graphs)

    if device is not None and (here := [n for n in ranked if runs(n, None)]):
        have = "; ".join(f"{n}: {', '.join(backend_class(n).devices() or ['?'])}" for n in here)
        return BackendUnavailable(
            f"no runtime backend can run bundle {bundle.name!r} on device {device!r} (devices "
            f"here: {have})",
            hint="pass one of those devices as device, or None for each backend's default",
        )
    readers = [
        n
        for n in ranked
        if not BACKENDS[n].gpu and all(bundle_reason(n, bundle, g) is None for g in graphs)
    ]
    hints = list(dict.fromkeys(backend_class(n).install_hint or BACKENDS[n].needs for n in readers))
    why = "; ".join(
        f"{n}: {unavailable_reason(n, bundle, graphs[0] if graphs else None, device)}"
        for n in readers
    )
    return BackendUnavailable(
        f"no runtime backend can run bundle {bundle.name!r} here"
        + (f" ({why})" if why else ": no CPU backend reads its graph files"),
        hint=" or ".join(hints) if hints else "re-export the bundle (`rapsam-edge export`)",
    )


def _create(
    name: str, bundle: Bundle, graph: str, device: str | None, options: Mapping[str, Any]
) -> Backend:
    """Backend ``name`` for ``graph`` with ``options`` (already cut to what it takes)."""
    return backend_class(name)(bundle, graph, device, **options)


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
                if g == ENCODER:
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


def create_backend(
    bundle: Bundle | str | Path | None,
    graph: str,
    name: str = "auto",
    device: str | None = None,
    **options: Any,
) -> Backend:
    """Create backend ``name`` for ``graph`` of ``bundle``.

    Arguments:
      bundle: a ``Bundle``, a bundle directory, a shipped bundle's name or None (default).
      graph: one of ``contract.graphs.GRAPH_NAMES`` (e.g. ``ENCODER``).
      name: a backend name (``registry.BACKENDS`` or ``ALIASES``), or a policy ("auto",
        "fastest"; see ``select_backends``).
      device: the backend's device (None = its default).
      options: go to the backend's ``_open`` (e.g. ``intra_op_threads`` for ORT,
        ``num_threads`` for OpenVINO, ``precision`` for TensorRT); under a policy, options a
        candidate does not take are dropped for it (a WARNING names them).
    Returns:
      the backend; its ``selection`` says how it was chosen.
    Raises:
      ConfigError: unknown backend name or option (the options the backend takes are
        the hint), a device that is not a str. BundleError: no such graph.
      BackendUnavailable: the backend cannot run here (the hint: the devices it has, or
        how to install it).
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if graph not in bundle.graphs:
        raise BundleError(
            f"bundle {bundle.name!r} has no graph {graph!r}; it has {sorted(bundle.graphs)}"
        )
    name = canonical_name(name)
    check_device(device)
    if name in SELECTION_POLICIES:
        return select_backends(
            bundle, (graph,), policy=name, device=device, options=options
        ).backends[graph]
    reason = unavailable_reason(name, bundle, graph, device)
    if reason is not None:
        raise BackendUnavailable(
            f"{name}: {reason}", hint=_unavailable_hint(name, bundle, graph, device)
        )
    params = _open_params(name)
    unknown = [] if params is None else sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"backend {name} does not take the option(s) {unknown}",
            hint=f"{name} options: {', '.join(params or []) or 'none'}",
        )
    return backend_class(name)(bundle, graph, device, **options)


def _unavailable_hint(name: str, bundle: Bundle, graph: str, device: str | None) -> str:
    """What to do when backend ``name`` cannot run ``graph`` here: another backend or a
    re-export (the bundle lacks its file format), the devices it has (it lacks
    ``device``), else how to install what it needs."""
    needs = f"needs {BACKENDS[name].needs}"
    if bundle_reason(name, bundle, graph) is not None:
        return f"pick a backend that reads this bundle's graph files (`rapsam-edge info`); {name} {needs}"
    try:
        cls = backend_class(name)
    except ImportError:  # the reason says its module cannot be imported
        return needs
    hint = cls.unavailable_hint(device)
    if hint is not None and hint != cls.install_hint:
        return hint
    return needs + (f": {hint}" if hint else "")


def create_backends(
    bundle: Bundle, backend: Any, device: str | None, options: Mapping[str, Any]
) -> Selection:
    """One backend per graph of the contract, for ``Segmenter``.

    Arguments:
      backend: a backend name or policy for every graph, or a mapping graph -> backend name.
    Raises:
      ConfigError: a mapping that does not name exactly the contract's graphs, or that
        names a policy; unknown names. BackendUnavailable: see ``create_backend``.
    """
    if isinstance(backend, Mapping):
        if set(backend) != set(GRAPH_NAMES):
            raise ConfigError(
                f"a backend mapping needs exactly the graphs {list(GRAPH_NAMES)}, "
                f"got {sorted(backend)}"
            )
        names = {g: canonical_name(backend[g]) for g in GRAPH_NAMES}
    else:
        names = dict.fromkeys(GRAPH_NAMES, canonical_name(backend))
    policies = {n for n in names.values() if n in SELECTION_POLICIES}
    if policies and len(set(names.values())) > 1:
        raise ConfigError("a backend mapping takes backend names, not 'auto' / 'fastest'")
    if policies:
        return select_backends(
            bundle, GRAPH_NAMES, policy=policies.pop(), device=device, options=options
        )
    return Selection(
        {g: create_backend(bundle, g, names[g], device=device, **options) for g in GRAPH_NAMES}
    )


def backend_name(graphs: Mapping[str, Backend]) -> str:
    """One name, or "encoder=..., panoptic_decoder=..., prompt_decoder=..." when they differ."""
    used = [graphs[g].name for g in GRAPH_NAMES]
    if len(set(used)) == 1:
        return used[0]
    return ", ".join(f"{g}={n}" for g, n in zip(GRAPH_NAMES, used))
