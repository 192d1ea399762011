"""`rapsam-edge run BUNDLE --source A --source B ...` (``commands.run`` calls ``run_many``): several videos / cameras in one process
(``Segmenter.stream_many``: a capture thread per source, one tracker each, the encoder
batched across them). Each source writes ``OUT/I/TASK.mp4`` (I: its position on the
command line, from 0: two cameras or two files of one name never collide) and gets one
summary line (frames, FPS, tracks, its file, or its error). A source that fails ends alone:
the others run on and their videos are written; the exit status is then 2 (1 error line per
failed source in the summary, with its hint)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RapsamEdgeError, SourceError

__all__ = ["run_many"]


def _sources(args: argparse.Namespace) -> list[Any]:
    """The command line's sources as ``stream_many`` takes them (each checked by ``run``
    first: an existing video file or a camera index), checked before the bundle loads.

    Raises:
      ConfigError: --prompt / --box (they name pixels of one source), a source given
        twice."""
    from ..runtime.multi_stream import _check_sources

    if args.prompts:
        raise ConfigError(
            "--prompt / --box name pixels of one source; they cannot be used with several --source",
            hint="run the prompted source alone",
        )
    out = [int(s) if s.isdigit() and not Path(s).exists() else s for s in args.source]
    _check_sources(out)
    return out


class _Out:
    """One source's output: its video, frame count, times and end."""

    def __init__(self, path: Path, task: str) -> None:
        from .timing import StageTimes
        from .writers import VideoOut

        self.video = VideoOut(path, 10.0, f"the {task} video")
        self.times = StageTimes()
        self.frames = 0
        self.last = 0.0  # when its last frame was done
        self.error: Exception | None = None


def _summary(seg: Any, i: int, source: Any, out: _Out, task: str, start: float) -> str:
    from .video import tracks_report

    head = f"source {i} ({source}): {out.frames} frames"
    if out.error is not None:
        hint = getattr(out.error, "hint", None)
        return f"{head}, then FAILED: {type(out.error).__name__}: {out.error}" + (
            f" (hint: {hint})" if hint else ""
        )
    wall = max(out.last - start, 1e-9)
    line = f"{head} ({out.frames / wall:.1f} FPS)"
    if task == "track":
        seg.last_stream_tracker = seg.last_stream_trackers[i]
        line += f", {tracks_report(seg)[1]}"
    return f"{line} -> {out.video.path}"


def run_many(args: argparse.Namespace, task: str) -> int:
    """``rapsam-edge run`` with several --source (this module's doc)."""
    from ..runtime.capture import SourceOptions, VideoSource
    from .video import _draw
    from .writers import check_output

    sources = _sources(args)
    paths = [args.out / str(i) / f"{task}.mp4" for i in range(len(sources))]
    for path in paths:
        check_output(path, f"the {task} video", frozenset({".mp4"}))
    options = SourceOptions(open_timeout=args.open_timeout, read_timeout=args.read_timeout)
    videos = [VideoSource(s, options) for s in sources]
    from ..runtime.segmenter import Segmenter

    seg = Segmenter(
        args.bundle, backend=args.backend, color_order="BGR", input_size=args.input_size
    )
    print(f"bundle {seg.bundle.root}\nbackend {seg.backend_name}\n{len(sources)} sources")
    outs = [_Out(path, task) for path in paths]
    start = time.perf_counter()
    try:
        for item in seg.stream_many(videos, task=task, max_frames=args.max_frames):
            out, now = outs[item.source], time.perf_counter()
            if item.error is not None:
                out.error = item.error
                continue
            assert item.frame is not None and item.result is not None
            out.times.add({**item.result.timings, "frame": (now - (out.last or start)) * 1e3})
            out.video.write(_draw(item.frame, item.result, seg))
            out.frames += 1
            out.last = time.perf_counter()
    finally:
        for out in outs:
            out.video.release()
    wall = time.perf_counter() - start
    for i, (source, out) in enumerate(zip(sources, outs)):
        if out.error is None and out.frames == 0 and args.max_frames != 0:
            out.error = SourceError(f"no frame could be read from {source!r}")
        if out.frames:
            out.video.close()  # the file holds every frame, or OutputError
        print(_summary(seg, i, source, out, task, start))
    total = sum(o.frames for o in outs)
    print(f"{total} frames from {len(sources)} sources in {wall:.2f} s ({total / wall:.1f} FPS)")
    for i, out in enumerate(outs):
        if out.frames:
            print(f"source {i} stages:\n{out.times.table()}")
    failed = [o.error for o in outs if o.error is not None]
    seg.close()
    return 2 if any(isinstance(e, RapsamEdgeError) for e in failed) else (1 if failed else 0)
