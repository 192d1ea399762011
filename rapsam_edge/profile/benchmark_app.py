"""OpenVINO's own ``benchmark_app`` set up to time what the profiler's ``encoder`` stage
times, to cross-check the profiler against the library's tool: the same IR file, input
shape, precision hint, threads and streams.

What makes the two comparable is checked without timing anything (tests/
test_profile_benchmark_app.py): ``encoder_command`` builds the command line,
``parse_benchmark_app`` reads what benchmark_app compiled (input shape, compiled-model
properties) and its median latency, ``compiled_encoder`` reads the same from the runtime's
OpenVINO backend. How close the two latencies are depends on the machine and its load, so it
is measured by benchmarks/bench_profile_vs_benchmark_app.py, not asserted in a test.

The runtime's OpenVINO backend on CPU serves a repeated input shape from a static copy of
the graph (``static_shapes="auto"``, runtime/openvino.py), and the profiler waits for that
copy before timing (``Segmenter.settle``): so the command reshapes the IR to the frame's
network input (``-shape``), as that copy is compiled; ``static=False`` gives the dynamic
model (``-data_shape`` only) for a backend opened with ``static_shapes=False``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .. import ops
from ..contract.graphs import ENCODER

__all__ = [
    "COMPARED_PROPERTIES",
    "BenchmarkAppRun",
    "compiled_encoder",
    "encoder_command",
    "find_benchmark_app",
    "network_input_hw",
    "parse_benchmark_app",
]

#: compiled-model properties that must agree between the runtime and benchmark_app
COMPARED_PROPERTIES = (
    "INFERENCE_PRECISION_HINT",
    "INFERENCE_NUM_THREADS",
    "NUM_STREAMS",
    "PERFORMANCE_HINT",
    "ENABLE_CPU_PINNING",
)
_PROPERTY = re.compile(r"^\[ INFO \]\s{3}([A-Z_]+): (.*)$", re.M)
_INPUT = re.compile(r"^\[ INFO \]\s+(\S+) \(node: [^)]*\) : \S+ / \S+ / (\[[^\]]*\])$", re.M)
_MEDIAN = re.compile(r"Median:\s+([0-9.]+)\s*ms")


class BenchmarkAppRun(NamedTuple):
    """What one benchmark_app run printed: its median latency (ms), the input shapes of the
    model it compiled (name -> "[1,256,320,3]", after any reshape) and the compiled model's
    properties (name -> value as printed)."""

    median_ms: float
    input_shapes: dict[str, str]
    properties: dict[str, str]


def find_benchmark_app() -> str | None:
    """The ``benchmark_app`` next to this Python (the openvino wheel's), else on PATH."""
    local = Path(sys.executable).parent / "benchmark_app"
    return str(local) if local.exists() else shutil.which("benchmark_app")


def network_input_hw(bundle: Any, frame_hw: tuple[int, int]) -> tuple[int, int]:
    """The encoder's input H x W for a frame of ``frame_hw`` (``ops.letterbox`` at the
    bundle's long side and pad divisor, as ``Segmenter.prepare``)."""
    image, _, _ = ops.letterbox(
        np.zeros((*frame_hw, 3), np.uint8),
        bundle.input.long_side,
        bundle.input.pad_divisor,
        bundle.input.pad_value,
        False,
    )
    return int(image.shape[0]), int(image.shape[1])


def encoder_command(
    bundle: Any,
    *,
    frame_hw: tuple[int, int] = (480, 640),
    threads: int = 2,
    static: bool = True,
    niter: int | None = None,
    seconds: int | None = None,
    exe: str = "benchmark_app",
) -> list[str]:
    """benchmark_app on ``bundle``'s encoder IR as the runtime runs it: one stream of
    ``threads`` threads, synchronous, one request, FP32 (the runtime's
    ``INFERENCE_PRECISION_HINT=f32``), the network input of a ``frame_hw`` frame (reshaped
    to it when ``static``); ``niter`` iterations or ``seconds`` seconds."""
    name = bundle.graphs[ENCODER].name_of("image")
    h, w = network_input_hw(bundle, frame_hw)
    shape = f"{name}[1,{h},{w},3]"
    cmd = [exe, "-m", str(bundle.graph_path(ENCODER, "openvino")), "-d", "CPU"]
    cmd += ["-hint", "none", "-nstreams", "1", "-nthreads", str(threads), "-nireq", "1"]
    cmd += ["-api", "sync", "-infer_precision", "f32"]
    cmd += ["-shape", shape] if static else ["-data_shape", shape]
    if niter is not None:
        cmd += ["-niter", str(niter)]
    if seconds is not None:
        cmd += ["-t", str(seconds)]
    return cmd


def parse_benchmark_app(stdout: str) -> BenchmarkAppRun:
    """Read a benchmark_app run's output (``BenchmarkAppRun``).

    Raises:
      ValueError: no median latency in it (the run failed)."""
    m = _MEDIAN.search(stdout)
    if m is None:
        raise ValueError("benchmark_app printed no median latency:\n" + stdout[-2000:])
    listing = stdout.rsplit("Model inputs:", 1)[-1].split("Model outputs:", 1)[0]
    shapes = dict(_INPUT.findall(listing))  # the last listing: after the reshape
    return BenchmarkAppRun(float(m.group(1)), shapes, dict(_PROPERTY.findall(stdout)))


def compiled_encoder(backend: Any) -> list[dict[str, Any]]:
    """The compiled models an OpenVINO backend holds for its graph (the dynamic one and
    any static copies): per model its input shapes (name -> "[...]", as benchmark_app
    prints them) and ``COMPARED_PROPERTIES`` (as printed)."""
    models = [] if backend._dynamic is None else [backend._dynamic.compiled]
    models += [c.compiled for c in backend._compiled.values()]
    out = []
    for model in models:
        shapes = {
            p.get_any_name(): str(p.get_partial_shape()).replace(" ", "") for p in model.inputs
        }
        props = {k: str(model.get_property(k)) for k in COMPARED_PROPERTIES}
        out.append({"input_shapes": shapes, "properties": props})
    return out
