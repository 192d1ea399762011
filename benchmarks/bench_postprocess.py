"""Post-processing benchmark: compiled C++ core vs the numpy reference twins, side by side.

Both implementations run the same inputs in one process, interleaved (C++ then numpy per
case), so machine noise hits both alike; the table reports medians and p90 over repeats and
the speed-up ratio. Writes ``benchmarks/results/postprocess.md`` (and ``.json``).

    python benchmarks/bench_postprocess.py            # full table (a few minutes)
    python benchmarks/bench_postprocess.py --quick    # fewer sizes and repeats
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
from machine import describe, write_results

from rapsam_edge import _core
from rapsam_edge.ops import _numpy

OUT_SIZES = {"640x480": (480, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}
N_QUERIES, N_CLASSES = 100, 12


def blob_logits(rng: np.random.Generator, n: int, side: int, valid_h: int) -> np.ndarray:
    """n x side x side float32 mask logits shaped like a network's: smooth blobs, mostly
    very negative, positive inside one object each."""
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    cy = rng.uniform(0, valid_h, n).astype(np.float32)[:, None, None]
    cx = rng.uniform(0, side, n).astype(np.float32)[:, None, None]
    radius = rng.uniform(4, side / 4, n).astype(np.float32)[:, None, None]
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    noise = rng.normal(0, 0.5, (n, side, side)).astype(np.float32)
    return np.ascontiguousarray(8.0 * (1.0 - dist / radius) + noise, dtype=np.float32)


def class_logits(rng: np.random.Generator, n_kept: int) -> np.ndarray:
    """N x (C+1) logits with exactly ``n_kept`` queries above the 0.8 score threshold."""
    logits = rng.normal(0, 1, (N_QUERIES, N_CLASSES + 1)).astype(np.float32)
    logits[:, -1] += 6.0  # most queries: no object
    kept = rng.choice(N_QUERIES, n_kept, replace=False)
    logits[kept, rng.integers(0, N_CLASSES, n_kept)] += 12.0
    return logits


def timeit(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def side_by_side(name: str, case: str, args: tuple, kwargs: dict, repeats: int) -> dict:
    cpp_fn, np_fn = getattr(_core, name), getattr(_numpy, name)
    cpp_t = timeit(lambda: cpp_fn(*args, **kwargs), repeats)
    np_t = timeit(lambda: np_fn(*args, **kwargs), max(2, repeats // 5))
    row = {
        "op": name,
        "case": case,
        "cpp_p50_ms": float(np.median(cpp_t)),
        "cpp_p90_ms": float(np.percentile(cpp_t, 90)),
        "numpy_p50_ms": float(np.median(np_t)),
        "numpy_p90_ms": float(np.percentile(np_t, 90)),
    }
    row["speedup"] = row["numpy_p50_ms"] / row["cpp_p50_ms"]
    print(
        f"{name:17s} {case:44s} {row['cpp_p50_ms']:9.2f} {row['cpp_p90_ms']:9.2f} "
        f"{row['numpy_p50_ms']:10.2f} {row['speedup']:8.1f}x",
        flush=True,
    )
    return row


def cases(quick: bool):
    rng = np.random.default_rng(0)
    is_thing = np.arange(N_CLASSES) < 8
    sides = (128, 160)
    outs = ("1280x720",) if quick else tuple(OUT_SIZES)
    kept_counts = (1, 20) if quick else (1, 5, 20, 30)
    for side in sides:
        valid = (side * 9 / 16, float(side))  # a 16:9 frame letterboxed into a square input
        kinds = {
            "smooth": blob_logits(rng, N_QUERIES, side, int(valid[0])),
            # the worst case: i.i.d. N(0, 1) logits, every cell a near-tie of every query
            "noise": rng.normal(0, 1, (N_QUERIES, side, side)).astype(np.float32),
        }
        for kind, masks in kinds.items():
            for out in outs:
                for n_kept in kept_counts:
                    cls = class_logits(rng, n_kept)
                    yield (
                        "panoptic_fuse",
                        f"{kind} {side}x{side} -> {out}, {n_kept}/{N_QUERIES} kept",
                        (cls, masks, valid, OUT_SIZES[out], is_thing),
                    )
                for n_prompts in (1, 16) if quick else (1, 4, 16):
                    yield (
                        "prompt_masks",
                        f"{kind} {side}x{side} -> {out}, {n_prompts} prompts",
                        (np.ascontiguousarray(masks[:n_prompts]), valid, OUT_SIZES[out]),
                    )
    for out in outs:
        frame = rng.integers(0, 256, (*OUT_SIZES[out], 3), dtype=np.uint8)
        yield "letterbox", f"{out} -> 640 (pad 32, BGR->RGB)", (frame, 640, 32, 0, True)
        h, w = OUT_SIZES[out]
        blocks = rng.integers(0, 20, (-(-h // 16), -(-w // 16))).astype(np.int32)
        labels = np.ascontiguousarray(np.repeat(np.repeat(blocks, 16, 0), 16, 1)[:h, :w])
        yield "overlay", f"{out}, 20 segments", (frame, labels)
        masks16 = np.ascontiguousarray(labels[None] == np.arange(1, 17)[:, None, None])
        yield "masks_to_boxes", f"{out}, 16 masks", (masks16,)
        yield "rle_encode", f"{out}, 16 masks", (masks16,)
    for n in (10, 50, 100):
        yield "linear_assignment", f"{n}x{n} tracks x detections", (rng.random((n, n)),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats of C++")
    args = parser.parse_args()
    repeats = args.repeats or (10 if args.quick else 30)

    print(
        f"{'op':17s} {'case':44s} {'cpp p50':>9s} {'cpp p90':>9s} {'numpy p50':>10s} "
        f"{'speed-up':>9s}   (ms)"
    )
    rows = [side_by_side(name, case, a, {}, repeats) for name, case, a in cases(args.quick)]

    machine = describe()
    lines = [
        "# Post-processing: C++ core vs numpy reference",
        "",
        f"Machine: {machine}; Python {platform.python_version()}, numpy {np.__version__}.",
        f"Command: `python benchmarks/bench_postprocess.py{' --quick' if args.quick else ''}`; "
        f"C++ {repeats} timed repeats, numpy {max(2, repeats // 5)}, one warm-up each, "
        "interleaved per case.",
        "",
        "| op | case | C++ p50 ms | C++ p90 ms | numpy p50 ms | numpy p90 ms | speed-up |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['op']} | {r['case']} | {r['cpp_p50_ms']:.2f} | {r['cpp_p90_ms']:.2f} | "
            f"{r['numpy_p50_ms']:.2f} | {r['numpy_p90_ms']:.2f} | {r['speedup']:.1f}x |"
        )
    print(f"wrote {write_results('postprocess', lines, {'machine': machine, 'rows': rows})}")


if __name__ == "__main__":
    main()
