"""Run a Segmenter over a video source and write an annotated MP4 (shared by demo and run)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from .draw import draw_panoptic, draw_tracks
from .timing import StageTimes


def process_stream(
    seg,
    source,
    *,
    task: str,
    out_video: Path | None,
    fps: float = 10.0,
    max_frames: int | None = None,
) -> tuple[StageTimes, int, float]:
    """-> (per-stage times incl. end-to-end 'frame', frames processed, wall seconds)."""
    times = StageTimes()
    writer = None
    n = 0
    t_start = t_last = time.perf_counter()
    for frame, result in seg.stream(source, task=task, max_frames=max_frames):
        now = time.perf_counter()
        times.add({**result.timings, "frame": (now - t_last) * 1e3})
        if out_video is not None:
            drawn = (
                draw_tracks(frame, result, seg.class_names)
                if task == "track"
                else draw_panoptic(frame, result)
            )
            if writer is None:
                out_video.parent.mkdir(parents=True, exist_ok=True)
                h, w = drawn.shape[:2]
                writer = cv2.VideoWriter(
                    str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)
                )
            writer.write(np.ascontiguousarray(drawn))
        n += 1
        t_last = time.perf_counter()
    if writer is not None:
        writer.release()
    return times, n, time.perf_counter() - t_start
