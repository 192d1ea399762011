"""Run a Segmenter over a video source and write an annotated MP4, and say how many tracks it
found, or, for prompted objects, in how many frames each was tracked, occluded and lost
(shared by demo and run)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import SourceError
from ..runtime.prompt_tracker import STATES
from ..runtime.results import PanopticResult, PromptTrackResult, TrackResult
from .draw import draw_panoptic, draw_prompt_tracks, draw_tracks
from .timing import StageTimes
from .writers import VideoOut

if TYPE_CHECKING:
    from ..runtime.capture import VideoSource
    from ..runtime.segmenter import Segmenter

__all__ = ["ObjectStates", "Sink", "process_stream", "tracks_report"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where ``process_stream`` also sends each (frame, result) pair (``ros.Recorder``,
    ``ros.RerunView``): ``write`` per pair, ``close`` at the end (keeping what was
    written), ``abort`` to drop it."""

    def write(self, frame: np.ndarray, result: Any) -> Any: ...

    def close(self) -> Any: ...

    def abort(self) -> Any: ...


def _end_sinks(sinks: Sequence[Sink], keep: bool) -> None:
    """After a failed stream: close each sink (``keep``: the frames so far stay, e.g. a
    camera that dropped) or abort it; a sink failing here is logged, so the stream's own
    error is the one raised."""
    for sink in sinks:
        try:
            sink.close() if keep else sink.abort()
        except Exception as e:  # noqa: BLE001 - the stream's error goes on
            log.warning("could not %s %r: %s", "close" if keep else "abort", sink, e)


def _close_sinks(sinks: Sequence[Sink]) -> None:
    """Close every sink; the first failure is raised after the others were closed."""
    first: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as e:  # noqa: BLE001 - re-raised below
            first = first or e
    if first is not None:
        raise first


class ObjectStates:
    """Per prompted object: the frames it was "tracked", "occluded" and "lost" in (the
    frames of a stream from the one it was added on)."""

    def __init__(self) -> None:
        self.counts: dict[int, dict[str, int]] = {}

    def add(self, result: PromptTrackResult) -> None:
        for obj in result.objects:
            self.counts.setdefault(obj.id, dict.fromkeys(STATES, 0))[obj.state] += 1

    def lines(self, names: Mapping[int, str] | None = None) -> list[str]:
        """One line per object, "object 1 (NAME): tracked 40, occluded 3, lost 5 of 48
        frames" (``names``: id -> what made it)."""
        names = names or {}
        return [
            f"object {oid}"
            + (f" ({names[oid]})" if oid in names else "")
            + ": "
            + ", ".join(f"{k} {n}" for k, n in c.items())
            + f" of {sum(c.values())} frames"
            for oid, c in self.counts.items()
        ]


def _draw(
    frame: np.ndarray, result: TrackResult | PanopticResult | PromptTrackResult, seg: Segmenter
) -> np.ndarray:
    if isinstance(result, TrackResult):
        return draw_tracks(frame, result, seg.class_names)
    if isinstance(result, PromptTrackResult):
        return draw_prompt_tracks(frame, result)
    return draw_panoptic(frame, result)


def _finish(
    videos: list[VideoOut | None],
    sinks: Sequence[Sink],
    n: int,
    max_frames: int | None,
    source: Any,
) -> None:
    """After the loop: no frame -> SourceError (sinks dropped); else each file checked."""
    if n == 0 and max_frames != 0:
        _end_sinks(sinks, keep=False)
        raise SourceError(f"no frame could be read from {source!r} (empty or not a video?)")
    try:
        for video in videos:
            if video is not None and n:
                video.close()  # the file holds every frame, or OutputError
    finally:
        _close_sinks(sinks)


def process_stream(
    seg: Segmenter,
    source: int | str | Path | VideoSource | Iterable[np.ndarray],
    *,
    task: str,
    out_video: Path | None,
    fps: float = 10.0,
    max_frames: int | None = None,
    prompts: Any = None,
    prompt_video: Path | None = None,
    states: ObjectStates | None = None,
    sinks: Sequence[Sink] = (),
) -> tuple[StageTimes, int, float]:
    """Run ``seg.stream(source, task=task, prompts=prompts)`` and write the annotated frames
    to ``out_video`` (track ids, frame index and track count for "track"; class labels for
    "panoptic"; each prompted object's mask, id and state for "prompt").

    Arguments:
      seg: a ``Segmenter``; its ``last_stream_tracker`` afterwards holds the stream's tracks.
      source: camera index, video path or iterable of frames (``Segmenter.stream``).
      task: "track", "panoptic" or "prompt".
      out_video: a .mp4 (mp4v) or .avi (MJPG) file to write (``writers.VideoOut``: checked
        before the first frame, each frame of another size letterboxed to the first one's,
        the file checked at the end), or None.
      fps: frames per second of the written file.
      max_frames: stop after this many frames (None: the whole source).
      prompts: objects to track from the first frame (``Segmenter.stream``'s ``prompts``).
      prompt_video: tasks "track" / "panoptic" with ``prompts``: a second file showing the
        prompted objects alone (the same stream: one encoder pass per frame).
      states: collects each prompted object's per-state frame counts.
      sinks: each gets every (frame, result) pair of the same loop (``write``; a
        ``PromptTrackResult`` for "prompt", else a result carrying ``result.prompts`` when
        prompts were given) and is closed at the end. On an error they are closed with
        the frames so far (a camera lost mid-stream keeps its recording) unless no frame
        was processed or the error is a file / disk one (``OSError``): then aborted.
    Returns:
      (per-stage times in ms incl. end-to-end "frame", frames processed, wall seconds); when
      it returns with frames processed, the videos hold every one of them.
    Raises:
      SourceError: the source cannot be opened or yields no frame. ConfigError: bad task /
      max_frames / prompts. InputError: prompts the tracker refuses. OutputError: a video
      cannot be written, or is not what was written.
    """
    times = StageTimes()
    videos = [
        VideoOut(path, fps, what) if path is not None else None
        for path, what in ((out_video, f"the {task} video"), (prompt_video, "the prompt video"))
    ]
    n = 0
    t_start = t_last = time.perf_counter()
    try:
        for frame, result in seg.stream(source, task=task, max_frames=max_frames, prompts=prompts):
            now = time.perf_counter()
            times.add({**result.timings, "frame": (now - t_last) * 1e3})
            pres = result if isinstance(result, PromptTrackResult) else result.prompts
            if states is not None and pres is not None:
                states.add(pres)
            if videos[0] is not None:
                videos[0].write(_draw(frame, result, seg))
            if videos[1] is not None and pres is not None:
                videos[1].write(draw_prompt_tracks(frame, pres))
            for sink in sinks:
                sink.write(frame, result)
            n += 1
            t_last = time.perf_counter()
    except BaseException as e:
        _end_sinks(sinks, keep=n > 0 and not isinstance(e, OSError))
        raise
    finally:
        for video in videos:
            if video is not None:
                video.release()
    _finish(videos, sinks, n, max_frames, source)
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
