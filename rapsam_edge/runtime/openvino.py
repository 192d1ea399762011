"""OpenVINO backend: the bundle's IR (or its ONNX when it has no IR, with a WARNING naming the
file) on CPU / GPU / NPU.

Devices: "CPU", "GPU" (or "GPU.N"), "NPU", "AUTO" (OpenVINO's own pick). Shapes, by
``static_shapes``:

* ``True`` (the default on NPU, which needs static shapes): a copy is reshaped and compiled
  per distinct input-shape set, at its first call, cached in an LRU of ``max_cached_shapes``.
* ``"auto"`` (the default on CPU): the model is compiled once with dynamic shapes and serves
  every call; an input-shape set seen ``static_after`` times gets a static copy compiled in a
  background thread, which serves that shape from then on (LRU as above). Measured on the
  edge-s bundles, 2 threads of this project's 2-core CPU, 640x480 frames: static graphs run
  12-15 % faster (INT8 encoder 4.37 -> 3.83 ms, panoptic decoder 2.90 -> 2.47 ms) and the
  first prompt after ``set_image`` 23 % faster (2.51 -> 1.93 ms), while one compile takes
  0.2-0.5 s: so a camera's steady shape is static without a stall on any frame, and inputs
  whose shape keeps changing stay on the dynamic model. ``settle()`` waits for the compiles.
* ``False`` (the default on GPU / AUTO): dynamic shapes only.
Precision: FP32 inference by default (``INFERENCE_PRECISION_HINT=f32``; OpenVINO would
otherwise pick bf16 / fp16 on CPUs / GPUs that have it), BF16 for graphs the manifest marks
``bf16`` (made and gated by ``rapsam-edge quantize --to bf16``). Threads: ``INFERENCE_NUM_THREADS``
defaults to ``contract.threads.default_threads()``.

Concurrency: one infer request serves one call at a time (a shared request raises "Infer
Request is busy"), so ``run`` takes a request from a pool (a new one when all are busy) and
gives it back after the call: calls from several threads are safe. With the default
``LATENCY`` hint the CPU plugin has one stream and executes concurrent requests one after
another; ``performance_hint="THROUGHPUT"`` runs them in parallel streams.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..contract.threads import default_threads
from ..errors import BackendError, ConfigError
from .base import Backend, Port

__all__ = ["OpenVINOBackend"]

log = logging.getLogger(__name__)

_STATIC_DEVICES = ("NPU",)
_AUTO_STATIC_DEVICES = ("CPU",)
STATIC_SHAPES = (True, False, "auto")
_MAX_SEEN_SHAPES = 1024  # shape counters kept for "auto" (cleared beyond, a bound on memory)
PRECISION_HINTS = ("f32", "f16", "bf16")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
#: how to get OpenVINO (the hint of the errors that say it is missing)
INSTALL_HINT = 'pip install "rapsam-edge[openvino]" (or pip install openvino)'


def _core() -> Any:
    import openvino as ov

    return ov.Core()


def _check_options(
    precision: str, performance_hint: str, threads: Any, max_cached_shapes: Any, static_after: Any
) -> None:
    """The scalar options of ``OpenVINOBackend._open``.

    Raises:
      ConfigError: naming the option."""
    if precision not in PRECISION_HINTS:
        raise ConfigError(f"precision {precision!r}: choose from {PRECISION_HINTS}")
    if performance_hint not in PERFORMANCE_HINTS:
        raise ConfigError(f"performance_hint {performance_hint!r}: choose from {PERFORMANCE_HINTS}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"num_threads must be a positive int, got {threads!r}")
    for name, value in (("max_cached_shapes", max_cached_shapes), ("static_after", static_after)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")


def _default_static_shapes(device: str) -> bool | str:
    """True on NPU (static shapes only), "auto" on CPU, False elsewhere."""
    kind = device.split(".")[0]
    if kind in _STATIC_DEVICES:
        return True
    return "auto" if kind in _AUTO_STATIC_DEVICES else False


class _Compiled:
    """A compiled model and its idle infer requests."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.idle: list[Any] = []


class OpenVINOBackend(Backend):
    name = "openvino"
    concurrent = True
    install_hint = INSTALL_HINT

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        try:
            core = _core()
        except ImportError:
            return f"openvino is not installed ({INSTALL_HINT})"
        want = (device or "CPU").upper()
        if want == "AUTO":
            return None if core.available_devices else "OpenVINO sees no device"
        devices = [d.upper() for d in core.available_devices]
        if want not in devices and not any(d.split(".")[0] == want for d in devices):
            return f"OpenVINO device {want} not present (available: {core.available_devices})"
        return None

    @classmethod
    def devices(cls) -> list[str] | None:
        try:
            return list(_core().available_devices)
        except ImportError:
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
        static_shapes: bool | str | None = None,
        max_cached_shapes: int = 8,
        static_after: int = 2,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Options:
          num_threads: INFERENCE_NUM_THREADS on CPU (default ``default_threads()``).
          precision: INFERENCE_PRECISION_HINT ("f32", "f16", "bf16"); default: "bf16" for a
            graph the manifest says is bf16 (a gated BF16 bundle), else "f32".
          performance_hint: "LATENCY" (default), "THROUGHPUT" or "CUMULATIVE_THROUGHPUT".
          cache_dir: OpenVINO model cache (speeds up GPU / NPU compile on later runs).
          static_shapes: True (compile per input shape), "auto" (dynamic, plus static copies
            of repeated shapes compiled in the background) or False (dynamic only); default
            True on NPU, "auto" on CPU, False elsewhere. See the module docstring.
          max_cached_shapes: static shape sets kept (LRU).
          static_after: with "auto", the calls with one shape set before its static copy is
            compiled (>= 1).
          config: extra compile properties, merged last.
        """
        device = (device or "CPU").upper()
        if precision is None:
            precision = "bf16" if self.info.precision == "bf16" else "f32"
        threads = default_threads() if num_threads is None else num_threads
        _check_options(precision, performance_hint, threads, max_cached_shapes, static_after)
        if static_shapes is not None and not any(static_shapes is v for v in STATIC_SHAPES):
            raise ConfigError(
                f"static_shapes {static_shapes!r}: choose from True, False, 'auto' or None"
            )
        self.core = _core()
        self.device = device
        self.threads = threads
        self.source = self._read_model(bundle)
        if cache_dir:
            self.core.set_property({"CACHE_DIR": str(cache_dir)})
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        if device != "AUTO" and not device.startswith("NPU"):
            self.config["INFERENCE_PRECISION_HINT"] = precision
        if device.startswith("CPU"):
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.config.update(config or {})
        self.static_shapes: bool | str = (
            _default_static_shapes(device) if static_shapes is None else static_shapes
        )
        self.max_cached_shapes = max_cached_shapes
        self.static_after = static_after
        self._pool_lock = threading.Lock()
        self._compiled: OrderedDict[tuple, _Compiled] = OrderedDict()  # static, by shape key
        self._dynamic = None if self.static_shapes is True else self._compile(None)
        self._seen: dict[tuple, int] = {}
        self._pending: dict[tuple, threading.Thread] = {}
        log.debug(
            "openvino: %s from %s on %s (static=%s)",
            self.graph,
            self.source.name,
            device,
            self.static_shapes,
        )

    def _read_model(self, bundle: Bundle) -> Path:
        """Read the graph's IR, or its ONNX when the bundle has no IR for it (with a WARNING
        naming the file: OpenVINO then converts the graph at every load, which is slower to
        start and is not the file a gated OpenVINO precision was checked on).

        Returns:
          the file read.
        Raises:
          BackendError: OpenVINO cannot read it."""
        if bundle.has(self.graph, "openvino"):
            source = bundle.graph_path(self.graph, "openvino")
        else:
            source = bundle.graph_path(self.graph, "onnx")
            log.warning(
                "openvino/%s: bundle %r has no OpenVINO IR for this graph; reading the ONNX "
                "file %s instead (converted at every load; export the IR to skip this)",
                self.graph,
                bundle.name,
                source,
            )
        try:
            self.model = self.core.read_model(str(source))
        except Exception as e:
            raise BackendError(f"openvino: cannot read {source.name}: {e}") from e
        return source

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

    def _cache(self, key: tuple, entry: _Compiled) -> None:
        """Insert a static entry (caller holds ``_pool_lock``), evicting the oldest."""
        self._compiled[key] = entry
        while len(self._compiled) > self.max_cached_shapes:
            old, _ = self._compiled.popitem(last=False)
            self._seen.pop(old, None)  # an evicted shape counts up again before recompiling

    def _compile_static_async(self, key: tuple, shapes: dict[str, tuple[int, ...]]) -> None:
        """Compile ``shapes`` in a background thread (caller holds ``_pool_lock``)."""

        def work() -> None:
            try:
                entry = self._compile(shapes)
            except BackendError as e:  # the dynamic model keeps serving this shape
                log.warning("openvino/%s: static compile of %s failed: %s", self.graph, shapes, e)
                entry = None
            with self._pool_lock:
                self._pending.pop(key, None)
                if entry is not None and not self._closed:
                    self._cache(key, entry)

        # Not a daemon: the interpreter waits for it at exit (a compile still running in
        # OpenVINO while Python finalises aborts the process: "terminate called without an
        # active exception"); close() waits for it too.
        thread = threading.Thread(target=work, name=f"ov-compile-{self.graph}")
        self._pending[key] = thread
        thread.start()

    def _acquire(self, feeds: Mapping[str, np.ndarray]) -> tuple[_Compiled, Any]:
        key = tuple((n, feeds[n].shape) for n in self.input_names)
        with self._pool_lock:
            entry = self._compiled.get(key)
            if entry is not None:
                self._compiled.move_to_end(key)
            elif self.static_shapes is True:
                entry = self._compile(dict(key))
                self._cache(key, entry)
            elif self._dynamic is None:  # closed meanwhile
                raise BackendError(f"openvino/{self.graph}: run() after close()")
            else:
                entry = self._dynamic
                if self.static_shapes == "auto" and key not in self._pending:
                    if len(self._seen) >= _MAX_SEEN_SHAPES:
                        self._seen.clear()
                    self._seen[key] = n = self._seen.get(key, 0) + 1
                    if n >= self.static_after:
                        self._compile_static_async(key, dict(key))
            request = entry.idle.pop() if entry.idle else entry.compiled.create_infer_request()
        return entry, request

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for the background static compiles ("auto" shapes) started so far.

        Arguments:
          timeout: seconds to wait in all (None: until done).
        Returns:
          True when none is left running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._pool_lock:
                threads = list(self._pending.values())
            if not threads:
                return True
            for thread in threads:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
                if deadline is not None and time.monotonic() >= deadline:
                    with self._pool_lock:
                        return not self._pending

    def _signature(self) -> dict[str, Port] | None:
        wanted = {t.name for t in self.info.inputs + self.info.outputs}
        out: dict[str, Port] = {}
        ports = [("input", p) for p in self.model.inputs]
        ports += [("output", p) for p in self.model.outputs]
        for direction, port in ports:
            names = port.get_names()
            name = next(iter(sorted(names & wanted)), port.get_any_name())
            shape = port.get_partial_shape()
            if shape.rank.is_dynamic:
                return None  # nothing to compare before a run
            try:
                dtype: str | None = np.dtype(port.get_element_type().to_dtype()).name
            except Exception:  # noqa: BLE001 - an element type numpy has no name for
                dtype = None
            dims = tuple(d.get_length() if d.is_static else None for d in shape)
            out[name] = Port(direction, dtype, dims)
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
        self.settle()  # no compile outlives the backend
        with self._pool_lock:
            self._compiled.clear()
            self._dynamic = None
