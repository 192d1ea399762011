"""Jetson hardware telemetry from NVIDIA's ``tegrastats`` (torch-free, stdlib only).

``parse_line(line)`` turns one line of ``tegrastats`` output into a :class:`TegraSample`
(the parser and the table of spellings it accepts are in
:mod:`rapsam_edge.profile.tegrastats_parse`); ``TegraStatsSampler`` runs
``tegrastats --interval N`` next to a measurement and summarises power, temperatures and
clocks over it (a no-op where ``tegrastats`` is not installed).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError, InputError
from .tegrastats_parse import INPUT_RAILS, CpuCore, TegraSample, parse_line

__all__ = [
    "INPUT_RAILS",
    "CpuCore",
    "TegraSample",
    "TegraStatsSampler",
    "parse_line",
    "summarize",
]


# ------------------------------------------------------------------ summary
def _mean(values: list[float]) -> float | None:
    return round(math.fsum(values) / len(values), 3) if values else None


def summarize(samples: Iterable[TegraSample]) -> dict[str, Any]:
    """Summarise parsed samples (e.g. those a :class:`TegraStatsSampler` recorded).

    Arguments:
      samples: :class:`TegraSample` objects, in any order.
    Returns:
      JSON-ready dict: ``samples`` (count); ``power_w`` {rail: {mean, max}} of the rails'
      current values in W; ``input_power_w`` {rail, mean, max} (W) or None when no
      module-input rail was reported; ``temperature_max_c`` {sensor: max °C};
      ``gpu_load_pct_mean``, ``gpu_freq_mhz_mean``, ``emc_load_pct_mean``,
      ``cpu_load_pct_mean`` and ``cpu_freq_mhz_mean`` (over online cores and samples; None
      where never reported); ``ram_used_mb_max``.
    """
    samples = list(samples)
    rails: dict[str, list[float]] = {}
    temps: dict[str, float] = {}
    inputs: dict[str, list[float]] = {}
    gpu_load, gpu_freq, emc_load, cpu_load, cpu_freq, ram = [], [], [], [], [], []
    for s in samples:
        for name, (current, _avg) in s.rails.items():
            rails.setdefault(name, []).append(current / 1000.0)
        if s.input_power_rail is not None and s.input_power_mw is not None:
            inputs.setdefault(s.input_power_rail, []).append(s.input_power_mw / 1000.0)
        for name, value in s.temperatures.items():
            temps[name] = max(value, temps.get(name, value))
        if s.gpu_load_pct is not None:
            gpu_load.append(s.gpu_load_pct)
        if s.gpu_freq_mhz is not None:
            gpu_freq.append(s.gpu_freq_mhz)
        if s.emc_load_pct is not None:
            emc_load.append(s.emc_load_pct)
        for c in s.cpus:
            if c.load_pct is not None:
                cpu_load.append(c.load_pct)
            if c.freq_mhz is not None:
                cpu_freq.append(c.freq_mhz)
        ram.append(s.ram_used_mb)
    input_power = None
    if inputs:
        rail = next(r for r in INPUT_RAILS if r in inputs)
        input_power = {
            "rail": rail,
            "mean": _mean(inputs[rail]),
            "max": round(max(inputs[rail]), 3),
        }
    return {
        "samples": len(samples),
        "power_w": {
            name: {"mean": _mean(values), "max": round(max(values), 3)}
            for name, values in rails.items()
        },
        "input_power_w": input_power,
        "temperature_max_c": temps,
        "gpu_load_pct_mean": _mean(gpu_load),
        "gpu_freq_mhz_mean": _mean(gpu_freq),
        "emc_load_pct_mean": _mean(emc_load),
        "cpu_load_pct_mean": _mean(cpu_load),
        "cpu_freq_mhz_mean": _mean(cpu_freq),
        "ram_used_mb_max": max(ram) if ram else None,
    }


# ------------------------------------------------------------------ sampler
class TegraStatsSampler:
    """Records ``tegrastats`` next to a measurement::

        with TegraStatsSampler(interval_ms=100) as tegra:
            run_the_benchmark()
        report["telemetry"] = tegra.summary() if tegra.available else None

    On entry it starts ``tegrastats --interval <interval_ms>`` (in its own process group)
    and a daemon thread that parses its lines; on exit it stops the process (SIGTERM, then
    SIGKILL after 2 s), reaps it and joins the thread, also when the body raised. Where the
    executable is not on ``PATH`` (any non-Jetson machine) ``available`` is False and the
    sampler records nothing, without error.

    Arguments:
      interval_ms: tegrastats' sampling period in ms (>= 1; tegrastats' own default is
        1000; 100 resolves per-second power swings).
      executable: the program name or path (default ``tegrastats``).
    Raises:
      ConfigError: ``interval_ms`` is not a positive int.
    Note:
      ``tegrastats`` shows the GPU clock only when run as root on some versions; power
      rails and temperatures are shown to any user.
    """

    def __init__(self, interval_ms: int = 100, *, executable: str = "tegrastats") -> None:
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms < 1:
            raise ConfigError(f"interval_ms must be a positive int, got {interval_ms!r}")
        self.interval_ms = interval_ms
        self.executable = shutil.which(executable)
        self._samples: list[TegraSample] = []
        self._skipped = 0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._started = self._stopped = 0.0
        self._closed = False
        self._error: str | None = None

    @property
    def available(self) -> bool:
        """True when the ``tegrastats`` executable was found on this machine (and, once
        started, could be run)."""
        return self.executable is not None and self._error is None

    @property
    def error(self) -> str | None:
        """Why ``tegrastats`` could not be started (e.g. ``PermissionError: ...``), or None."""
        return self._error

    @property
    def samples(self) -> list[TegraSample]:
        """The samples parsed so far (a copy)."""
        with self._lock:
            return list(self._samples)

    @property
    def skipped_lines(self) -> int:
        """Lines the process printed that were not tegrastats samples."""
        return self._skipped

    def __enter__(self) -> TegraStatsSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start ``tegrastats`` and the reader thread (a no-op when not ``available``; when
        the executable exists but cannot be run, ``available`` turns False and ``error``
        says why, without raising)."""
        if not self.available or self._proc is not None:
            return
        assert self.executable is not None
        self._started = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                [self.executable, "--interval", str(self.interval_ms)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=os.name == "posix",
            )
        except OSError as e:
            self._error = f"{type(e).__name__}: {e}"
            return
        self._thread = threading.Thread(
            target=self._read, args=(self._proc,), name="tegrastats-reader", daemon=True
        )
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if not line.strip():
                    continue
                try:
                    sample = parse_line(line)
                except InputError:
                    self._skipped += 1
                    continue
                with self._lock:
                    self._samples.append(sample)
        except (OSError, ValueError):  # the pipe was closed under us by stop()
            pass

    def _signal(self, sig: int) -> None:
        proc = self._proc
        assert proc is not None
        if os.name == "posix":
            try:
                os.killpg(proc.pid, sig)  # the whole group: a wrapper script's children too
                return
            except (ProcessLookupError, PermissionError):
                pass
        if proc.poll() is None:
            proc.send_signal(sig)

    def stop(self) -> dict[str, Any]:
        """Stop and reap ``tegrastats`` and join the reader thread (idempotent).

        Returns:
          :meth:`summary`.
        """
        proc = self._proc
        if proc is not None and not self._closed:
            self._closed = True
            self._stopped = time.monotonic()
            # signal the group even when the leader already exited: a child of a wrapper
            # script may still hold the pipe open
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))
                proc.wait()
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            if proc.stdout is not None:
                proc.stdout.close()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """What was recorded so far.

        Returns:
          :func:`summarize` of the samples, plus ``available``, ``error`` (why it could
          not start, or None), ``interval_ms``, ``skipped_lines`` and ``duration_s`` (wall
          time tegrastats ran, s).
        """
        end = self._stopped or (time.monotonic() if self._proc is not None else 0.0)
        return {
            "available": self.available,
            "error": self._error,
            "interval_ms": self.interval_ms,
            "skipped_lines": self._skipped,
            "duration_s": round(end - self._started, 3) if self._proc is not None else 0.0,
            **summarize(self.samples),
        }
