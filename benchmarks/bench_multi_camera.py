"""Several cameras at 640x480 (issue 28): aggregate and per-camera FPS for N = 1, 2, 4
cameras, task "track", on the real-time INT8 bundle (edge-s-fused-synthetic-ov-int8,
OpenVINO), in ONE process (``Segmenter.stream_many``, batched and with ``batch=1``) against
N separate processes each running ``Segmenter.stream`` on one camera, started together.

Cameras are iterables of frames already in memory (the sample clip resized to 640x480, each
camera from another offset, cycled): no decode cost, so every mode does the same work. The
CPU's cores are shared as a deployment would: the one process uses all of them
(``default_threads()``, 2 here); each of the N processes gets ``cores // N`` threads (at
least 1), so that N processes never ask for more threads than there are cores ("split");
a second N-process mode gives each process all the cores ("shared": the OS shares them).
Every mode warms up on the same shapes and ``settle()``s OpenVINO's static compiles before
timing; modes are interleaved, ``--rounds`` rounds, medians reported.

It also times the graphs alone on batches of 1, 2 and 4 letterboxed 640x480 frames
(the encoder and the panoptic decoder, OpenVINO with the runtime's CPU settings), which says
what batching can gain on this CPU.

    python benchmarks/bench_multi_camera.py             # writes results/multi_camera.md/.json
    python benchmarks/bench_multi_camera.py --frames 60 --rounds 1   # quicker, noisier
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from machine import clip_frames, describe, write_results

BUNDLE = "edge-s-fused-synthetic-ov-int8"
BACKEND = "openvino"
HW = (480, 640)
OFFSET = 7  # frames between the cameras' starting points in the clip


def _camera(frames: list, index: int, n: int):
    """Camera ``index``: ``n`` frames of the clip from its own offset, cycled."""
    return (frames[(index * OFFSET + k) % len(frames)] for k in range(n))


def _segmenter():
    from rapsam_edge.runtime.segmenter import Segmenter

    return Segmenter(BUNDLE, backend=BACKEND, color_order="BGR")


def _child(args: argparse.Namespace) -> None:
    """One camera in this process: warm up, say "ready", wait for "go", time, print JSON."""
    frames = clip_frames(64, HW)
    seg = _segmenter()
    for _ in seg.stream(_camera(frames, args.index, args.warmup)):
        pass
    seg.settle()
    print("ready", flush=True)
    sys.stdin.readline()
    n, start, cpu = 0, time.monotonic(), time.process_time()
    for _ in seg.stream(_camera(frames, args.index, args.frames)):
        n += 1
    end, cpu = time.monotonic(), time.process_time() - cpu
    print(json.dumps({"start": start, "end": end, "frames": n, "cpu": cpu}), flush=True)
    seg.close()


def _processes(n: int, threads: int, args: argparse.Namespace) -> dict:
    """N processes, one camera each, started together."""
    env = {**os.environ, "RAPSAM_EDGE_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--child", "--frames", str(args.frames)]
    cmd += ["--warmup", str(args.warmup)]
    procs = [
        subprocess.Popen(
            [*cmd, "--index", str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(n)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    out = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = max(o["end"] for o in out) - min(o["start"] for o in out)
    per = [o["frames"] / (o["end"] - o["start"]) for o in out]
    frames = sum(o["frames"] for o in out)
    cpu_ms = sum(o["cpu"] for o in out) * 1e3 / frames
    return {"aggregate": frames / wall, "per_camera": per, "cpu_ms_per_frame": cpu_ms}


def _one_process(seg, frames: list, n: int, batch, args: argparse.Namespace) -> dict:
    """N cameras through one ``stream_many``."""
    warm = [_camera(frames, i, args.warmup) for i in range(n)]
    for _ in seg.stream_many(warm, batch=batch):
        pass
    seg.settle()
    cams = [_camera(frames, i, args.frames) for i in range(n)]
    counts, last = [0] * n, [0.0] * n
    batches: list[int] = []
    start, cpu = time.monotonic(), time.process_time()
    for item in seg.stream_many(cams, batch=batch):
        assert item.error is None, item.error
        counts[item.source] += 1
        last[item.source] = time.monotonic()
        batches.append(item.batch)
    wall, cpu = time.monotonic() - start, time.process_time() - cpu
    per = [c / (t - start) for c, t in zip(counts, last)]
    return {
        "aggregate": sum(counts) / wall,
        "cpu_ms_per_frame": cpu * 1e3 / sum(counts),
        "per_camera": per,
        "mean_batch": statistics.mean(batches),
    }


def _graph_batches(rounds: int) -> dict:
    """ms per call and frames/s of the encoder and panoptic decoder alone at batch 1, 2, 4
    (OpenVINO, the backend's CPU settings, static shapes), interleaved."""
    import numpy as np
    import openvino as ov

    from rapsam_edge.assets import resolve_bundle
    from rapsam_edge.contract.threads import default_threads

    root = resolve_bundle(BUNDLE)
    core = ov.Core()
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": default_threads(),
        "INFERENCE_PRECISION_HINT": "f32",
    }
    graphs = {"encoder": ("encoder.int8.xml", (256, 320, 3), np.uint8)}
    graphs["panoptic_decoder"] = ("panoptic_decoder.xml", (128, 32, 40), np.float32)
    rng = np.random.default_rng(0)
    runs = {}
    for name, (xml, shape, dtype) in graphs.items():
        model = core.read_model(str(root / xml))
        for b in (1, 2, 4):
            m = model.clone()
            m.reshape({model.inputs[0].get_any_name(): [b, *shape]})
            req = core.compile_model(m, "CPU", config).create_infer_request()
            x = (rng.random((b, *shape)) * 255).astype(dtype)
            for _ in range(10):
                req.infer([x])
            runs[(name, b)] = (req, x, [])
    for _ in range(rounds):
        for (_, _), (req, x, times) in runs.items():
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 1.0:
                req.infer([x])
                n += 1
            times.append((time.perf_counter() - t0) / n * 1e3)
    out: dict = {}
    for (name, b), (_, _, times) in runs.items():
        ms = statistics.median(times)
        out.setdefault(name, {})[b] = {"ms_per_call": ms, "frames_per_s": b * 1e3 / ms}
    return out


def _modes(ns: list[int], cores: int) -> list[tuple[str, int, object]]:
    modes: list[tuple[str, int, object]] = []
    for n in ns:
        modes += [("one process, batched", n, "auto"), ("one process, batch=1", n, 1)]
        modes.append((f"{n} processes x {max(1, cores // n)} threads (split)", n, "split"))
        if cores // n != cores:
            modes.append((f"{n} processes x {cores} threads (shared)", n, "shared"))
    return modes


def _table(results: dict, modes: list, graphs: dict) -> list[str]:
    lines = [
        "# Several cameras in one process (`bench_multi_camera.py`)",
        "",
        f"{describe()}; bundle {BUNDLE} on {BACKEND}, task track, 640x480 frames from memory "
        "(the sample clip, resized; no decode), medians of the rounds. CPU ms / frame: the "
        "process time of all the processes (all their threads) over the frames.",
        "",
        "| cameras | mode | aggregate FPS | per-camera FPS (mean / min) | mean batch "
        "| CPU ms / frame | vs N processes (split), median of the rounds' ratios |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, n, _ in modes:
        r = results[(label, n)]
        split = results[next((lb, m) for lb, m, k in modes if m == n and k == "split")]
        agg = statistics.median(r["aggregate"])
        per = [statistics.median(c) for c in zip(*r["per_camera"])]
        batch = f"{statistics.median(r['mean_batch']):.2f}" if r.get("mean_batch") else "-"
        # paired: this mode's FPS over the split processes' FPS of the same round
        ratio = statistics.median(a / b for a, b in zip(r["aggregate"], split["aggregate"]))
        cpu = statistics.median(r["cpu_ms_per_frame"])
        lines.append(
            f"| {n} | {label} | {agg:.1f} | {statistics.mean(per):.1f} / {min(per):.1f} "
            f"| {batch} | {cpu:.1f} | {ratio:.2f}x |"
        )
    lines += ["", "Graphs alone on a batch (OpenVINO, LATENCY hint, static shapes):", ""]
    lines += ["| graph | batch | ms per call | frames/s | vs batch 1 |", "|---|---|---|---|---|"]
    for name, rows in graphs.items():
        for b, row in rows.items():
            gain = row["frames_per_s"] / rows[1]["frames_per_s"]
            lines.append(
                f"| {name} | {b} | {row['ms_per_call']:.2f} | {row['frames_per_s']:.0f} | {gain:.2f}x |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=120, help="timed frames per camera")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    from rapsam_edge.contract.threads import usable_cores

    cores = usable_cores()
    load_before = os.getloadavg()
    print(f"load: {load_before}", flush=True)
    frames = clip_frames(64, HW)
    seg = _segmenter()
    modes = _modes(args.cameras, cores)
    results: dict = {
        (label, n): {"aggregate": [], "per_camera": [], "mean_batch": [], "cpu_ms_per_frame": []}
        for label, n, _ in modes
    }
    for rnd in range(args.rounds):
        # every other round in reverse order: a drift of the machine's load favours no mode
        for label, n, kind in modes if rnd % 2 == 0 else modes[::-1]:
            if kind in ("split", "shared"):
                threads = max(1, cores // n) if kind == "split" else cores
                r = _processes(n, threads, args)
            else:
                r = _one_process(seg, frames, n, kind, args)
            for key, value in r.items():
                results[(label, n)][key].append(value)
            print(f"round {rnd}: {n} cameras, {label}: {r['aggregate']:.1f} FPS", flush=True)
    seg.close()
    graphs = _graph_batches(args.rounds)
    lines = _table(results, modes, graphs)
    after = os.getloadavg()
    lines += [
        "",
        "Load average (1, 5, 15 min) before: {:.2f}, {:.2f}, {:.2f}; after: {:.2f}, {:.2f}, "
        "{:.2f} (the machine is shared: a load above its 2 cores slows every mode; the "
        "ratios are paired per round).".format(*load_before, *after),
    ]
    payload = {
        "machine": describe(),
        "bundle": BUNDLE,
        "backend": BACKEND,
        "frames_per_camera": args.frames,
        "rounds": args.rounds,
        "runs": [{"mode": label, "cameras": n, **results[(label, n)]} for label, n, _ in modes],
        "graph_batches": graphs,
    }
    print(write_results("multi_camera", lines, payload).read_text())


if __name__ == "__main__":
    main()
