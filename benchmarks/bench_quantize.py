"""FP32 vs INT8 (and FP16 / BF16) per graph, side by side in one process, interleaved: the
speed half of the quantization targets (the accuracy half is `rapsam-edge quantize`'s gate).

    python benchmarks/bench_quantize.py            # shipped edge-xs at 320 + random edge-s at 640

For each model, every graph is converted with the project's own quantizers (ORT static QDQ
with the report's exclusions; OpenVINO NNCF), calibrated on 16 frames of the sample clip,
then each variant of a graph is timed through the runtime backend (2 threads, spin-free ORT,
OpenVINO LATENCY) on the same real inputs, round-robin. Writes
``benchmarks/results/quantize.md`` and ``.json``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import clip_frames, describe, write_results

from rapsam_edge.assets import default_bundle
from rapsam_edge.bundle import load_bundle
from rapsam_edge.deploy.quantize.calibration import graph_feeds
from rapsam_edge.deploy.quantize.derived import write_derived_bundle
from rapsam_edge.runtime.selection import create_backend

REPEATS = 40


def _edge_s(tmp: Path) -> Path:
    import torch

    from rapsam_edge.data.classes import CLASSES
    from rapsam_edge.deploy.bundle_writer import export_bundle
    from rapsam_edge.model import build_model

    torch.manual_seed(0)
    return export_bundle(
        build_model("edge-s", deform=False).eval(),
        tmp / "edge-s",
        name="edge-s-random",
        classes=CLASSES,
        input_size=640,
    )


def _variants(src, tmp: Path, feeds) -> dict[str, tuple[str, object, dict]]:
    """label -> (backend, bundle, backend options)."""
    from rapsam_edge.deploy.backends.onnxruntime.fp16 import convert_ort_fp16
    from rapsam_edge.deploy.backends.onnxruntime.int8 import quantize_with_report
    from rapsam_edge.deploy.backends.openvino.int8 import quantize_ov_int8

    out = {"ort fp32": ("ort-cpu", src, {}), "openvino fp32": ("openvino", src, {})}
    for label, fmt, tag, convert in (
        ("ort int8", "onnx", "int8", lambda s, d, f: quantize_with_report(s, d, f, verbose=False)),
        ("ort fp16", "onnx", "fp16", lambda s, d, f: convert_ort_fp16(s, d)),
        ("openvino int8", "openvino", "int8", quantize_ov_int8),
    ):
        stage = tmp / f"stage-{label.replace(' ', '-')}"
        stage.mkdir(parents=True)
        graphs = {}
        for g in src.graphs:
            name = f"{g}.{tag}.{'xml' if fmt == 'openvino' else 'onnx'}"
            convert(src.graph_path(g, fmt), stage / name, feeds[g])
            graphs[g] = (name, tag)
        bundle = write_derived_bundle(
            src,
            tmp / label.replace(" ", "-"),
            staged=stage,
            name=label,
            fmt=fmt,
            graphs=graphs,
            record={},
        )
        out[label] = ("ort-cpu" if fmt == "onnx" else "openvino", bundle, {})
    out["openvino bf16 hint"] = ("openvino", src, {"precision": "bf16"})
    return out


def bench(bundle_path, hw: tuple[int, int], tmp: Path) -> list[dict]:
    src = load_bundle(bundle_path)
    frames = clip_frames(16, hw, rgb=True)
    feeds = graph_feeds(src, frames)
    variants = _variants(src, tmp, feeds)
    runners = {
        label: {g: create_backend(b, g, backend, **opts) for g in src.graphs}
        for label, (backend, b, opts) in variants.items()
    }
    samples = {label: {g: [] for g in src.graphs} for label in runners}
    for it in range(REPEATS + 3):
        for label, by_graph in runners.items():
            for g, backend in by_graph.items():
                feed = feeds[g][it % len(frames)]
                t0 = time.perf_counter()
                backend.run(feed)
                if it >= 3:
                    samples[label][g].append((time.perf_counter() - t0) * 1e3)
    rows = []
    base = {g: float(np.median(samples["ort fp32"][g])) for g in src.graphs}
    base_ov = {g: float(np.median(samples["openvino fp32"][g])) for g in src.graphs}
    for label, by_graph in samples.items():
        ref = base_ov if label.startswith("openvino") else base
        for g, v in by_graph.items():
            p50 = float(np.median(v))
            rows.append(
                {
                    "model": src.name,
                    "input": f"{hw[1]}x{hw[0]}",
                    "variant": label,
                    "graph": g,
                    "p50_ms": p50,
                    "speedup_vs_fp32_same_backend": ref[g] / p50,
                }
            )
    for by_graph in runners.values():
        for b in by_graph.values():
            b.close()
    return rows


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        rows = bench(default_bundle(), (240, 320), tmp / "xs")
        rows += bench(_edge_s(tmp), (480, 640), tmp / "s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "# Reduced precision per graph: latency p50 and speed-up vs FP32 on the same backend",
        "",
        f"Machine: {describe()}; 2 threads; {REPEATS} interleaved repeats on 16 real inputs per "
        "graph after 3 warm-ups; command `python benchmarks/bench_quantize.py`. Accuracy: see "
        "`rapsam-edge quantize`'s gate (the issue's note).",
        "",
        "| model | frame | variant | graph | p50 ms | speed-up vs FP32 |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['input']} | {r['variant']} | {r['graph']} | {r['p50_ms']:.2f} | "
            f"{r['speedup_vs_fp32_same_backend']:.2f}x |"
        )
    print("\n".join(lines) + "\n")
    write_results("quantize", lines, {"machine": describe(), "rows": rows})


if __name__ == "__main__":
    main()
