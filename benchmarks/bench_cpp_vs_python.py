"""C++ runtime vs Python `Segmenter`: panoptic on the shipped bundle with OpenVINO, side by side
(issue 16). One 640x480 RGB frame (the sample clip's first frame, resized); each run is a
separate process (C++: examples/cpp's program with --bench; Python: Segmenter.panoptic in a
loop), runs alternate C++ / Python, 2 inference threads each, at the bundle's network long
side and at 640.

    python benchmarks/bench_cpp_vs_python.py --program build/cpp-example/segment_frames

Writes benchmarks/results/cpp_vs_python.md (and .json)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
from machine import describe, write_results

from rapsam_edge.assets import default_bundle, sample_clip
from rapsam_edge.bundle import load_bundle

PYTHON_LOOP = """
import sys, time, cv2, numpy as np
from rapsam_edge import Segmenter
bundle, frame, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rgb = np.ascontiguousarray(cv2.imread(frame)[..., ::-1])
seg = Segmenter(bundle, "openvino", color_order="RGB", input_size=size,
                backend_options={"num_threads": 2})
for _ in range(n // 10 + 1):
    seg.panoptic(rgb)
seg.settle()  # the static copies of the frame's shapes (C++: they land during its warm-up)
ms = []
for _ in range(n):
    t0 = time.perf_counter()
    seg.panoptic(rgb)
    ms.append((time.perf_counter() - t0) * 1e3)
print(f"p50 {np.median(ms):.3f} ms")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--program", default=os.environ.get("RAPSAM_CPP_EXAMPLE"), required=False)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.program:
        parser.error("--program (examples/cpp's segment_frames) or RAPSAM_CPP_EXAMPLE is needed")
    bundle = args.bundle or default_bundle()
    sizes = sorted({load_bundle(bundle).manifest.input.long_side, 640})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ok, bgr = cv2.VideoCapture(str(sample_clip())).read()
        assert ok
        frames = Path(tmp) / "frames"
        frames.mkdir()
        cv2.imwrite(
            str(frames / "0.png"), cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA)
        )
        for size in sizes:
            row = {"input_size": size, "cpp_p50_ms": [], "python_p50_ms": []}
            for _ in range(args.runs):
                cpp = subprocess.run(
                    [
                        args.program,
                        str(bundle),
                        str(frames),
                        "--bench",
                        str(args.iters),
                        "--threads",
                        "2",
                        "--input-size",
                        str(size),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row["cpp_p50_ms"].append(float(re.search(r"p50 ([\d.]+) ms", cpp.stdout)[1]))
                py = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        PYTHON_LOOP,
                        str(bundle),
                        str(frames / "0.png"),
                        str(args.iters),
                        str(size),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row["python_p50_ms"].append(float(re.search(r"p50 ([\d.]+) ms", py.stdout)[1]))
                print(size, row["cpp_p50_ms"][-1], row["python_p50_ms"][-1], flush=True)
            rows.append(row)
    lines = [
        "# C++ runtime vs Python Segmenter: panoptic, OpenVINO, 2 threads",
        "",
        f"Machine: {describe()}. Bundle `{Path(bundle).name}`; one 640x480 RGB frame; "
        f"{args.iters} calls after {args.iters // 10 + 1} warm-ups per run; {args.runs} runs "
        "each, alternating C++ / Python, separate processes; command "
        "`python benchmarks/bench_cpp_vs_python.py --program PROGRAM`.",
        "",
        "| network input | C++ p50 ms (runs) | Python p50 ms (runs) | Python / C++ (medians) |",
        "|---|---|---|---:|",
    ]
    for r in rows:
        c, p = sorted(r["cpp_p50_ms"]), sorted(r["python_p50_ms"])
        lines.append(
            f"| {r['input_size']} | {', '.join(f'{v:.2f}' for v in r['cpp_p50_ms'])} | "
            f"{', '.join(f'{v:.2f}' for v in r['python_p50_ms'])} | "
            f"{p[len(p) // 2] / c[len(c) // 2]:.2f} |"
        )
    print("\n".join(lines) + "\n")
    write_results("cpp_vs_python", lines, rows)


if __name__ == "__main__":
    main()
