"""ONNX Runtime backends: CPU, CUDA and TensorRT execution providers.

Registry names: ``ort-cpu`` (CPUExecutionProvider), ``ort-cuda`` (CUDAExecutionProvider,
CPU fallback), ``ort-tensorrt`` (TensorrtExecutionProvider, then CUDA, then CPU). Session:
graph optimisation level ALL, intra-op threads configurable (default: ORT's choice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle
from .base import Availability, BackendUnavailable, check_feeds

__all__ = ["OrtBackend", "OrtCudaBackend", "OrtTensorrtBackend"]

log = logging.getLogger(__name__)


def _providers_available() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


class OrtBackend(Availability):
    """One bundle graph in an ``onnxruntime.InferenceSession``."""

    name = "ort-cpu"
    #: providers this backend needs, first = the one it is about
    PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        """None when usable here, else why not."""
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed"
        if cls.PROVIDERS[0] not in _providers_available():
            return (
                f"onnxruntime has no {cls.PROVIDERS[0]} (installed providers: "
                f"{_providers_available()})"
            )
        return None

    def __init__(
        self,
        bundle: Bundle,
        graph: str,
        device: str | None = None,
        *,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        provider_options: Mapping[str, Mapping[str, Any]] | None = None,
        optimized_model_path: str | Path | None = None,
    ) -> None:
        """
        Arguments:
          device: "cpu" for ort-cpu; "cuda" / "cuda:N" for the GPU providers (device id N).
          intra_op_threads: threads inside one op (None = ORT default = physical cores).
          provider_options: extra options per provider name (merged over the defaults).
          optimized_model_path: write the optimised graph there (debugging).
        """
        reason = self.unavailable_reason(device)
        if reason:
            raise BackendUnavailable(f"{self.name}: {reason}")
        import onnxruntime as ort

        self.graph = graph
        self.info = bundle.graphs[graph]
        self.input_names = self.info.input_names
        self.output_names = self.info.output_names
        path = bundle.graph_path(graph, "onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads is not None:
            so.intra_op_num_threads = int(intra_op_threads)
        if inter_op_threads is not None:
            so.inter_op_num_threads = int(inter_op_threads)
        if optimized_model_path is not None:
            so.optimized_model_filepath = str(optimized_model_path)
        self.device, providers = self._providers(bundle, graph, device, provider_options or {})
        self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        self.providers = tuple(self.session.get_providers())
        log.debug("%s: %s on %s (providers %s)", self.name, graph, self.device, self.providers)

    def _providers(
        self, bundle: Bundle, graph: str, device: str | None, extra: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, list]:
        if device not in (None, "cpu"):
            raise ValueError(f"{self.name} runs on 'cpu' only, not {device!r}")
        return "cpu", [("CPUExecutionProvider", dict(extra.get("CPUExecutionProvider", {})))]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_feeds(feeds, self.info.inputs, where=f"{self.name}/{self.graph}")
        outs = self.session.run(list(self.output_names), feeds)
        return dict(zip(self.output_names, outs))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(graph={self.graph!r}, device={self.device!r})"


def _device_id(device: str | None) -> int:
    if device in (None, "cuda", "gpu"):
        return 0
    if device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    raise ValueError(f"expected 'cuda' or 'cuda:N', got {device!r}")


class OrtCudaBackend(OrtBackend):
    """CUDAExecutionProvider (CPU fallback for unsupported ops)."""

    name = "ort-cuda"
    PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")

    def _providers(
        self, bundle: Bundle, graph: str, device: str | None, extra: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, list]:
        dev = _device_id(device)
        cuda = {"device_id": dev, **extra.get("CUDAExecutionProvider", {})}
        return f"cuda:{dev}", [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]


class OrtTensorrtBackend(OrtBackend):
    """TensorrtExecutionProvider (FP16 on, engine cache next to nothing in the bundle: under
    ``trt_engine_cache_path``, default ``~/.cache/rapsam_edge/ort-trt``), then CUDA, then
    CPU."""

    name = "ort-tensorrt"
    PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

    def _providers(
        self, bundle: Bundle, graph: str, device: str | None, extra: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, list]:
        dev = _device_id(device)
        cache = Path.home() / ".cache" / "rapsam_edge" / "ort-trt"
        trt = {
            "device_id": dev,
            "trt_fp16_enable": True,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            **extra.get("TensorrtExecutionProvider", {}),
        }
        Path(trt["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        cuda = {"device_id": dev, **extra.get("CUDAExecutionProvider", {})}
        return f"cuda:{dev}", [
            ("TensorrtExecutionProvider", trt),
            ("CUDAExecutionProvider", cuda),
            "CPUExecutionProvider",
        ]
