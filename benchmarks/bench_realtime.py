"""The shipped real-time bundles end to end through `Segmenter` at 640x480 (issue 14): every
CPU backend and precision usable here, targets interleaved, 200 timed frames each, then the
profiler's report (per-stage p50/p90/p99, memory, top operators) of the INT8 bundle on
OpenVINO, panoptic and prompt modes.

    python benchmarks/bench_realtime.py            # writes benchmarks/results/realtime*.md/.json
    python benchmarks/bench_realtime.py --iters 50 # quicker, noisier

The end-to-end column is what the user runs (prepare -> label map); the last column is the
mean end-to-end time over the sum of the stage means (1.00 = no time lost between stages,
e.g. to spinning inference threads)."""

from __future__ import annotations

import argparse

from machine import RESULTS

from rapsam_edge.assets import DEFAULT_BUNDLE, shipped_bundles
from rapsam_edge.cli import main as cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    bundles = [b for b in shipped_bundles() if b.startswith(DEFAULT_BUNDLE)]
    common = ["--warmup", str(args.warmup), "--iters", str(args.iters), "--input", "640x480"]
    cli(
        [
            "benchmark",
            "--bundle",
            *bundles,
            "--no-fresh",
            *common,
            "--out",
            str(RESULTS / "realtime"),
        ]
    )
    int8 = next(b for b in bundles if "int8" in b)
    for mode in ("panoptic", "prompt"):
        out = RESULTS / f"realtime-profile-{mode}"
        cli(
            [
                "profile",
                int8,
                "--backend",
                "openvino",
                "--mode",
                mode,
                *common,
                "--layers",
                "--no-progress",
                "--json",
                str(out.with_suffix(".json")),
                "--markdown",
                str(out.with_suffix(".md")),
            ]
        )


if __name__ == "__main__":
    main()
