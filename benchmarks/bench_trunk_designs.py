"""Trunk designs for a CPU-shaped real-time variant (issue 14): latency and share of this CPU's
conv ceiling of the edge-s encoder (trunk + neck) when its first MobileNetV2 stages are
Fused-MBConv blocks (``model.mobilenet.FusedInvertedResidual``) instead of inverted residuals
with high-resolution depthwise convs.

Latency does not depend on the weights, so the candidates are built with random weights: the
encoder graph (``deploy.graphs.EncoderGraph``) is converted to OpenVINO, reshaped to the
640x480 input, and quantized to INT8 by NNCF (the project's PTQ, here on random frames, which
set the ranges but not the speed). FP32 and INT8 of every candidate run interleaved on the
CPU plugin (LATENCY hint, 2 threads), p50 over the iterations. GOP and the ceiling are counted
as in ``bench_conv_ceiling.py``, and the ceiling is measured in the same interleaved loop (its
four dense 3x3 stacks per precision, best GOP/s), so a drift of this shared machine's speed
moves designs and ceiling together. Accuracy is not measured here: a design is worth training
when it is faster.

    python benchmarks/bench_trunk_designs.py      # writes benchmarks/results/trunk_designs.md/.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import openvino as ov
import torch
from bench_conv_ceiling import STACKS, ceiling_share, conv_stack, interleaved_p50, macs
from machine import RESULTS, describe, ov_cpu_config, write_results

from rapsam_edge.deploy.graphs import EncoderGraph
from rapsam_edge.model.mobilenet import MobileNetV2
from rapsam_edge.model.variants import VARIANTS, build_model

H, W = 480, 640
#: candidate name -> (leading MobileNetV2 stages built as Fused-MBConv, their expansion cap);
#: (0, 6) is edge-s today
CANDIDATES = {
    "edge-s (MobileNetV2)": (0, 6),
    "fused stages 1-2": (2, 6),
    "fused stages 1-2, expand <= 2": (2, 2),
    "fused stages 1-3, expand <= 2": (3, 2),
    "fused stages 1-4, expand <= 2": (4, 2),
    "fused stages 1-3, expand <= 1": (3, 1),
    # no depthwise conv left at all: the most a MobileNetV2-shaped trunk can gain this way
    "fused stages 1-7, expand <= 2": (7, 2),
    "fused stages 1-7, expand <= 1": (7, 1),
}


def encoder(fused: int, expand: int) -> ov.Model:
    torch.manual_seed(0)
    model = build_model("edge-s")
    v = VARIANTS["edge-s"]
    model.backbone = MobileNetV2(width=v.backbone_width, fused_stages=fused, fused_expand=expand)
    model.eval()
    example = torch.zeros(1, H, W, 3, dtype=torch.uint8)
    with torch.no_grad():
        ov_model = ov.convert_model(EncoderGraph(model), example_input=example)
    ov_model.reshape({ov_model.inputs[0].any_name: [1, H, W, 3]})
    return ov_model


def int8(model: ov.Model, frames: list[np.ndarray]) -> ov.Model:
    import nncf

    return nncf.quantize(model, nncf.Dataset(frames), subset_size=len(frames))


def _design_rows(targets: dict, stacks: dict, p50: dict, ceiling: dict, alone) -> list[dict]:
    """One row per design and precision: GOP/s and share of the ceiling(s)."""
    rows = []
    for (name, prec), (gop, _) in targets.items():
        if (name, prec) in stacks:
            continue
        ms = p50[(name, prec)]
        row = {"design": name, "gop": gop, **ceiling_share(prec, gop, ms, ceiling)}
        if alone:  # the same GOP/s against bench_conv_ceiling's stand-alone ceiling
            row["pct_of_alone_ceiling"] = 100 * row["gops"] / alone[prec]
        rows.append(row)
        print(rows[-1], flush=True)
    return rows


def _table(args, rows: list[dict], ceiling: dict, alone) -> list[str]:
    lines = [
        "# Trunk designs: edge-s encoder latency and share of the conv ceiling",
        "",
        f"Machine: {describe()}; OpenVINO {ov.get_version()} CPU plugin, {args.threads} threads, "
        f"LATENCY hint, 640x480 input; p50 of {args.iters} interleaved runs after {args.warmup} "
        "warm-ups; random weights (latency only), INT8 by NNCF on random frames; ceiling measured "
        "in the same interleaved loop (best of bench_conv_ceiling's dense 3x3 stacks: FP32 "
        f"{ceiling['fp32']:.0f}, INT8 {ceiling['int8']:.0f} GOP/s). "
        "Command `python benchmarks/bench_trunk_designs.py`.",
        "",
        "Last column: the same GOP/s against the stand-alone ceiling of results/conv_ceiling.json "
        + (
            f"(FP32 {alone['fp32']:.0f}, INT8 {alone['int8']:.0f} GOP/s; each stack timed on its "
            "own, weights warm in cache, so a higher ceiling)."
            if alone
            else "(not present: run bench_conv_ceiling.py first)."
        ),
        "",
        "| design | precision | GOP | p50 ms | GOP/s | % of ceiling | % of stand-alone ceiling |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        share_alone = r.get("pct_of_alone_ceiling")
        lines.append(
            f"| {r['design']} | {r['precision']} | {r['gop']:.2f} | {r['p50_ms']:.2f} | "
            f"{r['gops']:.0f} | {r['pct_of_ceiling']:.0f} | "
            f"{'-' if share_alone is None else f'{share_alone:.0f}'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (1, H, W, 3), dtype=np.uint8) for _ in range(8)]
    core = ov.Core()
    config = ov_cpu_config(args.threads)
    targets = {}
    for name, (fused, expand) in CANDIDATES.items():
        fp32 = encoder(fused, expand)
        gop = 2 * macs(fp32) / 1e9
        for prec, model in (("fp32", fp32), ("int8", int8(fp32, frames))):
            targets[(name, prec)] = (
                gop,
                core.compile_model(model, "CPU", config).create_infer_request(),
            )
    feeds = {key: [frames[0]] for key in targets}
    stacks = {}
    for c, h, w in STACKS:
        for prec in ("fp32", "int8"):
            stack = conv_stack(c, h, w, int8=prec == "int8")
            key = (f"stack {c}ch {w}x{h}", prec)
            stacks[key] = 2 * macs(stack) / 1e9
            targets[key] = (
                stacks[key],
                core.compile_model(stack, "CPU", config).create_infer_request(),
            )
            feeds[key] = [rng.uniform(0, 6, (1, c, h, w)).astype(np.float32)]
    p50 = interleaved_p50(
        {k: req for k, (_, req) in targets.items()}, feeds, args.iters, args.warmup
    )
    ceiling = {
        prec: max(gop / p50[k] * 1e3 for k, gop in stacks.items() if k[1] == prec)
        for prec in ("fp32", "int8")
    }
    print(f"ceiling (this run): {ceiling}", flush=True)
    alone_file = RESULTS / "conv_ceiling.json"
    alone = json.loads(alone_file.read_text())["ceiling"] if alone_file.exists() else None
    rows = _design_rows(targets, stacks, p50, ceiling, alone)
    lines = _table(args, rows, ceiling, alone)
    write_results(
        "trunk_designs", lines, {"ceiling": ceiling, "alone_ceiling": alone, "rows": rows}
    )


if __name__ == "__main__":
    main()
