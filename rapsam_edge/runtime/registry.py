"""The one table of runtime backends: names, aliases, what each needs, and whether it can
run here (``unavailable_reasons``). Creating backends, by name or by policy, is
``runtime.selection``'s job (``create_backend``), which reads this table; this module imports
no other runtime module but ``base``. The torch reference backend lives on the training
side (``rapsam_edge.deploy.torch_backend``) and is reached only by name; it is never
auto-picked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..bundle import Bundle
from ..errors import ConfigError
from .base import Backend

__all__ = [
    "ALIASES",
    "BACKENDS",
    "SELECTION_POLICIES",
    "BackendEntry",
    "available_backends",
    "backend_class",
    "bundle_reason",
    "canonical_name",
    "unavailable_reason",
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


def bundle_reason(name: str, bundle: Bundle, graph: str | None = None) -> str | None:
    """None when backend ``name`` can read ``bundle`` (``graph``'s file if given), else why
    not: the part of ``unavailable_reason`` that no install changes."""
    entry = BACKENDS[name]
    if entry.bundle_format == "weights":
        if bundle.weights is None:
            return "the bundle ships no model.safetensors"
    elif entry.bundle_format == "openvino":
        if graph is not None and not (bundle.has(graph, "openvino") or bundle.has(graph, "onnx")):
            return f"the bundle has neither IR nor ONNX for {graph}"
    elif graph is not None and not bundle.has(graph, entry.bundle_format):
        return f"the bundle has no {entry.bundle_format} file for {graph}"
    return None


def unavailable_reason(
    name: str, bundle: Bundle | None = None, graph: str | None = None, device: str | None = None
) -> str | None:
    """None when backend ``name`` can run here (for ``bundle``/``graph`` if given), else why not."""
    entry = BACKENDS[name]
    try:
        cls = backend_class(name)
    except ImportError as e:
        return f"cannot import {entry.module}: {e}"
    if bundle is not None and (reason := bundle_reason(name, bundle, graph)) is not None:
        return reason
    try:
        return cls.unavailable_reason(device)
    except Exception as e:  # noqa: BLE001 - a broken driver stack is reported, not fatal
        return f"probe failed: {type(e).__name__}: {e}"


def unavailable_reasons(
    bundle: Bundle | None = None, graph: str | None = None, device: str | None = None
) -> dict[str, str | None]:
    """name -> None (available) or why not, for every backend in the table."""
    return {name: unavailable_reason(name, bundle, graph, device) for name in BACKENDS}


def available_backends(
    bundle: Bundle | None = None, graph: str | None = None, device: str | None = None
) -> list[str]:
    """Names of the backends usable here (and for ``bundle``/``graph`` if given): GPU ones
    by rank, then the CPU ones, then the never-auto ones (torch)."""
    reasons = unavailable_reasons(bundle, graph, device)
    names = [n for n, r in reasons.items() if r is None]
    return sorted(names, key=lambda n: (BACKENDS[n].rank is None, BACKENDS[n].rank or 0))
