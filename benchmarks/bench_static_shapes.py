"""OpenVINO on CPU: the default shape policy (``static_shapes="auto"``: static copies of
repeated input shapes, compiled in the background) against dynamic shapes only, end to end
through ``Segmenter`` on the shipped default bundles, interleaved in one process.

Per target and frame: ``panoptic(frame)``, then ``set_image(frame)`` and ``prompt`` with one
click (the first prompt after ``set_image``). 640x480 frames of the sample clip at the
bundle's network size; 2 threads; ``settle()`` after the warm-up. Ratios are dynamic / auto.

    python benchmarks/bench_static_shapes.py     # writes benchmarks/results/static_shapes.md/.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import clip_frames, describe, write_results

from rapsam_edge import Segmenter
from rapsam_edge.assets import DEFAULT_BUNDLE, shipped_bundles

POLICIES = {"auto (default)": "auto", "dynamic only": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    clip = clip_frames(48, (480, 640))
    bundles = [b for b in shipped_bundles() if b.startswith(DEFAULT_BUNDLE)]
    targets = {
        (b, name): Segmenter(
            b,
            "openvino",
            color_order="BGR",
            backend_options={"num_threads": 2, "static_shapes": policy},
        )
        for b in bundles
        for name, policy in POLICIES.items()
    }
    times: dict[tuple[str, str], dict[str, list[float]]] = {
        k: {"panoptic": [], "prompt": []} for k in targets
    }
    for i in range(args.warmup + args.iters):
        if i == args.warmup:
            for seg in targets.values():
                seg.settle()
        frame = clip[i % len(clip)]
        for key, seg in targets.items():
            t0 = time.perf_counter()
            seg.panoptic(frame)
            t1 = time.perf_counter()
            emb = seg.set_image(frame)
            t2 = time.perf_counter()
            seg.prompt(emb, points=[(320.0, 240.0)])
            t3 = time.perf_counter()
            if i >= args.warmup:
                times[key]["panoptic"].append((t1 - t0) * 1e3)
                times[key]["prompt"].append((t3 - t2) * 1e3)
    rows = []
    for (bundle, policy), t in times.items():
        rows.append(
            {
                "bundle": bundle,
                "policy": policy,
                "panoptic_p50_ms": float(np.median(t["panoptic"])),
                "panoptic_p90_ms": float(np.percentile(t["panoptic"], 90)),
                "prompt_p50_ms": float(np.median(t["prompt"])),
                "prompt_p90_ms": float(np.percentile(t["prompt"], 90)),
            }
        )
    auto = {r["bundle"]: r for r in rows if r["policy"] == "auto (default)"}
    lines = [
        "# OpenVINO shapes: static copies of repeated shapes vs dynamic only",
        "",
        f"Machine: {describe()}; 640x480 frames (sample clip), bundle's network size, 2 threads, "
        f"{args.iters} interleaved iterations after {args.warmup} warm-ups and `settle()`; "
        "prompt = the first `prompt` (one click) after `set_image`, decoder + post-processing. "
        "Command `python benchmarks/bench_static_shapes.py`.",
        "",
        "| bundle | shapes | panoptic e2e p50 ms | p90 | prompt p50 ms | p90 | "
        "dynamic / auto (panoptic, prompt) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a = auto[r["bundle"]]
        ratio = (
            f"{r['panoptic_p50_ms'] / a['panoptic_p50_ms']:.2f}, "
            f"{r['prompt_p50_ms'] / a['prompt_p50_ms']:.2f}"
        )
        lines.append(
            f"| {r['bundle']} | {r['policy']} | {r['panoptic_p50_ms']:.2f} | "
            f"{r['panoptic_p90_ms']:.2f} | {r['prompt_p50_ms']:.2f} | {r['prompt_p90_ms']:.2f} | "
            f"{ratio} |"
        )
    print("\n".join(lines))
    write_results("static_shapes", lines, {"rows": rows})


if __name__ == "__main__":
    main()
