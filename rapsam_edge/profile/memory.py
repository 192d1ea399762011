"""Memory next to a measurement (torch-free, stdlib only; NVML optional).

* ``peak_rss_mib()`` / ``current_rss_mib()``: this process's resident memory.
* ``gpu_memory()``: used / total memory per NVIDIA GPU through NVML (``pynvml``, from the
  ``nvidia-ml-py`` package, imported lazily); None where NVML is not installed or there is
  no driver or GPU, never an error.
* ``GpuMemorySampler``: polls NVML in a thread and reports the peak used memory per GPU.
* ``MemoryTracker``: RSS at entry and exit and its peak over a block, plus GPU memory.

MiB everywhere (2**20 bytes).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigError, MissingDependencyError

__all__ = [
    "GpuMemorySampler",
    "MemoryTracker",
    "current_rss_mib",
    "gpu_memory",
    "peak_rss_mib",
]

_MIB = float(1 << 20)
_STATM = Path("/proc/self/statm")


def peak_rss_mib() -> float:
    """Peak resident set size of this process since it started, in MiB.

    From ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: KiB on Linux, bytes on macOS. It
    is a high-water mark over the process's life, so it never goes down.

    Raises:
      MissingDependencyError: the platform has no ``resource`` module (Windows).
    """
    try:
        import resource
    except ImportError as e:  # Windows
        raise MissingDependencyError(
            "peak RSS needs the POSIX `resource` module, absent on this platform",
            hint="measure on Linux (the Jetson targets) or macOS",
        ) from e
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024.0


def current_rss_mib() -> float | None:
    """Resident set size of this process now, in MiB, from ``/proc/self/statm`` (resident
    pages x page size); None where there is no ``/proc`` (macOS, Windows)."""
    try:
        resident_pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / _MIB


# ------------------------------------------------------------------ NVML
def _nvml_error(nvml: ModuleType) -> type[BaseException]:
    err = getattr(nvml, "NVMLError", None)
    return err if isinstance(err, type) and issubclass(err, BaseException) else OSError


def _nvml_init() -> ModuleType | None:
    """``pynvml`` initialised, or None where it is not installed or NVML cannot start (no
    driver, no GPU). A successful call must be paired with ``nvmlShutdown()``."""
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
    except (_nvml_error(nvml), OSError, AttributeError):
        return None
    return nvml


def _name(nvml: ModuleType, handle: Any) -> str:
    name = nvml.nvmlDeviceGetName(handle)
    return name.decode(errors="replace") if isinstance(name, bytes) else str(name)


def _devices(nvml: ModuleType) -> list[dict[str, Any]]:
    """{index, name, handle, total_mib, used_mib} of every GPU NVML can report memory for
    (devices whose memory query fails, e.g. unsupported on a Jetson iGPU, are left out)."""
    errors = (_nvml_error(nvml), OSError, AttributeError)
    out: list[dict[str, Any]] = []
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except errors:
        return out
    for i in range(count):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = _name(nvml, handle)
        except errors:
            continue
        out.append(
            {
                "index": i,
                "name": name,
                "handle": handle,
                "total_mib": info.total / _MIB,
                "used_mib": info.used / _MIB,
            }
        )
    return out


def gpu_memory() -> list[dict[str, Any]] | None:
    """Memory of each NVIDIA GPU now, through NVML.

    Returns:
      one dict per GPU, ``{index, name, used_mib, total_mib}`` (MiB; ``used`` is the whole
      device's, all processes together), or None when ``pynvml`` (``pip install
      nvidia-ml-py``) is not installed, NVML cannot start (no driver / no GPU) or reports
      no device. Never raises for any of these.
    """
    nvml = _nvml_init()
    if nvml is None:
        return None
    try:
        devices = _devices(nvml)
    finally:
        _shutdown(nvml)
    if not devices:
        return None
    return [{k: d[k] for k in ("index", "name", "used_mib", "total_mib")} for d in devices]


def _shutdown(nvml: ModuleType) -> None:
    try:
        nvml.nvmlShutdown()
    except (_nvml_error(nvml), OSError, AttributeError):
        pass


def _check_interval(interval_ms: object, *, allow_none: bool = False) -> None:
    if interval_ms is None and allow_none:
        return
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms < 1:
        raise ConfigError(f"interval_ms must be a positive int, got {interval_ms!r}")


class GpuMemorySampler:
    """Peak GPU memory over a block, by polling NVML in a daemon thread::

        with GpuMemorySampler(interval_ms=50) as gpu:
            run_the_benchmark()
        gpu.summary()   # [{index, name, total_mib, used_mib_at_entry, peak_used_mib, ...}]

    Used memory is the device's (NVML's ``nvmlDeviceGetMemoryInfo``), so other processes
    on the GPU count too; the peak is the highest value seen at the polls (and at entry and
    exit), so an allocation shorter than ``interval_ms`` can be missed. Where NVML is not
    available (no ``pynvml``, no driver, no GPU) ``available`` is False and the sampler does
    nothing.

    Arguments:
      interval_ms: polling period in ms (>= 1).
    Raises:
      ConfigError: ``interval_ms`` is not a positive int.
    """

    def __init__(self, interval_ms: int = 50) -> None:
        _check_interval(interval_ms)
        self.interval_ms = interval_ms
        self._nvml: ModuleType | None = None
        self._devices: list[dict[str, Any]] = []
        self._peak: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.available = False

    def __enter__(self) -> GpuMemorySampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Initialise NVML, take the first reading and start polling (no-op without NVML)."""
        if self._nvml is not None or self._thread is not None:
            return
        nvml = _nvml_init()
        if nvml is None:
            return
        devices = _devices(nvml)
        if not devices:
            _shutdown(nvml)
            return
        self._nvml, self._devices, self.available = nvml, devices, True
        for d in devices:
            self._peak[d["index"]] = self._last[d["index"]] = d["used_mib"]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nvml-memory", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        nvml = self._nvml
        assert nvml is not None
        errors = (_nvml_error(nvml), OSError, AttributeError)
        for d in self._devices:
            try:
                used = nvml.nvmlDeviceGetMemoryInfo(d["handle"]).used / _MIB
            except errors:
                continue
            with self._lock:
                i = d["index"]
                self._last[i] = used
                self._peak[i] = max(self._peak[i], used)
        self._polls += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000.0):
            self._poll()

    def stop(self) -> list[dict[str, Any]] | None:
        """Take a last reading, stop polling and shut NVML down (idempotent).

        Returns:
          :meth:`summary`.
        """
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._poll()
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None
        return self.summary()

    def summary(self) -> list[dict[str, Any]] | None:
        """Per GPU ``{index, name, total_mib, used_mib_at_entry, used_mib_last,
        peak_used_mib, peak_growth_mib, polls}`` (MiB), or None when NVML was not available.
        """
        if not self.available:
            return None
        with self._lock:
            return [
                {
                    "index": d["index"],
                    "name": d["name"],
                    "total_mib": d["total_mib"],
                    "used_mib_at_entry": d["used_mib"],
                    "used_mib_last": self._last[d["index"]],
                    "peak_used_mib": self._peak[d["index"]],
                    "peak_growth_mib": self._peak[d["index"]] - d["used_mib"],
                    "polls": self._polls,
                }
                for d in self._devices
            ]


class MemoryTracker:
    """Host memory over a block, plus the GPUs' memory at its end::

        with MemoryTracker() as mem:
            load_and_run_the_model()
        mem.summary()["body_peak_rss_mib"]

    At entry it reads the RSS and the process's peak RSS so far; at exit it reads them
    again. Because the process peak (``ru_maxrss``) is a lifetime high-water mark, a block
    that stays below an earlier peak does not move it; so the tracker also samples the
    current RSS every ``interval_ms`` in a daemon thread (Linux ``/proc``), and
    ``body_peak_rss_mib`` is the larger of those samples and, when the high-water mark rose
    during the block, the new mark (exact in that case).

    Arguments:
      interval_ms: RSS sampling period in ms, or None for entry/exit readings only.
      gpu: read ``gpu_memory()`` at exit (use :class:`GpuMemorySampler` for GPU peaks).
    Raises:
      ConfigError: ``interval_ms`` is neither None nor a positive int.
    """

    def __init__(self, interval_ms: int | None = 20, *, gpu: bool = True) -> None:
        _check_interval(interval_ms, allow_none=True)
        self.interval_ms = interval_ms
        self.gpu = gpu
        self._entry_rss: float | None = None
        self._exit_rss: float | None = None
        self._entry_peak: float | None = None
        self._exit_peak: float | None = None
        self._sampled_max: float | None = None
        self._samples = 0
        self._gpu: list[dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> MemoryTracker:
        self._entry_peak = _peak_or_none()
        self._entry_rss = current_rss_mib()
        self._note(self._entry_rss)
        if self.interval_ms is not None and self._entry_rss is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._exit_rss = current_rss_mib()
        self._note(self._exit_rss)
        self._exit_peak = _peak_or_none()
        if self.gpu:
            self._gpu = gpu_memory()

    def _note(self, rss: float | None) -> None:
        if rss is None:
            return
        with self._lock:
            self._samples += 1
            if self._sampled_max is None or rss > self._sampled_max:
                self._sampled_max = rss

    def _run(self) -> None:
        assert self.interval_ms is not None
        while not self._stop.wait(self.interval_ms / 1000.0):
            self._note(current_rss_mib())

    def summary(self) -> dict[str, Any]:
        """The readings (MiB; None where the platform cannot tell).

        Returns:
          ``rss_at_entry_mib``, ``rss_at_exit_mib`` (current RSS), ``peak_rss_at_entry_mib``
          and ``peak_rss_mib`` (the process's high-water mark at entry / at exit),
          ``peak_rss_growth_mib`` (how much the block raised it; 0 when it stayed below an
          earlier peak), ``body_peak_rss_mib`` (see the class doc), ``rss_samples``, and
          ``gpu`` (``gpu_memory()`` at exit, or None).
        """
        body_peak = self._sampled_max
        growth = None
        if self._entry_peak is not None and self._exit_peak is not None:
            if self._exit_peak > self._entry_peak:  # the block raised the high-water mark
                body_peak = max(body_peak or 0.0, self._exit_peak)
            growth = max(0.0, self._exit_peak - self._entry_peak)
        return {
            "rss_at_entry_mib": self._entry_rss,
            "rss_at_exit_mib": self._exit_rss,
            "peak_rss_at_entry_mib": self._entry_peak,
            "peak_rss_mib": self._exit_peak,
            "peak_rss_growth_mib": growth,
            "body_peak_rss_mib": body_peak,
            "rss_samples": self._samples,
            "gpu": self._gpu,
        }


def _peak_or_none() -> float | None:
    try:
        return peak_rss_mib()
    except MissingDependencyError:
        return None
