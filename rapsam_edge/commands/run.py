"""`rapsam-edge run [BUNDLE] --source IMAGE|VIDEO|CAMERA_INDEX`: run a bundle (a directory or a
shipped bundle's name; default: the shipped one) on an image, a video file or a camera and
write annotated output, printing per-stage timings and, for videos, how many tracks it found."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from ..errors import SourceError
from .draw import draw_panoptic
from .video import process_stream, tracks_report

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundle",
        nargs="?",
        default=None,
        help="bundle directory or a shipped bundle's name (default: the shipped one)",
    )
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

    source = args.source
    frame = None
    if Path(source).suffix.lower() in IMAGE_SUFFIXES:
        if not Path(source).is_file():
            raise SourceError(f"image {source!r} does not exist")
        frame = cv2.imread(source, cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f"cannot read image {source!r} (not an image file?)")
    elif not source.isdigit() and not Path(source).exists():
        raise SourceError(f"video source {source!r} does not exist")
    seg = Segmenter(
        args.bundle, backend=args.backend, color_order="BGR", input_size=args.input_size
    )
    print(f"bundle {seg.bundle.root}\nbackend {seg.backend_name}")
    args.out.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        result = seg.panoptic(frame)
        out = args.out / (Path(source).stem + "_panoptic.png")
        cv2.imwrite(str(out), draw_panoptic(frame, result))
        print(json.dumps({k: round(v, 2) for k, v in result.timings.items()}))
        print(f"{len(result.segments)} segments -> {out}")
        return 0
    src = int(source) if source.isdigit() else source
    out_video = args.out / f"{args.task}.mp4"
    times, n, wall = process_stream(
        seg, src, task=args.task, out_video=out_video, max_frames=args.max_frames
    )
    print(f"{n} frames in {wall:.2f} s ({n / max(wall, 1e-9):.1f} FPS)")
    if args.task == "track":
        print(tracks_report(seg)[1])
    print(times.table())
    print(f"wrote {out_video}")
    return 0
