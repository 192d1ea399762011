"""OpenVINO backend: the bundle's IR (or its ONNX when it has no IR) on CPU / GPU / NPU.

Devices: "CPU", "GPU" (or "GPU.N"), "NPU", "AUTO" (OpenVINO's own pick). The model is
compiled once with dynamic shapes where the device supports them (CPU, GPU, AUTO); with
``static_shapes=True`` (the default on NPU, which needs static shapes) a copy is reshaped and
compiled per distinct input-shape set, cached in an LRU of ``max_cached_shapes`` entries.
Precision: FP32 inference by default (``INFERENCE_PRECISION_HINT=f32``; OpenVINO would
otherwise pick bf16 / fp16 on CPUs / GPUs that have it), BF16 for graphs the manifest marks
``bf16`` (made and gated by ``rapsam-edge quantize --to bf16``). Threads: ``INFERENCE_NUM_THREADS``
defaults to ``runtime.threads.default_threads()``.

Concurrency: one infer request serves one call at a time (a shared request raises "Infer
Request is busy"), so ``run`` takes a request from a pool (a new one when all are busy) and
gives it back after the call: calls from several threads are safe. With the default
``LATENCY`` hint the CPU plugin has one stream and executes concurrent requests one after
another; ``performance_hint="THROUGHPUT"`` runs them in parallel streams.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..errors import BackendError, ConfigError
from .base import Backend
from .threads import default_threads

__all__ = ["OpenVINOBackend"]

log = logging.getLogger(__name__)

_STATIC_DEVICES = ("NPU",)
PRECISION_HINTS = ("f32", "f16", "bf16")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")


def _core() -> Any:
    import openvino as ov

    return ov.Core()


class _Compiled:
    """A compiled model and its idle infer requests."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.idle: list[Any] = []


class OpenVINOBackend(Backend):
    name = "openvino"
    concurrent = True

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        try:
            core = _core()
        except ImportError:
            return "openvino is not installed"
        want = (device or "CPU").upper()
        if want == "AUTO":
            return None if core.available_devices else "OpenVINO sees no device"
        devices = [d.upper() for d in core.available_devices]
        if want not in devices and not any(d.split(".")[0] == want for d in devices):
            return f"OpenVINO device {want} not present (available: {core.available_devices})"
        return None

    @classmethod
    def library_version(cls) -> str:
        import openvino

        return f"openvino {openvino.__version__}"

    def _open(
        self,
        bundle: Bundle,
        device: str | None,
        *,
        num_threads: int | None = None,
        precision: str | None = None,
        performance_hint: str = "LATENCY",
        cache_dir: str | None = None,
        static_shapes: bool | None = None,
        max_cached_shapes: int = 4,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Options:
          num_threads: INFERENCE_NUM_THREADS on CPU (default ``default_threads()``).
          precision: INFERENCE_PRECISION_HINT ("f32", "f16", "bf16"); default: "bf16" for a
            graph the manifest says is bf16 (a gated BF16 bundle), else "f32".
          performance_hint: "LATENCY" (default), "THROUGHPUT" or "CUMULATIVE_THROUGHPUT".
          cache_dir: OpenVINO model cache (speeds up GPU / NPU compile on later runs).
          static_shapes: compile per input shape (default: True on NPU only).
          max_cached_shapes: compiled shape sets kept with ``static_shapes``.
          config: extra compile properties, merged last.
        """
        device = (device or "CPU").upper()
        if precision is None:
            precision = "bf16" if self.info.precision == "bf16" else "f32"
        if precision not in PRECISION_HINTS:
            raise ConfigError(f"precision {precision!r}: choose from {PRECISION_HINTS}")
        if performance_hint not in PERFORMANCE_HINTS:
            raise ConfigError(
                f"performance_hint {performance_hint!r}: choose from {PERFORMANCE_HINTS}"
            )
        threads = default_threads() if num_threads is None else num_threads
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"num_threads must be a positive int, got {threads!r}")
        if not isinstance(max_cached_shapes, int) or max_cached_shapes < 1:
            raise ConfigError(
                f"max_cached_shapes must be a positive int, got {max_cached_shapes!r}"
            )
        self.core = _core()
        self.device = device
        self.threads = threads
        fmt = "openvino" if bundle.has(self.graph, "openvino") else "onnx"
        self.source = bundle.graph_path(self.graph, fmt)
        try:
            self.model = self.core.read_model(str(self.source))
        except Exception as e:
            raise BackendError(f"openvino: cannot read {self.source.name}: {e}") from e
        if cache_dir:
            self.core.set_property({"CACHE_DIR": str(cache_dir)})
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        if device != "AUTO" and not device.startswith("NPU"):
            self.config["INFERENCE_PRECISION_HINT"] = precision
        if device.startswith("CPU"):
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.config.update(config or {})
        self.static_shapes = (
            device.split(".")[0] in _STATIC_DEVICES
            if static_shapes is None
            else bool(static_shapes)
        )
        self.max_cached_shapes = max_cached_shapes
        self._pool_lock = threading.Lock()
        self._compiled: OrderedDict[tuple, _Compiled] = OrderedDict()
        if not self.static_shapes:
            self._compiled[()] = self._compile(None)
        log.debug(
            "openvino: %s from %s on %s (static=%s)",
            self.graph,
            self.source.name,
            device,
            self.static_shapes,
        )

    def _compile(self, shapes: Mapping[str, tuple[int, ...]] | None) -> _Compiled:
        model = self.model
        if shapes is not None:
            model = self.model.clone()
            model.reshape({name: list(shape) for name, shape in shapes.items()})
        try:
            return _Compiled(self.core.compile_model(model, self.device, self.config))
        except Exception as e:
            raise BackendError(
                f"openvino: cannot compile {self.graph} for {self.device}: {e}"
            ) from e

    def _acquire(self, feeds: Mapping[str, np.ndarray]) -> tuple[_Compiled, Any]:
        key = () if not self.static_shapes else tuple((n, feeds[n].shape) for n in self.input_names)
        with self._pool_lock:
            entry = self._compiled.get(key)
            if entry is None:
                entry = self._compile({n: feeds[n].shape for n in self.input_names})
                self._compiled[key] = entry
                while len(self._compiled) > self.max_cached_shapes:
                    self._compiled.popitem(last=False)
            else:
                self._compiled.move_to_end(key)
            request = entry.idle.pop() if entry.idle else entry.compiled.create_infer_request()
        return entry, request

    def _signature(self) -> dict[str, tuple[int | None, ...]] | None:
        wanted = {t.name for t in self.info.inputs + self.info.outputs}
        out: dict[str, tuple[int | None, ...]] = {}
        for port in list(self.model.inputs) + list(self.model.outputs):
            names = port.get_names()
            name = next(iter(sorted(names & wanted)), port.get_any_name())
            shape = port.get_partial_shape()
            if shape.rank.is_dynamic:
                return None  # nothing to compare before a run
            out[name] = tuple(d.get_length() if d.is_static else None for d in shape)
        return out

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        entry, request = self._acquire(feeds)
        try:
            # share_outputs=False (default): the returned arrays are copies the caller owns.
            res = request.infer(feeds)
            return {name: res[name] for name in self.output_names}
        except Exception as e:
            raise BackendError(f"openvino/{self.graph}: {e}") from e
        finally:
            with self._pool_lock:
                entry.idle.append(request)

    def _close(self) -> None:
        with self._pool_lock:
            self._compiled.clear()
