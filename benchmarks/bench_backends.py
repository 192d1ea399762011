"""Runtime backends side by side: every available backend on every graph of a bundle, same
inputs, runs interleaved round-robin so machine noise hits all alike. Prints p50 / p90 / p99
per graph and backend plus the ratio to ONNX Runtime CPU, and writes
``benchmarks/results/backends.md`` (and ``.json``).

    python benchmarks/bench_backends.py                    # the shipped default bundle
    python benchmarks/bench_backends.py --bundle DIR --repeats 50 --prompts 1 16
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from machine import describe, write_results

from rapsam_edge.assets import default_bundle
from rapsam_edge.bundle import load_bundle
from rapsam_edge.runtime.registry import available_backends
from rapsam_edge.runtime.selection import create_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--prompts", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--hw", type=int, nargs=2, help="network input H W (default: 3:4 at the bundle's long side)"
    )
    args = parser.parse_args()
    path = args.bundle or default_bundle()
    bundle = load_bundle(path)
    side = bundle.input.long_side
    h, w = args.hw or (side * 3 // 4 // 32 * 32, side)
    names = [n for n in available_backends(bundle) if n != "torch"]
    runners = {n: {g: create_backend(bundle, g, n) for g in bundle.graphs} for n in names}
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    g = bundle.graphs  # tensor names come from the manifest (contract roles)
    enc, pan, prm = g["encoder"], g["panoptic_decoder"], g["prompt_decoder"]
    feats = runners[names[0]]["encoder"].run({enc.name_of("image"): image})[enc.name_of("feats")]
    cases = {
        "encoder": {enc.name_of("image"): image},
        "panoptic_decoder": {pan.name_of("feats"): feats},
    }
    for p in args.prompts:
        xy = rng.uniform(0, min(h, w) / 2, (1, p, 2)).astype(np.float32)
        cases[f"prompt_decoder P={p}"] = {
            prm.name_of("feats"): feats,
            prm.name_of("boxes"): np.concatenate([xy, xy + 40], -1),
        }
    times: dict[tuple[str, str], list[float]] = {}
    for case, feeds in cases.items():
        graph = case.split()[0]
        for n in names:
            runners[n][graph].run(feeds)  # warm-up
        for _ in range(args.repeats):
            for n in names:
                t0 = time.perf_counter()
                runners[n][graph].run(feeds)
                times.setdefault((case, n), []).append((time.perf_counter() - t0) * 1e3)
    base = "ort-cpu" if "ort-cpu" in names else names[0]
    rows = []
    print(
        f"{'graph':22s} {'backend':10s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'vs ' + base:>10s}"
    )
    for case in cases:
        ref = float(np.median(times[(case, base)]))
        for n in names:
            t = np.asarray(times[(case, n)])
            row = {
                "graph": case,
                "backend": n,
                "p50_ms": float(np.median(t)),
                "p90_ms": float(np.percentile(t, 90)),
                "p99_ms": float(np.percentile(t, 99)),
            }
            row["speedup_vs_" + base] = ref / row["p50_ms"]
            rows.append(row)
            print(
                f"{case:22s} {n:10s} {row['p50_ms']:8.2f} {row['p90_ms']:8.2f} "
                f"{row['p99_ms']:8.2f} {row['speedup_vs_' + base]:9.2f}x"
            )
    machine = describe()
    lines = [
        f"# Runtime backends side by side: {bundle.name} ({bundle.variant})",
        "",
        f"Machine: {machine}. Input {h}x{w} (uint8 NHWC), {args.repeats} interleaved repeats "
        f"after one warm-up; command `python benchmarks/bench_backends.py`.",
        "",
        f"| graph | backend | p50 ms | p90 ms | p99 ms | speed-up vs {base} |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['graph']} | {r['backend']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['speedup_vs_' + base]:.2f}x |"
        )
    print(f"wrote {write_results('backends', lines, {'machine': machine, 'rows': rows})}")


if __name__ == "__main__":
    main()
