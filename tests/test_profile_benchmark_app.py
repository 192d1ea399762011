"""Cross-check: the profiler's encoder p50 agrees with OpenVINO's own ``benchmark_app`` on the
same IR and thread count.

Settings, on the shipped bundle (edge-xs, long side 320): a 640 x 480 frame letterboxes to
the network input H x W (``ops.letterbox``; 256 x 320). ``benchmark_app -m encoder.xml -d CPU
-hint none -nstreams 1 -nthreads 2 -nireq 1 -api sync -infer_precision f32 -data_shape
image[1,H,W,3] -t 1``: one stream of two threads, synchronous, FP32 like the runtime's
``INFERENCE_PRECISION_HINT=f32`` (both pin threads: ENABLE_CPU_PINNING is YES in each). The
IR's input stays dynamic (no ``-shape``) because the runtime compiles it that way; a static
``-shape image[1,H,W,3]`` compiles a different model that runs ~15-25 % faster here. Against
``run_profile(mode="panoptic", threads=2, warmup=20, iters=100)`` on the ``openvino``
backend, ``stages.encoder.p50``. Five rounds, interleaved (benchmark_app, profiler,
benchmark_app, ...); the median of each side is compared.

Tolerance: |profiler - benchmark_app| <= max(35 % of benchmark_app, 1.5 ms). Measured on a
2-core VM (AMD EPYC, AVX-512, other VMs on the host), 8 runs of this test: benchmark_app
medians 3.55-3.98 ms (one 5.38), profiler 4.31-4.79 ms; profiler / benchmark_app 1.15-1.29
(one 0.80, when benchmark_app hit host noise), i.e. the profiler +0.6..+1.05 ms. The gap is
real, not error: the profiler times ``Backend.run`` where the pipeline calls it, with the
decoder and post-processing in between; in one process, back-to-back encoder runs take
3.7-3.8 ms, the same runs 2 ms apart 4.2 ms, and the encoder inside ``panoptic`` 4.2 ms
(OpenVINO's workers go idle and the caches cool between frames; ``Backend.run``'s own feed
checks and copies cost < 0.1 ms), while benchmark_app calls ``infer()`` back to back. Host
noise moves single benchmark_app medians between ~3.5 and ~5.5 ms, hence the 1.5 ms floor.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge import ops
from rapsam_edge.assets import default_bundle
from rapsam_edge.bundle import load_bundle
from rapsam_edge.contract.shared import THREADS_ENV_VAR as ENV_VAR
from rapsam_edge.profile.runner import ProfileConfig, Target, run_profile

pytest.importorskip("openvino")

THREADS = 2
ROUNDS = 5
SECONDS = 1
#: |profiler p50 - benchmark_app median| <= max(REL_TOL * benchmark_app, ABS_TOL_MS)
REL_TOL = 0.35
ABS_TOL_MS = 1.5
MEDIAN = re.compile(r"Median:\s+([0-9.]+)\s*ms")


def _benchmark_app() -> str:
    local = Path(sys.executable).parent / "benchmark_app"
    found = str(local) if local.exists() else shutil.which("benchmark_app")
    if found is None:
        pytest.skip("OpenVINO's benchmark_app is not installed next to this Python")
    return found


def _input_hw(bundle) -> tuple[int, int]:
    image, _, _ = ops.letterbox(
        np.zeros((480, 640, 3), np.uint8),
        bundle.input.long_side,
        bundle.input.pad_divisor,
        bundle.input.pad_value,
        False,
    )
    return image.shape[0], image.shape[1]


def _bench(cmd: list[str]) -> float:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = MEDIAN.search(proc.stdout)
    assert proc.returncode == 0 and m, proc.stdout[-2000:] + proc.stderr[-2000:]
    return float(m.group(1))


def _profile() -> float:
    report = run_profile(
        ProfileConfig(
            targets=(Target(None, "openvino"),),
            mode="panoptic",
            input_hw=(480, 640),
            threads=THREADS,
            warmup=20,
            iters=100,
            progress=False,
        )
    )
    return report["stages"]["encoder"]["p50"]


def test_encoder_p50_agrees_with_benchmark_app(monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(THREADS))  # run_profile sets it; restored afterwards
    threads_before = ops.num_threads()
    bundle = load_bundle(default_bundle())
    h, w = _input_hw(bundle)
    image = bundle.graphs["encoder"].name_of("image")
    cmd = [
        _benchmark_app(),
        "-m",
        str(bundle.graph_path("encoder", "openvino")),
        "-d",
        "CPU",
        "-hint",
        "none",
        "-nstreams",
        "1",
        "-nthreads",
        str(THREADS),
        "-nireq",
        "1",
        "-api",
        "sync",
        "-infer_precision",
        "f32",
        "-data_shape",
        f"{image}[1,{h},{w},3]",
        "-t",
        str(SECONDS),
    ]
    bench, prof = [], []
    try:
        for _ in range(ROUNDS):
            bench.append(_bench(cmd))
            prof.append(_profile())
    finally:
        if ops.num_threads() != threads_before:
            ops.set_num_threads(threads_before)
    b, p = statistics.median(bench), statistics.median(prof)
    detail = (
        f"benchmark_app {bench} ms (median {b:.2f}), profiler encoder p50 "
        f"{[round(x, 2) for x in prof]} ms (median {p:.2f}), ratio {p / b:.2f}"
    )
    print(detail)
    assert abs(p - b) <= max(REL_TOL * b, ABS_TOL_MS), detail
