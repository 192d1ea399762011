"""The environment block of a profile report: what two reports must share to be compared
(CPU, cores and threads, backend per graph and its version, precision of each graph, input
sizes, package versions)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "environment", "package_versions"]

_PACKAGES = (
    "rapsam-edge",
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "tensorrt",
    "torch",
)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else ``platform.processor()``)."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text(errors="replace").splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a measurement depends on (absent ones left out)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def environment(
    segmenter: Any, *, frame_hw: tuple[int, int], settings: dict[str, Any]
) -> dict[str, Any]:
    """The environment of a run of ``segmenter`` on frames of ``frame_hw`` (H, W).

    Returns a JSON-ready dict: machine (platform, CPU model, logical cores, cores this process
    may use), threads (per graph, ops core), ops implementation, per graph {backend, device,
    library version, precision in the bundle, selection}, bundle (name, variant, network
    input long side), frame size, package versions, UTC time and the profiler settings.
    """
    from .. import ops
    from ..contract.threads import default_threads

    graphs = {}
    for name, backend in segmenter.graphs.items():
        graphs[name] = {
            "backend": backend.name,
            "device": str(backend.device),
            "library": type(backend).library_version(),
            "precision": segmenter.bundle.graphs[name].precision,
            "runtime_precision": getattr(backend, "precision", None) or _ov_precision(backend),
            "selection": backend.selection,
        }
    core = ops.info()
    return {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": _cores(),
        "threads_per_graph": default_threads(),
        "ops": {
            k: core.get(k)
            for k in ("implementation", "core_version", "threads", "simd", "build_type")
        },
        "graphs": graphs,
        "bundle": {
            "name": segmenter.bundle.name,
            "variant": segmenter.bundle.variant,
            "root": str(segmenter.bundle.root),
            "input_long_side": segmenter.input_size,
        },
        "frame_hw": list(frame_hw),
        "packages": package_versions(),
        "settings": settings,
    }


def _ov_precision(backend: Any) -> str | None:
    config = getattr(backend, "config", None)
    if isinstance(config, dict):
        return config.get("INFERENCE_PRECISION_HINT")
    return None
