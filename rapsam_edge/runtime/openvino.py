"""OpenVINO backend: the bundle's IR (or its ONNX when it has no IR) on CPU / GPU / NPU.

Devices: "CPU", "GPU" (or "GPU.N"), "NPU", "AUTO" (OpenVINO's own pick). The model is
compiled once with dynamic shapes where the device supports them (CPU, GPU, AUTO); with
``static_shapes=True`` (the default on NPU, which needs static shapes) a copy is reshaped and
compiled per distinct input-shape set, cached in an LRU of ``max_cached_shapes`` entries.
Precision: FP32 inference by default (``INFERENCE_PRECISION_HINT=f32``; OpenVINO would
otherwise pick bf16 / fp16 on CPUs / GPUs that have it).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..bundle import Bundle
from .base import Availability, BackendUnavailable, check_feeds

__all__ = ["OpenVINOBackend"]

log = logging.getLogger(__name__)

_STATIC_DEVICES = ("NPU",)


def _core() -> Any:
    import openvino as ov

    return ov.Core()


class OpenVINOBackend(Availability):
    name = "openvino"

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

    def __init__(
        self,
        bundle: Bundle,
        graph: str,
        device: str | None = None,
        *,
        num_threads: int | None = None,
        precision: str = "f32",
        performance_hint: str = "LATENCY",
        cache_dir: str | None = None,
        static_shapes: bool | None = None,
        max_cached_shapes: int = 4,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Arguments:
          device: "CPU" (default), "GPU", "GPU.N", "NPU" or "AUTO".
          num_threads: INFERENCE_NUM_THREADS (CPU); None = OpenVINO default.
          precision: INFERENCE_PRECISION_HINT ("f32", "f16", "bf16"); "f32" matches the bundle.
          cache_dir: OpenVINO model cache (speeds up GPU / NPU compile on later runs).
          static_shapes: compile per input shape (default: True on NPU only).
          config: extra compile properties, merged last.
        """
        device = (device or "CPU").upper()
        reason = self.unavailable_reason(device)
        if reason:
            raise BackendUnavailable(f"{self.name}: {reason}")
        self.core = _core()
        self.device = device
        self.graph = graph
        self.info = bundle.graphs[graph]
        self.input_names = self.info.input_names
        self.output_names = self.info.output_names
        fmt = "openvino" if bundle.has(graph, "openvino") else "onnx"
        self.source = bundle.graph_path(graph, fmt)
        self.model = self.core.read_model(str(self.source))
        if cache_dir:
            self.core.set_property({"CACHE_DIR": str(cache_dir)})
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        if device != "AUTO" and not device.startswith("NPU"):
            self.config["INFERENCE_PRECISION_HINT"] = precision
        if num_threads is not None and device.startswith("CPU"):
            self.config["INFERENCE_NUM_THREADS"] = int(num_threads)
        self.config.update(config or {})
        self.static_shapes = (
            device.split(".")[0] in _STATIC_DEVICES if static_shapes is None else static_shapes
        )
        self.max_cached_shapes = max_cached_shapes
        self._requests: OrderedDict[tuple, Any] = OrderedDict()
        if not self.static_shapes:
            self._requests[()] = self._compile(None)
        log.debug(
            "openvino: %s from %s on %s (static=%s)",
            graph,
            self.source.name,
            device,
            self.static_shapes,
        )

    def _compile(self, shapes: Mapping[str, tuple[int, ...]] | None) -> Any:
        model = self.model
        if shapes is not None:
            model = self.model.clone()
            model.reshape({name: list(shape) for name, shape in shapes.items()})
        compiled = self.core.compile_model(model, self.device, self.config)
        return compiled.create_infer_request()

    def _request(self, feeds: Mapping[str, np.ndarray]) -> Any:
        if not self.static_shapes:
            return self._requests[()]
        key = tuple((n, feeds[n].shape) for n in self.input_names)
        req = self._requests.get(key)
        if req is None:
            req = self._compile({n: feeds[n].shape for n in self.input_names})
            self._requests[key] = req
            while len(self._requests) > self.max_cached_shapes:
                self._requests.popitem(last=False)
        else:
            self._requests.move_to_end(key)
        return req

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_feeds(feeds, self.info.inputs, where=f"{self.name}/{self.graph}")
        # share_outputs=False (default): the returned arrays are copies the caller owns.
        res = self._request(feeds).infer(feeds)
        return {name: res[name] for name in self.output_names}

    def __repr__(self) -> str:
        return f"OpenVINOBackend(graph={self.graph!r}, device={self.device!r})"
