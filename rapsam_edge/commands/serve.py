"""`rapsam-edge serve --source S [--bundle B]`: a browser view of click-to-track. Serves, on
127.0.0.1 by default, a page with the live annotated stream: a click tracks the object there,
a drag tracks the object in the box, a right click stops tracking it; per-stage timings and
the frame index are shown (``apps.serve`` gives the routes and the socket's messages)."""

from __future__ import annotations

import argparse
import math

from ..apps.checks import add_source_timeouts, int_in, side

#: the port when --port is not given
DEFAULT_PORT = 8765


def _fps(text: str) -> float:
    """argparse type: frames a second in (0, 1000]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames a second, got {text!r}") from None
    if not (math.isfinite(value) and 0.0 < value <= 1000.0):
        raise argparse.ArgumentTypeError(f"must be in (0, 1000] frames a second, got {text}")
    return value


_fps.__name__ = "float"  # argparse names the type in its messages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="video file or camera index")
    parser.add_argument(
        "--bundle",
        default=None,
        help="bundle directory or a shipped bundle's name (default: the shipped one)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        help="runtime backend: a name from `rapsam-edge info`, or auto (default %(default)s)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default %(default)s; a non-loopback address needs "
        "--allow-remote)",
    )
    parser.add_argument(
        "--port",
        type=int_in(0, 65535, what="a port"),
        default=DEFAULT_PORT,
        help="TCP port; 0 picks a free one (the URL is printed; default %(default)s)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not a loopback address (a warning is printed: the page "
        "has no authentication)",
    )
    parser.add_argument(
        "--loop", action="store_true", help="a video file starts again at its end (a demo)"
    )
    parser.add_argument(
        "--max-fps",
        type=_fps,
        default=None,
        help="at most this many frames a second (default: as fast as inference runs)",
    )
    parser.add_argument(
        "--paused",
        action="store_true",
        help="start paused on the first frame (the page's Resume / Step buttons run it)",
    )
    parser.add_argument(
        "--input-size", type=side, help="network long side in pixels (default: the bundle's)"
    )
    add_source_timeouts(parser)


def run(args: argparse.Namespace) -> int:
    from ..apps.serve import check_host, serve  # needs the 'serve' extra (aiohttp)
    from ..apps.serve_engine import Engine
    from ..runtime.capture import SourceOptions, VideoSource
    from ..runtime.segmenter import Segmenter

    check_host(args.host, args.allow_remote)  # before the bundle loads
    options = SourceOptions(open_timeout=args.open_timeout, read_timeout=args.read_timeout)
    target = int(args.source) if args.source.isdigit() else args.source
    video = VideoSource(target, options)  # a missing path / a directory: refused here
    seg = Segmenter(
        args.bundle, backend=args.backend, color_order="BGR", input_size=args.input_size
    )
    print(f"bundle {seg.bundle.root}\nbackend {seg.backend_name}", flush=True)
    engine = Engine(
        seg, video, options, loop_video=args.loop, max_fps=args.max_fps, paused=args.paused
    )
    return serve(engine, host=args.host, port=args.port, allow_remote=args.allow_remote)
