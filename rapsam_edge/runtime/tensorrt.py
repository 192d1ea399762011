"""Native TensorRT backend: engine built from the bundle's ONNX, cached on disk, run with
CUDA buffers from ``cuda-python`` (no torch, no pycuda).

Engine build (TensorRT >= 10, named-tensor API):
  * ``OnnxParser`` on the bundle's ONNX; one optimisation profile covering the dynamic axes
    (batch 1..max_batch, H / W from ``min_side`` to the bundle's long side in multiples of
    the pad divisor, feature sizes derived from the manifest's "H/8"-style axes, prompts
    1..max_prompts);
  * precision "fp32", "fp16" (``BuilderFlag.FP16`` on TensorRT 10; TensorRT 11 removed the
    weak-typing flags, so there fp16 needs an FP16 ONNX and we refuse with a clear error) or
    "int8" (explicit quantization only: the ONNX must carry Q/DQ nodes, built strongly
    typed; TensorRT's implicit calibration API is deprecated in 10.x and gone in 11).
Engine cache: ``<cache_dir>/<gpu name>-sm<cc>/trt-<version>/<graph>-<precision>-<onnx
sha256[:16]>-<profile hash>.engine`` (default cache_dir ``~/.cache/rapsam_edge/tensorrt``),
written atomically; a stale / unreadable engine is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle, TensorSpec
from ..contract.shared import MAX_PROMPTS
from ..errors import BackendError, ConfigError, InputError, MissingDependencyError
from .base import Backend

__all__ = ["PRECISIONS", "ShapeProfile", "TensorRTBackend", "engine_cache_path"]

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_CACHE = Path.home() / ".cache" / "rapsam_edge" / "tensorrt"


def _cudart() -> Any:
    """cuda-python's runtime bindings (module path changed in cuda-python 12.6)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart  # cuda-python < 12.6
    return cudart


def _ck(result: Any) -> Any:
    """cuda-python calls return (error, *values): raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        cudart = _cudart()
        _, msg = cudart.cudaGetErrorString(err)
        raise BackendError(
            f"CUDA error {int(err)}: {msg.decode() if isinstance(msg, bytes) else msg}"
        )
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class ShapeProfile:
    """Ranges of the dynamic axes for the engine's optimisation profile.

    ``max_side`` / ``opt_hw`` default to the bundle's long side (opt: a 3:4 landscape frame).
    """

    max_batch: int = 1
    min_side: int = 64
    max_side: int | None = None
    opt_hw: tuple[int, int] | None = None
    opt_prompts: int = 8
    #: the engine takes as many prompts per call as a Segmenter accepts (the contract's
    #: MAX_PROMPTS: a narrower profile would fail a call the Segmenter let through)
    max_prompts: int = MAX_PROMPTS

    def axis_ranges(self, bundle: Bundle) -> dict[str, tuple[int, int, int]]:
        """Axis name ("B", "H", "W", "P") -> (min, opt, max)."""
        div = bundle.input.pad_divisor
        side = self.max_side or bundle.input.long_side
        if self.opt_hw is None:
            opt_h = max(self.min_side, -(-(side * 3 // 4) // div) * div)
            opt_hw = (min(opt_h, side), side)
        else:
            opt_hw = self.opt_hw
        return {
            "B": (1, 1, self.max_batch),
            "H": (self.min_side, opt_hw[0], side),
            "W": (self.min_side, opt_hw[1], side),
            "P": (1, min(self.opt_prompts, self.max_prompts), self.max_prompts),
        }


def _dim_range(
    dim: int | str, axes: Mapping[str, tuple[int, int, int]], where: str
) -> tuple[int, int, int]:
    if isinstance(dim, int):
        return dim, dim, dim
    m = re.fullmatch(r"([A-Za-z]+)(?:/(\d+))?", dim)
    if not m or m.group(1) not in axes:
        raise ConfigError(
            f"{where}: cannot map dynamic axis {dim!r} to a profile range (known: {sorted(axes)})"
        )
    div = int(m.group(2) or 1)
    lo, opt, hi = axes[m.group(1)]
    return max(1, lo // div), max(1, opt // div), max(1, hi // div)


def profile_shapes(
    specs: tuple[TensorSpec, ...], axes: Mapping[str, tuple[int, int, int]], *, where: str
) -> dict[str, tuple[tuple[int, ...], ...]]:
    """input name -> (min shape, opt shape, max shape)."""
    out = {}
    for s in specs:
        ranges = [_dim_range(d, axes, f"{where}.{s.name}") for d in s.shape]
        out[s.name] = tuple(tuple(r[k] for r in ranges) for k in range(3))
    return out


def _gpu_key(device_id: int) -> str:
    cudart = _cudart()
    prop = _ck(cudart.cudaGetDeviceProperties(device_id))
    name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip("\x00 ").strip())
    return f"{name}-sm{prop.major}{prop.minor}"


def engine_cache_path(
    cache_dir: Path,
    gpu_key: str,
    trt_version: str,
    graph: str,
    precision: str,
    onnx_sha256: str,
    profile: Mapping[str, Any],
) -> Path:
    """Where the engine for this (GPU, TensorRT, precision, ONNX, profile) lives."""
    ph = hashlib.sha256(json.dumps(profile, sort_keys=True).encode()).hexdigest()[:8]
    return (
        cache_dir
        / gpu_key
        / f"trt-{trt_version}"
        / f"{graph}-{precision}-{onnx_sha256[:16]}-{ph}.engine"
    )


class TensorRTBackend(Backend):
    """One graph as a TensorRT engine (built from the bundle's ONNX, cached on disk).

    Concurrency: one execution context and one set of device buffers, so ``run`` is
    serialised by the base class's lock.
    """

    name = "tensorrt"
    install_hint = "pip install 'rapsam-edge[tensorrt]'"

    @classmethod
    def devices(cls) -> list[str] | None:
        try:
            err, count = _cudart().cudaGetDeviceCount()
        except Exception:  # noqa: BLE001 - no CUDA runtime: no device list to offer
            return None
        return [f"cuda:{i}" for i in range(count)] if int(err) == 0 and count else None

    @classmethod
    def library_version(cls) -> str:
        import tensorrt

        return f"tensorrt {tensorrt.__version__}"

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        try:
            if importlib.util.find_spec("tensorrt") is None:
                return f"tensorrt is not installed ({cls.install_hint})"
        except (ImportError, ValueError):
            return "tensorrt is not importable"
        try:
            cudart = _cudart()
        except ImportError:
            return "cuda-python is not installed"
        try:
            err, count = cudart.cudaGetDeviceCount()
        except Exception as e:  # noqa: BLE001 - a missing / broken driver library, reported
            return f"CUDA runtime unusable: {e}"
        if int(err) != 0 or count == 0:
            return "no CUDA device"
        dev = _device_id(device)
        if dev >= count:
            return f"cuda:{dev} requested, {count} CUDA device(s) present"
        import tensorrt as trt

        if int(trt.__version__.split(".")[0]) < 10:
            return f"tensorrt {trt.__version__} < 10 (named-tensor API needed)"
        return None

    def _open(
        self,
        bundle: Bundle,
        device: str | None,
        *,
        precision: str = "fp16",
        profile: ShapeProfile | None = None,
        cache_dir: str | Path | None = None,
        workspace_mib: int = 1024,
        rebuild: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision {precision!r}: choose from {PRECISIONS}")
        import tensorrt as trt

        self._trt = trt
        self._cudart = _cudart()
        self.device_id = _device_id(device)
        self.device = f"cuda:{self.device_id}"
        _ck(self._cudart.cudaSetDevice(self.device_id))
        graph = self.graph
        self.precision = precision
        self.profile = profile or ShapeProfile()
        axes = self.profile.axis_ranges(bundle)
        self.shapes = profile_shapes(self.info.inputs, axes, where=f"tensorrt/{graph}")
        onnx_rel = self.info.files["onnx"]
        self.engine_path = engine_cache_path(
            Path(cache_dir) if cache_dir else DEFAULT_CACHE,
            _gpu_key(self.device_id),
            trt.__version__,
            graph,
            precision,
            bundle.files[onnx_rel],
            {"shapes": self.shapes, "workspace_mib": workspace_mib},
        )
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.engine = None if rebuild else self._load_engine()
        if self.engine is None:
            blob = self._build(bundle.graph_path(graph, "onnx"), workspace_mib)
            self._save(blob)
            self.engine = trt.Runtime(self._logger).deserialize_cuda_engine(blob)
            if self.engine is None:
                raise BackendError(
                    f"tensorrt: could not deserialize the engine just built for {graph}"
                )
        self.context = self.engine.create_execution_context()
        self.stream = _ck(self._cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device ptr, bytes)
        self._dtypes = {
            n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n)))
            for n in self.input_names + self.output_names
        }
        log.info("tensorrt: %s %s engine %s", graph, precision, self.engine_path)

    # -- engine build / cache -------------------------------------------------------------

    def _load_engine(self) -> Any:
        if not self.engine_path.is_file():
            return None
        engine = self._trt.Runtime(self._logger).deserialize_cuda_engine(
            self.engine_path.read_bytes()
        )
        if engine is None:
            log.warning("tensorrt: cached engine %s unreadable; rebuilding", self.engine_path)
        return engine

    def _save(self, blob: bytes) -> None:
        self.engine_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.engine_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(blob)
        os.replace(tmp, self.engine_path)

    def _build(self, onnx_path: Path, workspace_mib: int) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        flags = 0
        strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if self.precision == "int8":
            if not _has_qdq(onnx_path):
                raise ConfigError(
                    "tensorrt int8 needs an explicitly quantized ONNX (QuantizeLinear / "
                    "DequantizeLinear nodes, e.g. from the bundle's ORT QDQ export); "
                    "implicit calibration is not supported"
                )
            if strongly_typed is not None:
                flags |= 1 << int(strongly_typed)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"tensorrt: cannot parse {onnx_path.name}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
        if self.precision == "fp16":
            if not hasattr(trt.BuilderFlag, "FP16"):
                raise ConfigError(
                    f"tensorrt {trt.__version__} builds strongly typed networks only: fp16 "
                    "needs an FP16 ONNX (not produced by this bundle); use precision='fp32'"
                )
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.precision == "int8" and not flags and hasattr(trt.BuilderFlag, "INT8"):
            config.set_flag(trt.BuilderFlag.INT8)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            name = network.get_input(i).name
            if name not in self.shapes:
                raise BackendError(f"tensorrt: ONNX input {name!r} is not in the manifest")
            profile.set_shape(name, *self.shapes[name])
        config.add_optimization_profile(profile)
        log.info(
            "tensorrt: building %s (%s, profile %s); this can take minutes",
            self.graph,
            self.precision,
            self.shapes,
        )
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise BackendError(
                f"tensorrt: engine build failed for {self.graph} (see the TensorRT log above)"
            )
        return bytes(blob)

    # -- execution ------------------------------------------------------------------------

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _ck(self._cudart.cudaFree(ptr))
            size = max(nbytes, 256)
            ptr = int(_ck(self._cudart.cudaMalloc(size)))
            self._buffers[name] = (ptr, size)
        return ptr

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, ctx = self._cudart, self.context
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _ck(cudart.cudaSetDevice(self.device_id))
        for name in self.input_names:
            arr = feeds[name]
            if arr.dtype != self._dtypes[name]:
                arr = arr.astype(self._dtypes[name])
                feeds[name] = arr  # keep alive until the stream syncs
            if not ctx.set_input_shape(name, arr.shape):
                lo, _, hi = self.shapes[name]
                raise InputError(
                    f"tensorrt/{self.graph}: {name} shape {arr.shape} is outside "
                    f"the engine's profile {lo}..{hi}; rebuild with a larger "
                    "ShapeProfile"
                )
            ptr = self._buffer(name, arr.nbytes)
            _ck(cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, self.stream))
            ctx.set_tensor_address(name, ptr)
        outputs = {}
        for name in self.output_names:
            shape = tuple(ctx.get_tensor_shape(name))
            host = np.empty(shape, dtype=self._dtypes[name])
            outputs[name] = host
            ctx.set_tensor_address(name, self._buffer(name, host.nbytes))
        if not ctx.execute_async_v3(int(self.stream)):
            raise BackendError(f"tensorrt/{self.graph}: execute_async_v3 failed")
        for name, host in outputs.items():
            ptr = self._buffers[name][0]
            _ck(cudart.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, d2h, self.stream))
        _ck(cudart.cudaStreamSynchronize(self.stream))
        return {n: outputs[n].astype(np.float32, copy=False) for n in self.output_names}

    def _close(self) -> None:
        """Free the CUDA buffers and the stream (also done on garbage collection)."""
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr, _ in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(ptr)
        self._buffers = {}
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)
            self.stream = None

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # noqa: BLE001 - __del__ must not raise (shutdown may have torn CUDA down)
            pass

    def describe(self) -> dict[str, Any]:
        return {
            "engine": str(self.engine_path),
            "precision": self.precision,
            "profile": asdict(self.profile),
            "shapes": self.shapes,
        }

    def __repr__(self) -> str:
        return (
            f"TensorRTBackend(graph={self.graph!r}, device={self.device!r}, "
            f"precision={self.precision!r})"
        )


def _device_id(device: str | None) -> int:
    if device in (None, "cuda", "gpu"):
        return 0
    if isinstance(device, str) and device.startswith("cuda:"):
        return int(device.split(":", 1)[1])
    raise ConfigError(f"tensorrt device must be 'cuda' or 'cuda:N', got {device!r}")


def _has_qdq(onnx_path: Path) -> bool:
    """True when the ONNX has QuantizeLinear / DequantizeLinear nodes, read with ``onnx``.

    Raises:
      MissingDependencyError: ``onnx`` is not installed (needed to build an int8 engine:
        without it the graph cannot be inspected, and a byte search for the op names would
        guess).
    """
    try:
        import onnx
    except ImportError as e:
        raise MissingDependencyError(
            f"tensorrt int8: checking that {onnx_path.name} is explicitly quantized (Q/DQ "
            "nodes) needs the onnx package, which is not installed",
            hint="pip install onnx (or build precision='fp16' / 'fp32')",
        ) from e
    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
