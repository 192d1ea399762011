"""What every benchmark shares: one line describing the machine it ran on, the writer of its
results (a Markdown table and its JSON data under benchmarks/results/), frames of the
sample clip and the OpenVINO CPU settings of the timing benchmarks."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    cpu = platform.processor() or "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu}"


RESULTS = Path(__file__).resolve().parent / "results"


def write_results(stem: str, lines: list[str], payload: object) -> Path:
    """Write a benchmark's table (``results/STEM.md``, one line per entry of ``lines``) and
    its data (``results/STEM.json``); returns the Markdown path."""
    import json

    RESULTS.mkdir(parents=True, exist_ok=True)
    md = RESULTS / f"{stem}.md"
    md.write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    return md


def clip_frames(n: int, hw: tuple[int, int], *, rgb: bool = False) -> list:
    """Up to ``n`` frames of the shipped sample clip, resized to ``hw`` (H, W): H x W x 3
    uint8, BGR (OpenCV's order) or RGB."""
    import cv2

    from rapsam_edge.assets import sample_clip

    cap = cv2.VideoCapture(str(sample_clip()))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frame = cv2.resize(frame, (hw[1], hw[0]))
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if rgb else frame)
    cap.release()
    return out


def ov_cpu_config(threads: int) -> dict:
    """OpenVINO CPU plugin settings of the timing benchmarks: LATENCY hint, ``threads``
    inference threads and f32 precision, as the runtime's OpenVINO backend sets for FP32
    bundles (the plugin's own default is bf16 on CPUs that have it)."""
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",
    }
