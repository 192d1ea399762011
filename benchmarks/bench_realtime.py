"""The shipped real-time bundles end to end through `Segmenter` at 640x480 (issue 14): the
real-time model (``REALTIME_BUNDLE``, edge-s-fused) and the default model (edge-s) on every CPU
backend and precision usable here, targets interleaved, 200 timed frames each, then the
profiler's report (per-stage p50/p90/p99, memory, top operators) of the real-time INT8 bundle
on OpenVINO, panoptic and prompt modes, and the same report of the default INT8 bundle
(panoptic) for comparison. Last, ``realtime-profile-compare``: the real-time FP32 bundle on
OpenVINO and ONNX Runtime and both INT8 bundles interleaved at the bundles' own network side
(320), the size they were trained and gated at.

    python benchmarks/bench_realtime.py            # writes benchmarks/results/realtime*.md/.json
    python benchmarks/bench_realtime.py --iters 50 # quicker, noisier

The end-to-end column is what the user runs (prepare -> label map); the last column is the
mean end-to-end time over the sum of the stage means (1.00 = no time lost between stages,
e.g. to spinning inference threads)."""

from __future__ import annotations

import argparse

from machine import RESULTS

from rapsam_edge.assets import DEFAULT_BUNDLE, REALTIME_BUNDLE, shipped_bundles
from rapsam_edge.cli import main as cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    families = (REALTIME_BUNDLE, DEFAULT_BUNDLE)
    bundles = [b for b in shipped_bundles() if b.startswith(families)]
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
    int8 = {family: f"{family}-ov-int8" for family in families}
    others = (f"ort-cpu:{REALTIME_BUNDLE}", *(f"openvino:{int8[f]}" for f in families))
    compare = ",".join(others)
    profiles = (  # bundle, mode, results name, extra flags
        (int8[REALTIME_BUNDLE], "panoptic", "realtime-profile-panoptic", []),
        (int8[REALTIME_BUNDLE], "prompt", "realtime-profile-prompt", []),
        (int8[DEFAULT_BUNDLE], "panoptic", "realtime-profile-panoptic-default", []),
        (REALTIME_BUNDLE, "panoptic", "realtime-profile-compare", ["--compare", compare]),
    )
    for bundle, mode, name, extra in profiles:
        out = RESULTS / name
        cli(
            [
                "profile",
                bundle,
                *extra,
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
