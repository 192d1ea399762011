"""`rapsam-edge run [BUNDLE] --source IMAGE|VIDEO|CAMERA_INDEX`: run a bundle (a directory or a
shipped bundle's name; default: the shipped one) on an image, a video file or a camera and
write annotated output, printing per-stage timings, each segment's class name and score (for
images) and, for videos, how many tracks it found.

Click-to-track: `--prompt x,y` and `--box x0,y0,x1,y1` (repeatable; frame pixels) each make one
object on the first frame (ids 1, 2, ... in command-line order), tracked through the video
(task "prompt": `OUT/prompt.mp4`, each object's mask, id and state; per object the frames it
was tracked, occluded and lost are printed) or, on an image, segmented (`OUT/STEM_prompt.png`).

Several `--source` (videos / cameras): one process serves them all (``apps.multi_video``)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..apps.checks import add_source_timeouts, positive_int, side
from ..errors import SourceError

if TYPE_CHECKING:
    import numpy as np

    from ..runtime.segmenter import Segmenter


def _numbers(text: str, n: int, form: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts] if len(parts) == n else []
    except ValueError:
        values = []
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected {form} ({n} finite numbers), got {text!r}")
    return values


def _click(text: str) -> tuple[str, tuple[float, ...]]:
    """argparse type of --prompt: "x,y" frame pixels, each >= 0 -> ("points", (x, y))."""
    x, y = _numbers(text, 2, "x,y")
    if x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"a click lies in the frame: x, y >= 0, got {text!r}")
    return "points", (x, y)


def _box(text: str) -> tuple[str, tuple[float, ...]]:
    """argparse type of --box: "x0,y0,x1,y1" frame pixels, x1 > x0, y1 > y0 -> ("boxes", ...)."""
    x0, y0, x1, y1 = _numbers(text, 4, "x0,y0,x1,y1")
    if x1 <= x0 or y1 <= y0 or x1 <= 0 or y1 <= 0:
        raise argparse.ArgumentTypeError(
            f"a box needs x1 > x0, y1 > y0 and x1, y1 > 0 (it must overlap the frame), got {text!r}"
        )
    return "boxes", (x0, y0, x1, y1)


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
        action="append",
        help="image, video file, camera index, rtsp:// or http(s):// URL, or a GStreamer "
        "pipeline ending in '! appsink'; repeat for several videos / cameras in one process "
        "(each writes OUT/I/TASK.mp4, I = its position from 0)",
    )
    parser.add_argument(
        "--task",
        choices=("panoptic", "track", "prompt"),
        default=None,
        help="for videos / cameras (default: prompt with --prompt / --box, else track; "
        "images: panoptic, or the prompts' masks with --prompt / --box)",
    )
    parser.add_argument(
        "--prompt",
        dest="prompts",
        action="append",
        type=_click,
        metavar="X,Y",
        help="click-to-track: one object from a click at pixel (x, y) of the first frame; "
        "repeat for more objects (default: none)",
    )
    parser.add_argument(
        "--box",
        dest="prompts",
        action="append",
        type=_box,
        metavar="X0,Y0,X1,Y1",
        help="click-to-track: one object from a box (pixels, exclusive max) on the first "
        "frame; repeat for more objects (default: none)",
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
    add_source_timeouts(parser, "videos / cameras: ")
    _add_sink_arguments(parser)


def _add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    """--record / --view / --overwrite (``ros.sinks``; docs/ros.md)."""
    parser.add_argument(
        "--record",
        metavar="FILE.mcap",
        help="videos / cameras: also write the ROS 2 output messages to this MCAP file "
        "(Foxglove, ros2 bag; its folder must exist; needs rapsam-edge[record]; default: no "
        "recording)",
    )
    parser.add_argument(
        "--view",
        nargs="?",
        const="",
        metavar="FILE.rrd|URL",
        help="videos / cameras: log to Rerun: no value spawns the viewer, FILE.rrd saves to "
        "a file, rerun+http://HOST:PORT/proxy streams to a running viewer (needs "
        "rapsam-edge[view]; default: no view)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="let --record / --view replace an existing file (default: refused)",
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


def _task(args: argparse.Namespace) -> str:
    """The task: --task, else "prompt" with --prompt / --box, else "track".

    Raises:
      ConfigError: --prompt / --box with --task track or panoptic (they do not draw them),
        --task prompt without them, or more of them than one decoder call takes (objects:
        the Segmenter's max_prompts, the contract's MAX_PROMPTS: known before any load)."""
    from ..contract.shared import MAX_PROMPTS
    from ..errors import ConfigError

    if not args.prompts:
        if args.task == "prompt":
            raise ConfigError(
                "--task prompt tracks the objects given by --prompt / --box; none given",
                hint="add --prompt X,Y (a click) or --box X0,Y0,X1,Y1 on the first frame",
            )
        return args.task or "track"
    if len(args.prompts) > MAX_PROMPTS:
        raise ConfigError(
            f"{len(args.prompts)} --prompt / --box given; at most {MAX_PROMPTS} objects are "
            "tracked at once (one per --prompt / --box)",
            hint=f"give at most {MAX_PROMPTS} --prompt / --box arguments",
        )
    if args.task not in (None, "prompt"):
        raise ConfigError(
            f"--prompt / --box are tracked by task 'prompt', not --task {args.task}",
            hint="leave --task out (prompt is the default with --prompt / --box)",
        )
    return "prompt"


def _output(args: argparse.Namespace, image: bool) -> Path:
    """The file ``run`` writes, checked before the bundle loads (``writers.check_output``):
    OUT/STEM_panoptic.png (OUT/STEM_prompt.png with prompts) for an image, OUT/TASK.mp4 for
    a video or camera."""
    from ..apps.writers import IMAGE_SUFFIXES, VIDEO_CODECS, check_output

    if image:
        kind = "prompt" if args.prompts else "panoptic"
        path = args.out / (Path(args.source).stem + f"_{kind}.png")
        return check_output(path, f"the {kind} image", IMAGE_SUFFIXES)
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


def _specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One ``PromptTracker.add`` mapping per --prompt / --box, in command-line order."""
    return [{kind: [value]} for kind, value in args.prompts or ()]


def _names(args: argparse.Namespace) -> dict[int, str]:
    """Object id -> what made it ("click (x, y)", "box (x0, y0, x1, y1)")."""
    return {
        i + 1: f"{'click' if kind == 'points' else 'box'} ({', '.join(f'{v:g}' for v in value)})"
        for i, (kind, value) in enumerate(args.prompts or ())
    }


def _run_prompt_image(
    seg: Segmenter, frame: np.ndarray, out: Path, args: argparse.Namespace
) -> None:
    from ..apps.draw import draw_prompt_tracks
    from ..apps.writers import write_image
    from ..runtime.results import PromptTrackResult

    pt = seg.prompt_tracker()
    emb = seg.set_image(frame)
    records = [rec for spec in _specs(args) for rec in pt.add_tracks(emb, **spec)]
    result = PromptTrackResult(0, records, emb.frame_hw, dict(emb.timings))
    write_image(out, draw_prompt_tracks(frame, result), "the prompt image")
    names = _names(args)
    for rec in records:
        x0, y0, x1, y1 = (int(v) for v in rec.box)
        print(
            f"object {rec.id} ({names[rec.id]}): mask of {int(rec.mask.sum())} px, box "
            f"({x0}, {y0}, {x1}, {y1}), predicted IoU {rec.score:.2f}"
        )
    print(f"{len(records)} objects -> {out}")


def run(args: argparse.Namespace) -> int:
    args.task = _task(args)
    if len(args.source) > 1:  # several videos / cameras, one process
        from ..apps.multi_video import run_many
        from ..errors import ConfigError

        if args.record is not None or args.view is not None:
            raise ConfigError(
                "--record / --view take one --source (several sources write a video each)",
                hint="record or view each camera in its own run",
            )
        for source in args.source:
            if _check_source(source) is not None:
                raise ConfigError(
                    f"{source!r} is an image: several --source are videos or cameras",
                    hint="run an image alone: rapsam-edge run --source IMAGE",
                )
        return run_many(args, args.task)
    args.source = args.source[0]
    frame = _check_source(args.source)  # before the bundle loads and backends are timed
    out = _output(args, frame is not None)  # so is the output path
    sink_spec = _check_sinks(args, frame is not None)  # and --record / --view
    from ..apps.video import ObjectStates, process_stream, tracks_report
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
        if args.prompts:
            _run_prompt_image(seg, frame, out, args)
        else:
            _run_image(seg, frame, out)
        return 0
    states = ObjectStates()
    sinks = []
    if sink_spec is not None:
        from ..ros.sinks import open_sinks

        sinks = open_sinks(seg, sink_spec)
    times, n, wall = process_stream(
        seg,
        video,
        task=args.task,
        out_video=out,
        max_frames=args.max_frames,
        prompts=_specs(args) or None,
        states=states,
        sinks=sinks,
    )
    print(f"{n} frames in {wall:.2f} s ({n / max(wall, 1e-9):.1f} FPS)")
    if args.task == "track":
        print(tracks_report(seg)[1])
    for line in states.lines(_names(args)):
        print(line)
    print(times.table())
    print(f"wrote {out} ({n} frames, checked)")  # process_stream checked the file
    for sink in sinks:
        if getattr(sink, "path", None) is not None:
            print(f"wrote {sink.path} ({n} frames)")
    return 0


def _check_sinks(args: argparse.Namespace, image: bool):
    """--record / --view checked before the bundle loads (``ros.sinks.check_sinks``), or
    None when neither is given.

    Raises:
      ConfigError: --record / --view with an image source."""
    if args.record is None and args.view is None:
        return None
    if image:
        from ..errors import ConfigError

        raise ConfigError(
            "--record / --view take a video, camera or stream source, not an image",
            hint="give a video file, a camera index or a URL as --source",
        )
    from ..ros.sinks import check_sinks

    return check_sinks(args.record, args.view, args.overwrite)
