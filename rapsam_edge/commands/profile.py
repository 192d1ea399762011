"""`rapsam-edge profile`: the on-device FPS profiler (see ``profile.runner``).

rapsam-edge profile                                   # shipped bundle, auto, panoptic
rapsam-edge profile BUNDLE --backend openvino --mode stream --source clip.mp4
rapsam-edge profile --compare ort-cpu,openvino --json r.json --markdown r.md --plot r.png
rapsam-edge profile --layers --iters 50
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..apps.checks import SIDE_MAX, SIDE_MIN, int_in, nonneg_int, positive_int, require, side
from ..contract.shared import MAX_THREADS
from ..profile.runner import MODES

__all__ = ["add_arguments", "frame_size", "run"]


def frame_size(text: str) -> tuple[int, int]:
    """argparse type of a WxH frame size -> (H, W)."""
    m = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 640x480, got {text!r}")
    h, w = int(m.group(2)), int(m.group(1))
    if not (SIDE_MIN <= h <= SIDE_MAX and SIDE_MIN <= w <= SIDE_MAX):
        raise argparse.ArgumentTypeError(f"sides must be in {SIDE_MIN}..{SIDE_MAX}, got {text!r}")
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundle", nargs="?", help="bundle directory or shipped name (default: the shipped one)"
    )
    parser.add_argument(
        "--backend", default="auto", help="backend name, or auto / fastest (default %(default)s)"
    )
    parser.add_argument(
        "--device", help="backend device, e.g. CPU, GPU, cuda:0 (default: the backend's own)"
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16", "int8"),
        help="runtime precision: OpenVINO hint / TensorRT engine (default: the bundle's graphs as stored)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="panoptic",
        help="what is timed: panoptic frames, prompt decodes after one set_image, tracking, "
        "or a video stream with capture overlapped (default %(default)s)",
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        "--input",
        type=frame_size,
        default="640x480",  # a string default goes through type= too: (480, 640)
        metavar="WxH",
        help="synthetic frame size (default %(default)s)",
    )
    src.add_argument(
        "--source",
        help="video file, image file or camera index to take frames from (default: a synthetic frame)",
    )
    parser.add_argument(
        "--warmup", type=nonneg_int, default=10, help="untimed iterations (default %(default)s)"
    )
    parser.add_argument(
        "--iters", type=positive_int, default=100, help="timed iterations (default %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=int_in(1, MAX_THREADS),
        help="threads per graph and for the C++ core (default: RAPSAM_EDGE_THREADS or the usable cores)",
    )
    parser.add_argument(
        "--input-size",
        type=side,
        default=None,
        help="network long side in pixels (default: each bundle's own)",
    )
    parser.add_argument(
        "--prompts",
        type=positive_int,
        default=1,
        help="clicks per prompt call, prompt mode (default %(default)s)",
    )
    parser.add_argument(
        "--compare",
        default=None,
        help="more targets, comma-separated BACKEND[:BUNDLE], interleaved; ratios to the first "
        "(default: none)",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="top operators by time from the backend's own profiler",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON (default: none)")
    parser.add_argument(
        "--markdown", type=Path, help="write the report as Markdown (default: printed only)"
    )
    parser.add_argument(
        "--plot", type=Path, help="write a PNG, needs matplotlib: the 'plot' extra (default: none)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_outputs(args: argparse.Namespace) -> None:
    """--json, --markdown and --plot: not directories, their folders made, and a --plot
    suffix matplotlib writes (``writers.check_output``; OutputError otherwise)."""
    from ..apps.writers import check_output

    for path, what in ((args.json, "the JSON report"), (args.markdown, "the Markdown report")):
        if path is not None:
            check_output(path, what)
    if args.plot is not None:
        from matplotlib.figure import Figure

        formats = frozenset(f".{k}" for k in Figure().canvas.get_supported_filetypes())
        check_output(args.plot, "the plot", formats)


def run(args: argparse.Namespace) -> int:
    source = args.source
    if source is not None and source.isdigit():
        source = int(source)
    else:
        require(source, "--source")
    from ..profile.report import to_markdown, write_plot
    from ..profile.runner import ProfileConfig, Target, parse_targets, run_profile

    if args.plot is not None:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError as e:
            from ..errors import MissingDependencyError

            raise MissingDependencyError(
                "--plot needs matplotlib", hint="pip install 'rapsam-edge[plot]'"
            ) from e
    targets = parse_targets(Target(args.bundle, args.backend), (args.compare or "").split(","))
    config = ProfileConfig(
        targets=targets,
        mode=args.mode,
        input_hw=args.input,
        source=source,
        warmup=args.warmup,
        iters=args.iters,
        threads=args.threads,
        input_size=args.input_size,
        device=args.device,
        precision=args.precision,
        prompts=args.prompts,
        layers=args.layers,
        progress=not args.no_progress,
    )
    _check_outputs(args)  # before a long run, not after it
    report = run_profile(config)
    text = to_markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    if args.plot:
        write_plot(report, args.plot, report.get("samples"))
    from ..apps.writers import check_written

    written = [
        str(check_written(p, "the report"))
        for p in (args.json, args.markdown, args.plot)
        if p is not None
    ]
    if written:
        print(f"wrote {', '.join(written)}")
    return 0
