"""Run a Segmenter over a video source and write an annotated MP4, and say how many tracks it
found (shared by demo and run)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SourceError
from ..runtime.results import TrackResult
from .draw import draw_panoptic, draw_tracks
from .timing import StageTimes
from .writers import VideoOut

if TYPE_CHECKING:
    from ..runtime.capture import VideoSource
    from ..runtime.segmenter import Segmenter

__all__ = ["process_stream", "tracks_report"]


def process_stream(
    seg: Segmenter,
    source: int | str | Path | VideoSource | Iterable[np.ndarray],
    *,
    task: str,
    out_video: Path | None,
    fps: float = 10.0,
    max_frames: int | None = None,
) -> tuple[StageTimes, int, float]:
    """Run ``seg.stream(source, task=task)`` and write the annotated frames to ``out_video``
    (track ids, frame index and track count for "track"; class labels for "panoptic").

    Arguments:
      seg: a ``Segmenter``; its ``last_stream_tracker`` afterwards holds the stream's tracks.
      source: camera index, video path or iterable of frames (``Segmenter.stream``).
      task: "track" or "panoptic".
      out_video: a .mp4 (mp4v) or .avi (MJPG) file to write (``writers.VideoOut``: checked
        before the first frame, each frame of another size letterboxed to the first one's,
        the file checked at the end), or None.
      fps: frames per second of the written file.
      max_frames: stop after this many frames (None: the whole source).
    Returns:
      (per-stage times in ms incl. end-to-end "frame", frames processed, wall seconds); when
      it returns with frames processed, ``out_video`` holds every one of them.
    Raises:
      SourceError: the source cannot be opened or yields no frame. ConfigError: bad task /
      max_frames. OutputError: ``out_video`` cannot be written, or is not what was written.
    """
    times = StageTimes()
    video = VideoOut(out_video, fps, f"the {task} video") if out_video is not None else None
    n = 0
    t_start = t_last = time.perf_counter()
    try:
        for frame, result in seg.stream(source, task=task, max_frames=max_frames):
            now = time.perf_counter()
            times.add({**result.timings, "frame": (now - t_last) * 1e3})
            if video is not None:
                video.write(
                    draw_tracks(frame, result, seg.class_names)
                    if isinstance(result, TrackResult)  # task "track"
                    else draw_panoptic(frame, result)
                )
            n += 1
            t_last = time.perf_counter()
    finally:
        if video is not None:
            video.release()
    if n == 0 and max_frames != 0:
        raise SourceError(f"no frame could be read from {source!r} (empty or not a video?)")
    if video is not None and n:
        video.close()  # the file holds every frame, or OutputError
    return times, n, time.perf_counter() - t_start


def _is_shipped(seg: Segmenter) -> bool:
    from ..assets import models_dir
    from ..errors import RapsamEdgeError

    try:
        return Path(seg.bundle.root).resolve().parent == models_dir().resolve()
    except (RapsamEdgeError, OSError):
        return False


def tracks_report(seg: Segmenter) -> tuple[int, str]:
    """How many tracks the Segmenter's last stream started, as a number and one line for
    people; when none, the line says why.

    Arguments:
      seg: a ``Segmenter`` after a ``stream`` (``seg.last_stream_tracker``).
    Returns:
      (tracks started, the line).
    """
    tracker = seg.last_stream_tracker
    started, live = tracker.tracks_started, len(tracker.tracks)
    if started:
        return started, f"{started} tracks started, {live} live at the end"
    threshold = seg.postprocess.score_threshold
    birth = seg.tracker_config.birth_score
    line = (
        f"0 tracks: in no frame did a thing (object) segment pass the score threshold "
        f"({threshold:g}) and the tracker's birth score ({birth:g}), so no track started"
    )
    if _is_shipped(seg):
        line += (
            f". The shipped model {seg.bundle.name!r} was trained on synthetic shapes only "
            f"({', '.join(seg.bundle.manifest.class_names)}): it names those and nothing "
            "else, so other footage gives it no object to track. For a real model see "
            "README.md, 'The shipped model'"
        )
    return 0, line
