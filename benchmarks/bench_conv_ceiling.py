"""How close the encoders come to this CPU's convolution ceiling (issue 14).

The ceiling is measured, not taken from a data sheet: stacks of four dense 3x3 convolutions
(+ ReLU) at feature sizes and widths the encoders use, built directly as OpenVINO graphs and
run with OpenVINO's CPU plugin on the same threads as the bundles (LATENCY hint, 2 threads,
FP32 inference precision). INT8 stacks put FakeQuantize on activations (u8, 256 levels) and
weights (i8, per output channel) as NNCF does, so the plugin runs INT8 convolutions. The
ceiling of a precision is the best GOP/s over the stacks (an op = a multiply or an add,
2 per multiply-accumulate).

An encoder's GOP/s = 2 x its multiply-accumulates (convolutions, group / depthwise
convolutions, transposed convolutions and matrix products, counted from the graph reshaped
to the 640x480 input) / its p50 latency; it is reported as % of the ceiling of its precision.

Two passes, both in the table: each graph timed on its own ("stand-alone": weights warm in
cache, the higher ceiling), then all stacks and encoders interleaved run by run
(``interleaved_p50``), so a drift of this shared machine's speed moves encoders and ceiling
together.

    python benchmarks/bench_conv_ceiling.py            # writes benchmarks/results/conv_ceiling.md/.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from machine import describe, ov_cpu_config, write_results

from rapsam_edge.assets import DEFAULT_BUNDLE, REALTIME_BUNDLE, shipped_bundles
from rapsam_edge.bundle import load_bundle

STACKS = ((32, 120, 160), (64, 60, 80), (128, 30, 40), (256, 15, 20))  # C, H, W (640x480 input)


def _fq(node, lo, hi, levels: int):
    c = lambda a: ops.constant(np.asarray(a, np.float32))  # noqa: E731
    return ops.fake_quantize(node, c(lo), c(hi), c(lo), c(hi), levels)


def conv_stack(c: int, h: int, w: int, int8: bool, depth: int = 4) -> ov.Model:
    rng = np.random.default_rng(0)
    x = ops.parameter([1, c, h, w], ov.Type.f32, name="x")
    y = x
    for _ in range(depth):
        wt = rng.normal(0, (2.0 / (9 * c)) ** 0.5, (c, c, 3, 3)).astype(np.float32)
        weights = ops.constant(wt)
        if int8:
            y = _fq(y, 0.0, 6.0, 256)
            amax = np.abs(wt).reshape(c, -1).max(1).reshape(c, 1, 1, 1)
            weights = _fq(weights, -amax, amax, 255)
        y = ops.relu(ops.convolution(y, weights, [1, 1], [1, 1], [1, 1], [1, 1]))
    return ov.Model([y], [x], "conv_stack")


def macs(model: ov.Model) -> int:
    """Multiply-accumulates of the compute ops of a model with static shapes."""
    total = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Convolution", "GroupConvolution"):
            wshape = list(op.input(1).get_shape())
            per_out = int(np.prod(wshape[2:] if kind == "GroupConvolution" else wshape[1:]))
            total += int(np.prod(list(op.output(0).get_shape()))) * per_out
        elif kind == "ConvolutionBackpropData":
            wshape = list(op.input(1).get_shape())  # Cin x Cout x kh x kw
            total += int(np.prod(list(op.input(0).get_shape()))) * int(np.prod(wshape[1:]))
        elif kind == "MatMul":
            a = list(op.input(0).get_shape())
            k = a[-2] if op.get_transpose_a() else a[-1]
            total += int(np.prod(list(op.output(0).get_shape()))) * int(k)
    return total


def ceiling_share(precision: str, gop: float, ms: float, ceiling: dict[str, float]) -> dict:
    """A timed encoder's row: p50 ms, GOP/s and % of the ceiling of its precision."""
    gops = gop / ms * 1e3
    return {
        "precision": precision,
        "p50_ms": ms,
        "gops": gops,
        "pct_of_ceiling": 100 * gops / ceiling[precision],
    }


def p50_ms(compiled: ov.CompiledModel, feeds: dict, iters: int, warmup: int) -> float:
    req = compiled.create_infer_request()
    for _ in range(warmup):
        req.infer(feeds)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        req.infer(feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def interleaved_p50(requests: dict, feeds: dict, iters: int, warmup: int) -> dict[object, float]:
    """p50 ms per key of ``requests`` (OpenVINO infer requests), timed round-robin: every
    iteration runs each request once with ``feeds[key]``, so all see the same machine state."""
    times: dict[object, list[float]] = {k: [] for k in requests}
    for i in range(warmup + iters):
        for key, req in requests.items():
            t0 = time.perf_counter()
            req.infer(feeds[key])
            if i >= warmup:
                times[key].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


class _Timed:
    """Rows timed stand-alone, with what the interleaved pass needs, keyed by row index."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.requests: dict = {}
        self.feeds: dict = {}
        self.gop_of: dict = {}

    def add(self, row: dict, compiled, feed: dict, gop: float) -> None:
        i = len(self.rows)
        self.requests[i], self.feeds[i], self.gop_of[i] = compiled.create_infer_request(), feed, gop
        self.rows.append(row)
        print(row, flush=True)


def _time_stacks(core, config, args, timed: _Timed) -> dict[str, float]:
    """The dense 3x3 stacks in FP32 and INT8; returns the best GOP/s per precision."""
    ceiling = {"fp32": 0.0, "int8": 0.0}
    for c, h, w in STACKS:
        for prec in ("fp32", "int8"):
            model = conv_stack(c, h, w, prec == "int8")
            compiled = core.compile_model(model, "CPU", config)
            x = np.random.default_rng(1).uniform(0, 6, (1, c, h, w)).astype(np.float32)
            ms = p50_ms(compiled, {"x": x}, args.iters, args.warmup)
            gop = 2 * macs(model) / 1e9
            gops = gop / ms * 1e3
            ceiling[prec] = max(ceiling[prec], gops)
            row = {"what": f"4 x conv3x3 {c}ch {w}x{h}", "precision": prec, "p50_ms": ms}
            timed.add({**row, "gops": gops}, compiled, {"x": x}, gop)
    return ceiling


def _time_encoders(core, config, args, timed: _Timed, ceiling: dict[str, float]) -> None:
    """The shipped default and real-time bundles' encoders at 640 x 480."""
    for name in (b for b in shipped_bundles() if b.startswith((DEFAULT_BUNDLE, REALTIME_BUNDLE))):
        bundle = load_bundle(name)
        graph = bundle.graphs["encoder"]
        fmt = "openvino" if "openvino" in graph.files else "onnx"
        model = core.read_model(str(bundle.root / graph.files[fmt]))
        model.reshape({model.inputs[0].any_name: [1, 480, 640, 3]})
        prec = "int8" if graph.precision.startswith("int8") else "fp32"
        compiled = core.compile_model(model, "CPU", config)
        image = np.random.default_rng(2).integers(0, 256, (1, 480, 640, 3), dtype=np.uint8)
        feed = {model.inputs[0].any_name: image}
        ms = p50_ms(compiled, feed, args.iters, args.warmup)
        gop = 2 * macs(model) / 1e9
        row = {
            "what": f"encoder of {name} (640x480, {gop:.2f} GOP)",
            **ceiling_share(prec, gop, ms, ceiling),
        }
        timed.add(row, compiled, feed, gop)


def _time_interleaved(args, timed: _Timed) -> dict[str, float]:
    """Times every row round-robin, adds the interleaved columns; returns that ceiling."""
    rows, gop_of = timed.rows, timed.gop_of
    inter = interleaved_p50(timed.requests, timed.feeds, args.iters, args.warmup)
    inter_ceiling = {
        prec: max(
            gop_of[i] / inter[i] * 1e3
            for i, r in enumerate(rows)
            if r["precision"] == prec and "pct_of_ceiling" not in r
        )
        for prec in ("fp32", "int8")
    }
    for i, r in enumerate(rows):
        r["interleaved_p50_ms"] = inter[i]
        if "pct_of_ceiling" in r:
            share = ceiling_share(r["precision"], gop_of[i], inter[i], inter_ceiling)
            r["pct_of_interleaved_ceiling"] = share["pct_of_ceiling"]
    return inter_ceiling


def _table(args, rows: list[dict], ceiling: dict, inter_ceiling: dict) -> list[str]:
    lines = [
        "# Encoders vs this CPU's measured convolution ceiling",
        "",
        f"Machine: {describe()}; OpenVINO {ov.get_version()} CPU plugin, {args.threads} threads, "
        f"LATENCY hint; p50 of {args.iters} runs after {args.warmup} warm-ups; command "
        "`python benchmarks/bench_conv_ceiling.py`. Stand-alone ceiling (each graph timed on "
        f"its own): FP32 {ceiling['fp32']:.0f} GOP/s, INT8 {ceiling['int8']:.0f} GOP/s (best "
        "dense 3x3 stack). Interleaved ceiling (all rows timed round-robin in one loop): FP32 "
        f"{inter_ceiling['fp32']:.0f}, INT8 {inter_ceiling['int8']:.0f} GOP/s.",
        "",
        "| what | precision | p50 ms | GOP/s | % of ceiling | interleaved p50 ms "
        "| % of interleaved ceiling |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pct = f"{r['pct_of_ceiling']:.0f}" if "pct_of_ceiling" in r else "-"
        ipct = (
            f"{r['pct_of_interleaved_ceiling']:.0f}" if "pct_of_interleaved_ceiling" in r else "-"
        )
        lines.append(
            f"| {r['what']} | {r['precision']} | {r['p50_ms']:.2f} | {r['gops']:.0f} | {pct} | "
            f"{r['interleaved_p50_ms']:.2f} | {ipct} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    core = ov.Core()
    config = ov_cpu_config(args.threads)
    timed = _Timed()
    ceiling = _time_stacks(core, config, args, timed)
    _time_encoders(core, config, args, timed, ceiling)
    inter_ceiling = _time_interleaved(args, timed)
    lines = _table(args, timed.rows, ceiling, inter_ceiling)
    print("\n".join(lines) + "\n")
    write_results(
        "conv_ceiling",
        lines,
        {"ceiling": ceiling, "interleaved_ceiling": inter_ceiling, "rows": timed.rows},
    )


if __name__ == "__main__":
    main()
