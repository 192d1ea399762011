"""The one table of runtime backends, and how a backend is created by name.

``create_backend(bundle, graph, name)`` builds the backend ``name`` for one graph; with
``"auto"`` or ``"fastest"`` it asks the one selection policy (``runtime.selection``) that
``Segmenter(backend="auto")`` uses too. The torch reference backend lives on the training
side (``rapsam_edge.deploy.torch_backend``) and is reached only by name; it is never
auto-picked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import Bundle, load_bundle
from ..errors import BackendUnavailable, BundleError, ConfigError
from .base import Backend

__all__ = [
    "ALIASES",
    "BACKENDS",
    "SELECTION_POLICIES",
    "BackendEntry",
    "available_backends",
    "backend_class",
    "canonical_name",
    "create_backend",
    "unavailable_reasons",
]


@dataclass(frozen=True)
class BackendEntry:
    module: str
    cls: str
    needs: str  # what it needs, for messages and docs
    rank: int | None  # GPU pick order, lower first; None = never auto-picked
    bundle_format: str  # the graph file format it reads
    gpu: bool  # needs an NVIDIA GPU


BACKENDS: dict[str, BackendEntry] = {
    "tensorrt": BackendEntry(
        "rapsam_edge.runtime.tensorrt",
        "TensorRTBackend",
        "tensorrt>=10 + cuda-python + an NVIDIA GPU",
        0,
        "onnx",
        True,
    ),
    "ort-tensorrt": BackendEntry(
        "rapsam_edge.runtime.ort",
        "OrtTensorrtBackend",
        "onnxruntime-gpu with TensorRT EP + an NVIDIA GPU",
        1,
        "onnx",
        True,
    ),
    "ort-cuda": BackendEntry(
        "rapsam_edge.runtime.ort",
        "OrtCudaBackend",
        "onnxruntime-gpu + an NVIDIA GPU",
        2,
        "onnx",
        True,
    ),
    "openvino": BackendEntry(
        "rapsam_edge.runtime.openvino",
        "OpenVINOBackend",
        "openvino (CPU / Intel GPU / NPU)",
        3,
        "openvino",
        False,
    ),
    "ort-cpu": BackendEntry(
        "rapsam_edge.runtime.ort", "OrtBackend", "onnxruntime", 4, "onnx", False
    ),
    "torch": BackendEntry(
        "rapsam_edge.deploy.torch_backend",
        "TorchBackend",
        "torch + safetensors + model.safetensors in bundle (pip install 'rapsam-edge[train]')",
        None,
        "weights",
        False,
    ),
}

#: other accepted spellings of backend names
ALIASES: dict[str, str] = {"onnxruntime": "ort-cpu", "ort": "ort-cpu", "trt": "tensorrt"}

#: names that ask the selection policy instead of naming a backend
SELECTION_POLICIES: dict[str, str] = {
    "auto": "a GPU backend by rank when one is usable; else the CPU backends timed on the "
    "bundle, in pipeline order with the threading they will run with, fastest per graph",
    "fastest": "time every usable backend (GPU ones included) the same way, fastest per graph",
}


def canonical_name(name: Any) -> str:
    """The table's name for ``name`` (aliases resolved); policies pass through.

    Raises:
      ConfigError: not a string, or no such backend.
    """
    if not isinstance(name, str):
        raise ConfigError(f"backend must be a name, got {type(name).__name__} {name!r}")
    name = ALIASES.get(name, name)
    if name not in BACKENDS and name not in SELECTION_POLICIES:
        raise ConfigError(
            f"unknown backend {name!r}; known: {', '.join([*SELECTION_POLICIES, *BACKENDS, *ALIASES])}"
        )
    return name


def backend_class(name: str) -> type[Backend]:
    """Import and return the class of backend ``name``.

    Raises:
      ConfigError: unknown name. ImportError: its module cannot be imported.
    """
    name = canonical_name(name)
    if name in SELECTION_POLICIES:
        raise ConfigError(f"{name!r} is a selection policy, not a backend")
    entry = BACKENDS[name]
    return getattr(importlib.import_module(entry.module), entry.cls)


def _reason(name: str, bundle: Bundle | None, graph: str | None, device: str | None) -> str | None:
    entry = BACKENDS[name]
    try:
        cls = backend_class(name)
    except ImportError as e:
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
    """Names of the backends usable here (and for ``bundle``/``graph`` if given): GPU ones
    by rank, then the CPU ones, then the never-auto ones (torch)."""
    reasons = unavailable_reasons(bundle, graph, device)
    names = [n for n, r in reasons.items() if r is None]
    return sorted(names, key=lambda n: (BACKENDS[n].rank is None, BACKENDS[n].rank or 0))


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
      graph: "encoder", "panoptic_decoder" or "prompt_decoder".
      name: a backend name (``BACKENDS`` or ``ALIASES``), or a policy ("auto", "fastest";
        see ``runtime.selection.select_backends``).
      device: the backend's device (None = its default).
      options: go to the backend's ``_open`` (e.g. ``intra_op_threads`` for ORT,
        ``num_threads`` for OpenVINO, ``precision`` for TensorRT); under a policy, options a
        candidate does not take are dropped for it (logged).
    Returns:
      the backend; its ``selection`` says how it was chosen.
    Raises:
      ConfigError: unknown backend name or option. BundleError: no such graph.
      BackendUnavailable: the backend cannot run here.
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    if graph not in bundle.graphs:
        raise BundleError(
            f"bundle {bundle.name!r} has no graph {graph!r}; it has {sorted(bundle.graphs)}"
        )
    name = canonical_name(name)
    if name in SELECTION_POLICIES:
        from .selection import select_backends

        return select_backends(
            bundle, (graph,), policy=name, device=device, options=options
        ).backends[graph]
    reason = _reason(name, bundle, graph, device)
    if reason is not None:
        raise BackendUnavailable(f"{name}: {reason}", hint=f"needs {BACKENDS[name].needs}")
    try:
        return backend_class(name)(bundle, graph, device, **options)
    except TypeError as e:  # an option the backend does not take
        if "unexpected keyword" in str(e):
            raise ConfigError(f"{name}: {e}") from e
        raise
