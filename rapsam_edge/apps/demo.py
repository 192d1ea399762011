"""`rapsam-edge demo`: the shipped default bundle on the shipped sample clip, all three tasks.

Writes ``panoptic.png`` (first frame), ``prompts.png`` (point and box prompts on the first
frame), ``tracking.mp4`` (online video instance segmentation with track ids) and
``timings.json`` to ``--out``, and prints per-stage timings (p50 / p90 / p99)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from .draw import draw_panoptic, draw_prompts
from .timing import StageTimes
from .video import process_stream


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory")
    parser.add_argument("--bundle", type=Path, help="bundle (default: the shipped one)")
    parser.add_argument("--source", help="video file (default: the shipped sample clip)")
    parser.add_argument(
        "--backend",
        default="auto",
        help="runtime backend (default auto: a GPU backend if any, else the "
        "fastest CPU backend per graph, timed at start-up)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of each stage")


def _first_frame(source: str) -> np.ndarray:
    cap = cv2.VideoCapture(source)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read a frame from {source}")
    return frame


def run(args: argparse.Namespace) -> int:
    from ..assets import default_bundle, sample_clip
    from ..runtime.segmenter import Segmenter

    bundle = args.bundle or default_bundle()
    source = str(args.source or sample_clip())
    seg = Segmenter(bundle, backend=args.backend, color_order="BGR")  # OpenCV frames
    print(f"bundle {bundle}\nbackend {seg.backend_name}\nsource {source}")
    args.out.mkdir(parents=True, exist_ok=True)
    frame = _first_frame(source)
    report: dict = {"bundle": str(bundle), "backend": seg.backend_name, "source": source}

    # 1. panoptic segmentation of one frame
    pan_times = StageTimes()
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        pan = seg.panoptic(frame)
        pan_times.add({**pan.timings, "total": (time.perf_counter() - t0) * 1e3})
    cv2.imwrite(str(args.out / "panoptic.png"), draw_panoptic(frame, pan))
    names = [pan.class_names[c] for c in pan.segments["class"]]
    print(f"\n[panoptic] {len(pan.segments)} segments: {', '.join(names)}")
    print(pan_times.table())

    # 2. interactive: encoder once, then cheap prompt decodes
    h, w = frame.shape[:2]
    points = [(int(x0 + x1) // 2, int(y0 + y1) // 2) for x0, y0, x1, y1 in pan.boxes[:3]]
    points = points or [(w // 2, h // 2)]
    boxes = [(w * 0.05, h * 0.05, w * 0.45, h * 0.45)]
    prompt_times = StageTimes()
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        seg.set_image(frame)
        t1 = time.perf_counter()
        res = seg.prompt(points=points[:1])
        t2 = time.perf_counter()
        prompt_times.add({"set_image": (t1 - t0) * 1e3, "prompt_1pt": (t2 - t1) * 1e3})
    res = seg.prompt(points=points, boxes=boxes)
    cv2.imwrite(str(args.out / "prompts.png"), draw_prompts(frame, res, points, boxes))
    summary = prompt_times.summary()
    full = pan_times.summary()["total"]["p50_ms"]
    ratio = full / summary["prompt_1pt"]["p50_ms"]
    print(
        f"\n[interactive] {len(points)} points + {len(boxes)} box; predicted IoU "
        f"{', '.join(f'{v:.2f}' for v in res.iou)}"
    )
    print(prompt_times.table())
    print(f"one prompt after set_image costs 1/{ratio:.1f} of a full panoptic frame")

    # 3. online video instance segmentation over the clip
    track_times, n, wall = process_stream(
        seg, source, task="track", out_video=args.out / "tracking.mp4"
    )
    print(
        f"\n[tracking] {n} frames in {wall:.2f} s = {n / wall:.1f} FPS end to end "
        f"(capture + letterbox of frame t+1 overlap inference of frame t); "
        f"{len(seg.tracker.tracks)} live tracks at the end"
    )
    print(track_times.table())

    report.update(
        panoptic=pan_times.summary(),
        interactive=summary,
        prompt_vs_frame_ratio=ratio,
        tracking=track_times.summary(),
        tracking_fps=n / wall,
        frames=n,
    )
    (args.out / "timings.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}/panoptic.png, prompts.png, tracking.mp4, timings.json")
    return 0
