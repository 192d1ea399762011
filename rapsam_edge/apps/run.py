"""`rapsam-edge run BUNDLE --source IMAGE|VIDEO|CAMERA_INDEX`: run a bundle on an image, a
video file or a camera and write annotated output, printing per-stage timings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from .draw import draw_panoptic
from .video import process_stream

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="model bundle directory")
    parser.add_argument("--source", required=True, help="image, video file or camera index")
    parser.add_argument(
        "--task",
        choices=("panoptic", "track"),
        default="track",
        help="for videos / cameras (images: panoptic)",
    )
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", type=Path, default=Path("run_out"), help="output directory")
    parser.add_argument("--max-frames", type=int, help="stop after N frames (cameras)")
    parser.add_argument("--input-size", type=int, help="network long side (default: bundle's)")


def run(args: argparse.Namespace) -> int:
    from ..runtime.segmenter import Segmenter

    seg = Segmenter(
        args.bundle, backend=args.backend, color_order="BGR", input_size=args.input_size
    )
    print(f"backend {seg.backend_name}")
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.source
    if Path(source).suffix.lower() in IMAGE_SUFFIXES:
        frame = cv2.imread(source, cv2.IMREAD_COLOR)
        if frame is None:
            raise SystemExit(f"cannot read image {source}")
        result = seg.panoptic(frame)
        out = args.out / (Path(source).stem + "_panoptic.png")
        cv2.imwrite(str(out), draw_panoptic(frame, result))
        print(json.dumps({k: round(v, 2) for k, v in result.timings.items()}))
        print(f"{len(result.segments)} segments -> {out}")
        return 0
    src = int(source) if source.isdigit() else source
    times, n, wall = process_stream(
        seg,
        src,
        task=args.task,
        out_video=args.out / f"{args.task}.mp4",
        max_frames=args.max_frames,
    )
    print(f"{n} frames in {wall:.2f} s ({n / max(wall, 1e-9):.1f} FPS)")
    print(times.table())
    return 0
