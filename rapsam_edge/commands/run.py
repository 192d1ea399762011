"""`rapsam-edge run [BUNDLE] --source IMAGE|VIDEO|CAMERA_INDEX`: run a bundle (a directory or a
shipped bundle's name; default: the shipped one) on an image, a video file or a camera and
write annotated output, printing per-stage timings, each segment's class name and score (for
images) and, for videos, how many tracks it found."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..apps.checks import positive_int, side
from ..errors import SourceError
from ..runtime.capture import DEFAULT_OPEN_TIMEOUT, DEFAULT_READ_TIMEOUT, MAX_TIMEOUT


def _seconds(text: str) -> float:
    """argparse type: seconds in (0, MAX_TIMEOUT]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0.0 < value <= MAX_TIMEOUT:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_TIMEOUT:g}] seconds, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundle",
        nargs="?",
        default=None,
        help="bundle directory or a shipped bundle's name (default: the shipped one)",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="image, video file, camera index, rtsp:// or http(s):// URL, or a GStreamer "
        "pipeline ending in '! appsink'",
    )
    parser.add_argument(
        "--task",
        choices=("panoptic", "track"),
        default="track",
        help="for videos / cameras (default %(default)s; images: always panoptic)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        help="runtime backend: a name from `rapsam-edge info`, or auto (default %(default)s: "
        "a GPU backend if any, else the fastest CPU backend per graph, timed at start-up)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("run_out"), help="output directory (default %(default)s)"
    )
    parser.add_argument(
        "--max-frames",
        type=positive_int,
        help="stop after N >= 1 frames (default: the whole video; a camera: until Ctrl-C)",
    )
    parser.add_argument(
        "--input-size", type=side, help="network long side in pixels (default: the bundle's)"
    )
    parser.add_argument(
        "--open-timeout",
        type=_seconds,
        default=DEFAULT_OPEN_TIMEOUT,
        metavar="SECONDS",
        help="videos / cameras: fail when the source does not open and give its first frame "
        "within this time (also per camera reconnect attempt; default %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=DEFAULT_READ_TIMEOUT,
        metavar="SECONDS",
        help="videos / cameras: fail (a camera: reconnect) when no next frame comes within "
        "this time (default %(default)s)",
    )


def _check_source(source: str):
    """The image ``source`` names (H x W x 3 BGR), or None for a video file / camera index.

    Raises:
      SourceError: an image that cannot be read; a video path that does not exist or is a
      directory.
    """
    from ..apps.image import is_image, read_image
    from ..runtime.net_sources import names_stream

    if names_stream(source):  # a URL or pipeline: VideoSource checks it, before the bundle
        return None
    if is_image(source):
        return read_image(source)
    if not source.isdigit():
        if not Path(source).exists():
            raise SourceError(f"video source {source!r} does not exist")
        if Path(source).is_dir():
            raise SourceError(f"video source {source!r} is a directory, not a video file")
    return None


def _output(args: argparse.Namespace, image: bool) -> Path:
    """The file ``run`` writes, checked before the bundle loads (``writers.check_output``):
    OUT/STEM_panoptic.png for an image, OUT/TASK.mp4 for a video or camera."""
    from ..apps.writers import IMAGE_SUFFIXES, VIDEO_CODECS, check_output

    if image:
        path = args.out / (Path(args.source).stem + "_panoptic.png")
        return check_output(path, "the panoptic image", IMAGE_SUFFIXES)
    return check_output(
        args.out / f"{args.task}.mp4", f"the {args.task} video", frozenset(VIDEO_CODECS)
    )


def _run_image(seg, frame, out: Path) -> None:
    from ..apps.draw import draw_panoptic
    from ..apps.image import segment_lines
    from ..apps.timing import StageTimes
    from ..apps.writers import write_image

    result = seg.panoptic(frame)
    write_image(out, draw_panoptic(frame, result), "the panoptic image")
    times = StageTimes()
    times.add(result.timings)
    print(times.table())
    print(f"{len(result.segments)} segments -> {out}")
    for line in segment_lines(result):
        print(line)


def run(args: argparse.Namespace) -> int:
    frame = _check_source(args.source)  # before the bundle loads and backends are timed
    out = _output(args, frame is not None)  # so is the output path
    from ..apps.video import process_stream, tracks_report
    from ..runtime.capture import SourceOptions, VideoSource

    if frame is None:
        options = SourceOptions(open_timeout=args.open_timeout, read_timeout=args.read_timeout)
        source = int(args.source) if args.source.isdigit() else args.source
        video = VideoSource(source, options)  # a directory / socket: refused here
    from ..runtime.segmenter import Segmenter

    seg = Segmenter(
        args.bundle, backend=args.backend, color_order="BGR", input_size=args.input_size
    )
    print(f"bundle {seg.bundle.root}\nbackend {seg.backend_name}")
    if frame is not None:
        _run_image(seg, frame, out)
        return 0
    times, n, wall = process_stream(
        seg, video, task=args.task, out_video=out, max_frames=args.max_frames
    )
    print(f"{n} frames in {wall:.2f} s ({n / max(wall, 1e-9):.1f} FPS)")
    if args.task == "track":
        print(tracks_report(seg)[1])
    print(times.table())
    print(f"wrote {out} ({n} frames, checked)")  # process_stream checked the file
    return 0
