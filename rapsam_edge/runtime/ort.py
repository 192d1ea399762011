"""ONNX Runtime backends: CPU, CUDA and TensorRT execution providers.

Registry names: ``ort-cpu`` (CPUExecutionProvider), ``ort-cuda`` (CUDAExecutionProvider,
CPU fallback), ``ort-tensorrt`` (TensorrtExecutionProvider, then CUDA, then CPU).

Threading: ``intra_op_threads`` defaults to ``contract.threads.default_threads()`` (the cores
this process may use, or ``RAPSAM_EDGE_THREADS``) and the workers do NOT spin-wait between
ops (``session.intra_op.allow_spinning`` = 0): with spinning on, the idle workers of one
session keep the cores busy while the next graph or the C++ post-processing runs, which
halved ``Segmenter.panoptic`` speed on 2 cores (benchmarks/results/threading.md).
``spin=True`` restores ORT's default for a graph run alone in a tight loop.

Concurrency: ``InferenceSession.run`` may be called from several threads at once (ONNX
Runtime documents sessions as thread-safe), so ``run`` is not serialised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..contract.threads import default_threads
from ..errors import BackendError, ConfigError
from .base import Backend, Port

__all__ = ["OrtBackend", "OrtCudaBackend", "OrtTensorrtBackend"]

log = logging.getLogger(__name__)


def _providers_available() -> list[str]:
    import onnxruntime as ort  # a required dependency

    return list(ort.get_available_providers())


#: ONNX Runtime's tensor type names -> numpy dtype names (the manifest's spelling)
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


class OrtBackend(Backend):
    """One bundle graph in an ``onnxruntime.InferenceSession``."""

    name = "ort-cpu"
    concurrent = True
    #: providers this backend needs, first = the one it is about
    PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
    #: the devices it runs on (None: the CUDA ones, which number the GPUs "cuda:N")
    DEVICES: tuple[str, ...] | None = ("cpu",)
    install_hint = "pip install onnxruntime"

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        if cls.PROVIDERS[0] not in _providers_available():
            return f"onnxruntime has no {cls.PROVIDERS[0]} (installed providers: {_providers_available()})"
        if cls.DEVICES is not None and device not in (None, *cls.DEVICES):
            return f"runs on {', '.join(map(repr, cls.DEVICES))} only, not {device!r}"
        return None

    @classmethod
    def devices(cls) -> list[str] | None:
        if cls.DEVICES is None or cls.PROVIDERS[0] not in _providers_available():
            return None
        return list(cls.DEVICES)

    @classmethod
    def library_version(cls) -> str:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"

    def _open(
        self,
        bundle: Bundle,
        device: str | None,
        *,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        spin: bool = False,
        provider_options: Mapping[str, Mapping[str, Any]] | None = None,
        optimized_model_path: str | Path | None = None,
    ) -> None:
        """
        Options:
          intra_op_threads: threads inside one op (default ``default_threads()``).
          inter_op_threads: threads across independent ops (ORT's default: sequential).
          spin: let idle workers spin-wait (ORT's default; off here, see the module doc).
          provider_options: extra options per provider name (merged over the defaults).
          optimized_model_path: write the optimised graph there (debugging).
        """
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = default_threads() if intra_op_threads is None else intra_op_threads
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"intra_op_threads must be a positive int, got {threads!r}")
        so.intra_op_num_threads = threads
        if inter_op_threads is not None:
            so.inter_op_num_threads = int(inter_op_threads)
        flag = "1" if spin else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", flag)
        so.add_session_config_entry("session.inter_op.allow_spinning", flag)
        if optimized_model_path is not None:
            so.optimized_model_filepath = str(optimized_model_path)
        self.threads, self.spin = threads, spin
        self.device, providers = self._providers(device, provider_options or {})
        path = bundle.graph_path(self.graph, "onnx")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as e:  # ORT raises its own Fail / InvalidGraph types
            raise BackendError(f"{self.name}: cannot load {path.name}: {e}") from e
        self.providers = tuple(self.session.get_providers())
        log.debug("%s: %s on %s (providers %s)", self.name, self.graph, self.device, self.providers)

    def _signature(self) -> dict[str, Port]:
        ports = [("input", t) for t in self.session.get_inputs()]
        ports += [("output", t) for t in self.session.get_outputs()]
        return {
            t.name: Port(
                direction,
                _ORT_DTYPES.get(t.type),
                tuple(d if isinstance(d, int) else None for d in (t.shape or ())),
            )
            for direction, t in ports
        }

    def _providers(
        self, device: str | None, extra: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, list]:
        if device not in (None, "cpu"):
            raise ConfigError(f"{self.name} runs on 'cpu' only, not {device!r}")
        return "cpu", [("CPUExecutionProvider", dict(extra.get("CPUExecutionProvider", {})))]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self.session.run(list(self.output_names), feeds)
        except Exception as e:
            raise BackendError(f"{self.name}/{self.graph}: {e}") from e
        return dict(zip(self.output_names, outs))

    def _close(self) -> None:
        self.session = None


def _device_id(device: str | None) -> int:
    if device in (None, "cuda", "gpu"):
        return 0
    if isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ConfigError(f"expected device 'cuda' or 'cuda:N', got {device!r}")


class OrtCudaBackend(OrtBackend):
    """CUDAExecutionProvider (CPU fallback for unsupported ops)."""

    name = "ort-cuda"
    PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
    DEVICES = None
    install_hint = "pip install onnxruntime-gpu"

    def _providers(
        self, device: str | None, extra: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, list]:
        dev = _device_id(device)
        cuda = {"device_id": dev, **extra.get("CUDAExecutionProvider", {})}
        return f"cuda:{dev}", [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]


class OrtTensorrtBackend(OrtBackend):
    """TensorrtExecutionProvider (FP16 on, engine cache under ``trt_engine_cache_path``,
    default ``~/.cache/rapsam_edge/ort-trt``), then CUDA, then CPU."""

    name = "ort-tensorrt"
    PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    DEVICES = None
    install_hint = "pip install onnxruntime-gpu (with its TensorRT execution provider)"

    def _providers(
        self, device: str | None, extra: Mapping[str, Mapping[str, Any]]
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
