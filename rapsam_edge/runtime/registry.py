"""The one table of runtime backends, and how ``"auto"`` picks one.

``create_backend(bundle, graph, name="auto")`` tries the backends in speed-rank order
(TensorRT > ORT-TensorRT > ORT-CUDA > OpenVINO > ORT-CPU) and returns the first that is
available here; the returned backend carries ``selection`` (a one-line account of the
choice, also logged at INFO). The torch reference backend is never auto-picked.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import Bundle, load_bundle
from .base import Backend

__all__ = [
    "BACKENDS",
    "BackendEntry",
    "available_backends",
    "backend_class",
    "create_backend",
    "unavailable_reasons",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendEntry:
    module: str
    cls: str
    needs: str  # what it needs, for messages and docs
    rank: int | None  # auto-pick order, lower first; None = never auto-picked
    bundle_format: str  # the graph file format it reads


BACKENDS: dict[str, BackendEntry] = {
    #                          module                            class                  needs                                                rank  reads
    "tensorrt": BackendEntry(
        "rapsam_edge.runtime.tensorrt",
        "TensorRTBackend",
        "tensorrt>=10 + cuda-python + an NVIDIA GPU",
        0,
        "onnx",
    ),
    "ort-tensorrt": BackendEntry(
        "rapsam_edge.runtime.ort",
        "OrtTensorrtBackend",
        "onnxruntime-gpu with TensorRT EP + an NVIDIA GPU",
        1,
        "onnx",
    ),
    "ort-cuda": BackendEntry(
        "rapsam_edge.runtime.ort", "OrtCudaBackend", "onnxruntime-gpu + an NVIDIA GPU", 2, "onnx"
    ),
    "openvino": BackendEntry(
        "rapsam_edge.runtime.openvino",
        "OpenVINOBackend",
        "openvino (CPU / Intel GPU / NPU)",
        3,
        "openvino",
    ),
    "ort-cpu": BackendEntry("rapsam_edge.runtime.ort", "OrtBackend", "onnxruntime", 4, "onnx"),
    "torch": BackendEntry(
        "rapsam_edge.runtime.torch_ref",
        "TorchBackend",
        "torch + safetensors + model.safetensors in bundle",
        None,
        "weights",
    ),
}

#: backends that need an NVIDIA GPU; where one is available "auto" takes it by rank, else the
#: CPU backends are timed on the bundle (``Segmenter(backend="auto")``)
GPU_BACKENDS: tuple[str, ...] = ("tensorrt", "ort-tensorrt", "ort-cuda")

#: other accepted spellings of backend names
ALIASES: dict[str, str] = {"onnxruntime": "ort-cpu", "ort": "ort-cpu", "trt": "tensorrt"}


def _check_name(name: str) -> BackendEntry:
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}; known backends: {', '.join(['auto', *BACKENDS, *ALIASES])}"
        )
    return BACKENDS[name]


def backend_class(name: str) -> type:
    """Import and return the class of backend ``name`` (ValueError for unknown names)."""
    entry = _check_name(name)
    return getattr(importlib.import_module(entry.module), entry.cls)


def _reason(name: str, bundle: Bundle | None, graph: str | None, device: str | None) -> str | None:
    entry = BACKENDS[name]
    try:
        cls = backend_class(name)
    except ImportError as e:  # the module itself imports only lazily; be safe anyway
        return f"cannot import {entry.module}: {e}"
    if bundle is not None:
        if entry.bundle_format == "weights":
            if bundle.weights is None:
                return "the bundle ships no model.safetensors"
        elif entry.bundle_format == "openvino":
            if graph is not None and not (
                bundle.has(graph, "openvino") or bundle.has(graph, "onnx")
            ):
                return f"the bundle has neither IR nor ONNX for {graph}"
        elif graph is not None and not bundle.has(graph, entry.bundle_format):
            return f"the bundle has no {entry.bundle_format} file for {graph}"
    try:
        return cls.unavailable_reason(device)
    except Exception as e:  # a broken driver stack must not break auto-selection
        return f"probe failed: {type(e).__name__}: {e}"


def unavailable_reasons(
    bundle: Bundle | None = None, graph: str | None = None, device: str | None = None
) -> dict[str, str | None]:
    """name -> None (available) or why not, for every backend in the table."""
    return {name: _reason(name, bundle, graph, device) for name in BACKENDS}


def available_backends(
    bundle: Bundle | None = None, graph: str | None = None, device: str | None = None
) -> list[str]:
    """Names of the backends usable here (and for ``bundle``/``graph`` if given), fastest
    first; the never-auto ones (torch) last."""
    reasons = unavailable_reasons(bundle, graph, device)
    names = [n for n, r in reasons.items() if r is None]
    return sorted(names, key=lambda n: (BACKENDS[n].rank is None, BACKENDS[n].rank or 0))


def create_backend(
    bundle: Bundle | str | Path,
    graph: str,
    name: str = "auto",
    device: str | None = None,
    **options: Any,
) -> Backend:
    """Create the backend ``name`` (or the fastest available for ``"auto"``) for ``graph``.

    ``options`` go to the backend's constructor (e.g. ``intra_op_threads`` for ORT,
    ``num_threads`` for OpenVINO, ``precision`` for TensorRT). The result has a
    ``selection`` attribute describing how it was chosen.
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if graph not in bundle.graphs:
        raise KeyError(
            f"bundle {bundle.name!r} has no graph {graph!r}; it has {sorted(bundle.graphs)}"
        )
    name = ALIASES.get(name, name)
    if name != "auto":
        _check_name(name)
        backend = backend_class(name)(bundle, graph, device, **options)
        backend.selection = f"{name} (requested) on {backend.device}"
        return backend
    skipped: list[str] = []
    candidates = sorted(
        (n for n, e in BACKENDS.items() if e.rank is not None), key=lambda n: BACKENDS[n].rank
    )
    for cand in candidates:
        reason = _reason(cand, bundle, graph, device)
        if reason is not None:
            skipped.append(f"{cand}: {reason}")
            continue
        backend = backend_class(cand)(bundle, graph, device, **_only_known(cand, options))
        backend.selection = f"auto picked {cand} on {backend.device} for {graph}" + (
            f" (skipped: {'; '.join(skipped)})" if skipped else ""
        )
        log.info("%s", backend.selection)
        return backend
    raise RuntimeError("no runtime backend is available: " + "; ".join(skipped))


def _only_known(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Under "auto" the caller cannot know which backend it gets: drop options the picked
    backend's constructor does not take (logged), instead of failing."""
    import inspect

    params = inspect.signature(backend_class(name).__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    kept = {k: v for k, v in options.items() if k in params}
    dropped = sorted(set(options) - set(kept))
    if dropped:
        log.info("auto: %s does not take options %s; ignored", name, dropped)
    return kept
