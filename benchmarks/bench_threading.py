"""End to end through ``Segmenter.panoptic``: is a frame's time the sum of its stages?

ONNX Runtime's intra-op workers spin-wait between ops by default; with three sessions (one
per graph) and the C++ post-processing on a small CPU, the idle spinners of one stage steal
the cores of the next. The runtime now turns spinning off (``runtime/ort.py``). This script
times ``Segmenter.panoptic`` on a 640x480 frame, each configuration in its own process (so
one configuration's spinning workers cannot slow the next), processes alternating
with ONNX Runtime spinning (ORT's default), ONNX Runtime without spinning (ours), OpenVINO,
and ``backend="auto"``, and prints per configuration the end-to-end p50, the sum of the
stage p50s (prepare + encoder + decoder + postprocess), and the ratio to spinning ORT.

    python benchmarks/bench_threading.py                     # shipped edge-xs + edge-s
    python benchmarks/bench_threading.py --no-edge-s --repeats 50

``--edge-s`` (default on when torch is installed) exports a randomly initialised edge-s
(timing does not depend on the weights) at long side 640 into a temporary directory.
Writes ``benchmarks/results/threading.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import clip_frames, describe, write_results

from rapsam_edge import Segmenter
from rapsam_edge.assets import default_bundle
from rapsam_edge.contract.threads import default_threads

STAGES = ("prepare", "encoder", "decoder", "postprocess")


def _edge_s_bundle(tmp: Path) -> Path:
    import torch

    from rapsam_edge.data.classes import CLASSES
    from rapsam_edge.deploy.bundle_writer import export_bundle
    from rapsam_edge.model import build_model

    torch.manual_seed(0)
    model = build_model("edge-s", deform=False).eval()
    classes = [{"id": c.id, "name": c.name, "is_thing": c.is_thing} for c in CLASSES]
    return export_bundle(
        model, tmp / "edge-s", name="edge-s-random", classes=classes, input_size=640
    )


def _frame() -> np.ndarray:
    frames = clip_frames(1, (480, 640))
    assert frames, "cannot read the sample clip"
    return frames[0]


CONFIGS = {
    "ort-cpu, spinning (ORT default)": dict(backend="ort-cpu", backend_options={"spin": True}),
    "ort-cpu, no spinning (ours)": dict(backend="ort-cpu"),
    "openvino": dict(backend="openvino"),
    "auto": dict(backend="auto"),
}


def worker(bundle: str, config: str, repeats: int) -> dict:
    """One configuration in this process: warm up, then ``repeats`` timed frames."""
    seg = Segmenter(bundle, color_order="BGR", **CONFIGS[config])
    frame = _frame()
    for _ in range(5):
        seg.panoptic(frame)
    e2e, stages = [], {s: [] for s in STAGES}
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = seg.panoptic(frame)
        e2e.append((time.perf_counter() - t0) * 1e3)
        for s in STAGES:
            stages[s].append(res.timings[s])
    return {"backend": seg.backend_name, "bundle": seg.bundle.name, "e2e": e2e, "stages": stages}


def bench(bundle: Path | str, repeats: int, rounds: int) -> tuple[str, list[dict]]:
    """Each configuration runs in its own process (spinning workers of one configuration
    would otherwise steal the cores of the next one in the same process), the processes
    alternating round-robin ``rounds`` times so that machine noise hits all alike."""
    runs: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    for _ in range(rounds):
        for config in CONFIGS:
            argv = [sys.executable, __file__, "--worker", config, "--bundle", str(bundle)]
            argv += ["--repeats", str(repeats)]
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            runs[config].append(json.loads(out.strip().splitlines()[-1]))
    spinning = "ort-cpu, spinning (ORT default)"
    base = float(np.median([t for r in runs[spinning] for t in r["e2e"]]))
    rows = []
    for config, rs in runs.items():
        e2e = [t for r in rs for t in r["e2e"]]
        stage_p50 = {s: float(np.median([t for r in rs for t in r["stages"][s]])) for s in STAGES}
        p50 = float(np.median(e2e))
        rows.append(
            {
                "config": config if config != "auto" else f"auto ({rs[-1]['backend']})",
                "e2e_p50_ms": p50,
                "e2e_p90_ms": float(np.percentile(e2e, 90)),
                "sum_of_stage_p50_ms": sum(stage_p50.values()),
                "stage_p50_ms": stage_p50,
                "speedup_vs_spinning_ort": base / p50,
            }
        )
    return rs[-1]["bundle"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed frames per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per configuration")
    parser.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    parser.add_argument(
        "--edge-s",
        action=argparse.BooleanOptionalAction,
        default=importlib.util.find_spec("torch") is not None,
        help="also export and time a random-init edge-s at 640 (needs torch)",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.bundle, args.worker, args.repeats)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundles: list[Path | str] = [default_bundle()]
        if args.edge_s:
            bundles.append(_edge_s_bundle(Path(tmp)))
        for b in bundles:
            name, rows = bench(b, args.repeats, args.rounds)
            results[name] = rows
    machine = describe()
    lines = [
        "# End to end vs the sum of the stages: `Segmenter.panoptic`, 640x480 frame",
        "",
        f"Machine: {machine}; {default_threads()} threads per graph. Each configuration in its "
        f"own process ({args.rounds} processes each, alternating round-robin), {args.repeats} "
        "timed frames per process after 5 warm-ups; command `python benchmarks/bench_threading.py`.",
        "",
        "| bundle | configuration | e2e p50 ms | e2e p90 ms | sum of stage p50s ms | encoder | decoder | postprocess | speed-up vs spinning ORT |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print(f"{'bundle':20s} {'configuration':42s} {'e2e p50':>8s} {'stages':>8s} {'speed-up':>9s}")
    for name, rows in results.items():
        for r in rows:
            st = r["stage_p50_ms"]
            print(
                f"{name:20s} {r['config']:42s} {r['e2e_p50_ms']:8.2f} "
                f"{r['sum_of_stage_p50_ms']:8.2f} {r['speedup_vs_spinning_ort']:8.2f}x"
            )
            lines.append(
                f"| {name} | {r['config']} | {r['e2e_p50_ms']:.2f} | {r['e2e_p90_ms']:.2f} | "
                f"{r['sum_of_stage_p50_ms']:.2f} | {st['encoder']:.2f} | {st['decoder']:.2f} | "
                f"{st['postprocess']:.2f} | {r['speedup_vs_spinning_ort']:.2f}x |"
            )
    payload = {"machine": machine, "repeats": args.repeats, "results": results}
    print(f"wrote {write_results('threading', lines, payload)}")


if __name__ == "__main__":
    main()
