"""Every graph in INT8 at 320 and 640 (issue 29): the shipped INT8 bundles against a reference
(by default the INT8 bundle they replaced, kept in a folder) at both network sides, 640x480
frames, through the profiler the user runs (`rapsam-edge profile --compare`, targets
interleaved, p50 over ``--iters`` frames), with the backend's per-layer view (`--layers`) so
the decoder's time is visible before and after.

    python benchmarks/bench_int8_scales.py --before OLD_INT8_BUNDLE [--iters 200]

Writes ``benchmarks/results/int8_scales-<bundle>-<side>.md/.json`` (the profiler's reports)
and ``int8_scales.md`` (the summary table: e2e and per-stage p50 per target and side).
"""

from __future__ import annotations

import argparse
import json

from machine import RESULTS, describe

from rapsam_edge.assets import DEFAULT_BUNDLE, REALTIME_BUNDLE
from rapsam_edge.cli import main as cli

STAGES = ("prepare", "encoder", "decoder", "postprocess")


def _profile(bundle: str, others: list[str], side: int, args: argparse.Namespace) -> dict:
    out = RESULTS / f"int8_scales-{bundle.rstrip('/').split('/')[-1]}-{side}"
    compare = ["--compare", ",".join(f"openvino:{o}" for o in others)] if others else []
    cli(
        [
            "profile",
            bundle,
            *compare,
            "--backend",
            "openvino",
            "--input",
            "640x480",
            "--input-size",
            str(side),
            "--warmup",
            str(args.warmup),
            "--iters",
            str(args.iters),
            "--layers",
            "--no-progress",
            "--json",
            str(out.with_suffix(".json")),
            "--markdown",
            str(out.with_suffix(".md")),
        ]
    )
    return json.loads(out.with_suffix(".json").read_text())


def _rows(report: dict, side: int) -> list[str]:
    rows = []
    for target in report["compare"]:
        stages = target["stages"]
        cells = [f"{stages[s]['p50']:.2f}" for s in (*STAGES, "end_to_end")]
        fps = 1000.0 / stages["end_to_end"]["p50"]
        label = target["target"]["label"].split(":", 1)[1]
        rows.append(f"| {label} | {side} | {fps:.0f} | " + " | ".join(cells) + " |")
    return rows


def _decoder_ops(bundle: str, side: int, runs: int) -> tuple[list[str], dict]:
    """The panoptic decoder's operators by the backend's own profiler, summed per operator
    type and kernel (the kernel name says the precision: ..._I8 / _f32 / jit_..._int8)."""
    import numpy as np

    from rapsam_edge.profile.layers import profile_layers
    from rapsam_edge.runtime.segmenter import Segmenter

    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with Segmenter(bundle, "openvino", input_size=side) as seg:
        prof = profile_layers(seg, frame, runs=runs, warmup=5)["panoptic_decoder"]
    by_kind: dict[str, float] = {}
    for op in prof["ops"].values():
        key = f"{op.get('type', '?')} ({op.get('impl', '?')})"
        by_kind[key] = by_kind.get(key, 0.0) + op["ms"]
    rows = [
        f"| {bundle} | {side} | {kind} | {ms:.3f} | {ms / prof['total_ms']:.0%} |"
        for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1])[:8]
    ]
    return rows, {"total_ms": prof["total_ms"], "by_kind": by_kind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", nargs="*", default=[], help="reference bundles")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    bundles = [f"{REALTIME_BUNDLE}-ov-int8", f"{DEFAULT_BUNDLE}-ov-int8"]
    lines = [
        "# INT8 bundles at network sides 320 and 640 (640x480 frames)",
        "",
        f"Machine: {describe()}; OpenVINO, profiler p50 over {args.iters} frames after "
        f"{args.warmup} warm-ups, targets interleaved per side.",
        "",
        "| bundle | side | FPS (e2e p50) | "
        + " | ".join(f"{s} p50 ms" for s in (*STAGES, "e2e"))
        + " |",
        "|---|---:|---:|" + "---:|" * (len(STAGES) + 1),
    ]
    payload: dict = {"profiles": {}, "decoder_ops": {}}
    for side in (320, 640):
        report = _profile(bundles[0], [bundles[1], *args.before], side, args)
        payload["profiles"][str(side)] = report
        lines += _rows(report, side)
    lines += [
        "",
        "## The panoptic decoder per operator type and kernel (OpenVINO performance counters)",
        "",
        "| bundle | side | operator (kernel) | ms per run | share |",
        "|---|---:|---|---:|---:|",
    ]
    for bundle in (*bundles, *args.before):
        for side in (320, 640):
            rows, data = _decoder_ops(bundle, side, runs=50)
            payload["decoder_ops"][f"{bundle}@{side}"] = data
            lines += rows
    (RESULTS / "int8_scales.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "int8_scales.json").write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
