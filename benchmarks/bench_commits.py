"""Two source trees (e.g. before and after a refactor) timed through the public API, interleaved.

Each tree runs in a worker process of its own (``PYTHONPATH`` = the tree, its own compiled
core, ``RAPSAM_EDGE_OPS=cpp``); the parent asks both workers for the same case in turn,
alternating which goes first every round, so drift of the shared machine hits both alike.
Cases are what a user calls: ``rapsam_edge.ops`` post-processing (fusion of smooth and of noisy
logits, prompt masks, letterbox, overlay, assignment) and ``Segmenter`` end to end on 640x480
frames (panoptic of the default and of the real-time INT8 bundle on OpenVINO, a prompt after
``set_image``, tracking over the sample clip). The table gives each tree's p50 / p90 and the
ratio new / old of the p50s. Writes ``benchmarks/results/commits.md`` (and ``.json``).

    python benchmarks/bench_commits.py --old 5ab4bf2 --new .          # a git rev or a tree
    python benchmarks/bench_commits.py --old 5ab4bf2 --new . --rounds 5 --reps 10

A git rev is checked out into a temporary worktree and its core built there (CMake, Ninja,
pybind11); a directory is used as it is and must hold a built ``rapsam_edge/_core*.so``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
_MARK = "@@bench "  # protocol lines; anything else a worker prints (logs) is passed through
REPO = HERE.parent


# ---------------------------------------------------------------- worker side (one per tree)
def _worker_cases() -> dict:
    """name -> zero-argument callable, built once per worker with seed 0."""
    import cv2

    from rapsam_edge import Segmenter, ops
    from rapsam_edge.assets import DEFAULT_BUNDLE, REALTIME_BUNDLE, sample_clip

    rng = np.random.default_rng(0)
    n_q, n_c, side = 100, 12, 160
    valid = (side * 9 / 16, float(side))
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    cy = rng.uniform(0, valid[0], n_q).astype(np.float32)[:, None, None]
    cx = rng.uniform(0, side, n_q).astype(np.float32)[:, None, None]
    rad = rng.uniform(4, side / 4, n_q).astype(np.float32)[:, None, None]
    smooth = 8.0 * (1.0 - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / rad)
    smooth = np.ascontiguousarray(smooth + rng.normal(0, 0.5, smooth.shape), dtype=np.float32)
    noise = rng.normal(0, 1, (n_q, side, side)).astype(np.float32)
    cls = rng.normal(0, 1, (n_q, n_c + 1)).astype(np.float32)
    cls[:, -1] += 6.0
    kept = rng.choice(n_q, 20, replace=False)
    cls[kept, rng.integers(0, n_c, 20)] += 12.0
    is_thing = np.arange(n_c) < 8
    out = (720, 1280)
    frame720 = rng.integers(0, 256, (*out, 3), dtype=np.uint8)
    labels = np.repeat(np.repeat(rng.integers(0, 20, (45, 80)), 16, 0), 16, 1).astype(np.int32)
    cost = rng.random((50, 50))

    cap = cv2.VideoCapture(str(sample_clip()))
    frames = []
    while len(frames) < 8:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, (640, 480), interpolation=cv2.INTER_AREA))
    cap.release()
    default = Segmenter(DEFAULT_BUNDLE, backend="openvino", color_order="BGR")
    realtime = Segmenter(REALTIME_BUNDLE + "-ov-int8", backend="openvino", color_order="BGR")
    state = {"i": 0}

    def next_frame() -> np.ndarray:
        state["i"] = (state["i"] + 1) % len(frames)
        return frames[state["i"]]

    def prompt() -> object:
        emb = default.set_image(frames[0])
        return default.prompt(emb, points=[[320.0, 240.0]], boxes=[[100.0, 100.0, 300.0, 260.0]])

    return {
        "ops.panoptic_fuse smooth 160->720p, 20 kept": lambda: ops.panoptic_fuse(
            cls, smooth, valid, out, is_thing
        ),
        "ops.panoptic_fuse noise 160->720p, 20 kept": lambda: ops.panoptic_fuse(
            cls, noise, valid, out, is_thing
        ),
        "ops.prompt_masks smooth 160->720p, 16 prompts": lambda: ops.prompt_masks(
            np.ascontiguousarray(smooth[:16]), valid, out
        ),
        "ops.letterbox 720p->640": lambda: ops.letterbox(frame720, 640, 32, 0, True),
        "ops.overlay 720p, 20 segments": lambda: ops.overlay(frame720, labels),
        "ops.linear_assignment 50x50": lambda: ops.linear_assignment(cost),
        "Segmenter.panoptic default bundle (edge-s, OpenVINO)": lambda: default.panoptic(
            next_frame()
        ),
        "Segmenter.panoptic real-time INT8 (OpenVINO)": lambda: realtime.panoptic(next_frame()),
        "Segmenter.set_image + prompt (1 point, 1 box)": prompt,
        "Segmenter.track real-time INT8": lambda: realtime.track(next_frame()),
    }


def worker() -> None:
    cases = _worker_cases()
    print(_MARK + json.dumps({"ready": list(cases)}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        fn = cases[req["case"]]
        fn()  # warm-up of this case in this round
        times = []
        for _ in range(req["reps"]):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        print(_MARK + json.dumps(times), flush=True)


# ---------------------------------------------------------------- parent side
def _tree(spec: str, tmp: Path) -> Path:
    path = Path(spec)
    if path.is_dir():
        if not list((path / "rapsam_edge").glob("_core*.so")):
            sys.exit(f"{path} holds no built rapsam_edge/_core*.so (build it in place first)")
        return path.resolve()
    dest = tmp / spec.replace("/", "_")
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(dest), spec],
        check=True,
        capture_output=True,
    )
    pybind = subprocess.run(
        [sys.executable, "-m", "pybind11", "--cmakedir"], check=True, capture_output=True, text=True
    ).stdout.strip()
    build = dest / "build" / "py"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(dest),
            "-B",
            str(build),
            "-G",
            "Ninja",
            "-DSKBUILD=ON",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-Dpybind11_DIR={pybind}",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    for so in build.glob("_core*.so"):
        shutil.copy(so, dest / "rapsam_edge")
    return dest


def _start(tree: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree), RAPSAM_EDGE_OPS="cpp")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "bench_commits.py"), "--worker"],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, _read(proc)["ready"]


def _read(proc: subprocess.Popen) -> Any:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
        print(line, end="")
    sys.exit(f"a worker ended early (exit {proc.wait()})")


def _ask(proc: subprocess.Popen, case: str, reps: int) -> list[float]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"case": case, "reps": reps}) + "\n")
    proc.stdin.flush()
    return _read(proc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--old", help="git rev or source tree (the baseline; required)")
    parser.add_argument("--new", default=".", help="git rev or source tree (the candidate)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds per case")
    parser.add_argument("--reps", type=int, default=15, help="timed calls per round and tree")
    parser.add_argument("--stem", default="commits", help="results/STEM.md and .json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if not args.old:
        parser.error("--old is required")
    sys.path.insert(0, str(HERE))
    from machine import describe, write_results

    with tempfile.TemporaryDirectory() as tmp:
        trees = {"old": _tree(args.old, Path(tmp)), "new": _tree(args.new, Path(tmp))}
        procs = {k: _start(t) for k, t in trees.items()}
        cases = [c for c in procs["old"][1] if c in procs["new"][1]]
        times: dict[str, dict[str, list[float]]] = {c: {"old": [], "new": []} for c in cases}
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for case in cases:
                for k in order:
                    times[case][k] += _ask(procs[k][0], case, args.reps)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
        for proc, _ in procs.values():
            proc.stdin.close()
            proc.wait()
        for t in trees.values():
            if str(t).startswith(tmp):
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(t)],
                    check=False,
                    capture_output=True,
                )
    lines = [
        f"# {args.old} (old) vs {args.new} (new), interleaved",
        "",
        f"{describe()}; {args.rounds} rounds x {args.reps} calls per tree and case, order "
        "alternating per round; times in ms.",
        "",
        "| case | old p50 | new p50 | old p90 | new p90 | new / old (p50) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for case, t in times.items():
        o50, n50 = float(np.median(t["old"])), float(np.median(t["new"]))
        o90, n90 = float(np.percentile(t["old"], 90)), float(np.percentile(t["new"], 90))
        rows.append(
            {
                "case": case,
                "old_p50": o50,
                "new_p50": n50,
                "old_p90": o90,
                "new_p90": n90,
                "ratio": n50 / o50,
            }
        )
        lines.append(
            f"| {case} | {o50:.3f} | {n50:.3f} | {o90:.3f} | {n90:.3f} | {n50 / o50:.3f} |"
        )
    print("\n".join(lines))
    md = write_results(args.stem, lines, {"old": args.old, "new": args.new, "rows": rows})
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
