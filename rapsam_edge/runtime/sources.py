"""Frame sources for ``Segmenter.stream``: opening a camera, a URL, a video file or an
iterable of frames (``open_source``; cameras, URLs, pipelines, devices, pipes and files are
``capture.VideoSource``s, read with timeouts and reconnects), and the capture thread that
reads and prepares frame t+1 while frame t is inferred (``prefetch``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import ConfigError, SourceError
from .capture import MAX_CAMERA_INDEX, SourceOptions, VideoSource, camera_index

__all__ = ["MAX_CAMERA_INDEX", "STREAM_TASKS", "check_stream_args", "open_source", "prefetch"]

#: what ``Segmenter.stream`` can yield per frame
STREAM_TASKS = ("track", "panoptic")
_P = TypeVar("_P")


def check_stream_args(task: Any, max_frames: Any) -> None:
    """The settings of ``Segmenter.stream``.

    Raises:
      ConfigError: a task not in ``STREAM_TASKS``; ``max_frames`` not a non-negative int
        or None.
    """
    if task not in STREAM_TASKS:
        raise ConfigError(f"task must be 'track' or 'panoptic', got {task!r}")
    if max_frames is not None and (
        isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 0
    ):
        raise ConfigError(f"max_frames must be a non-negative int or None, got {max_frames!r}")


def _is_index(text: str) -> bool:
    """Whether ``text`` is a camera index: ASCII digits only (``int`` refuses '²')."""
    return text.isascii() and text.isdigit()


def open_source(
    source: Any, color_order: str, options: SourceOptions | None = None
) -> tuple[Iterable[np.ndarray], str]:
    """(frames, their colour order) for a camera index, a video path, an rtsp:// / http://
    URL or GStreamer pipeline (``net_sources``), a ``VideoSource`` or an iterable of frames.
    Camera / URL / device / pipe / file frames are BGR H x W x 3 uint8, read
    lazily with the timeouts and back-off of ``options`` (``capture.VideoFrames``: opened on
    the first ``next``, released when it ends or is closed); an iterable passes through in
    ``color_order`` and its end is the end of the stream.

    Raises:
      SourceError: a missing path or one that is no video source (a directory), a refused
        URL or pipeline (unknown scheme, malformed, no GStreamer back-end), a camera
        index outside [0, ``MAX_CAMERA_INDEX``] (before OpenCV sees it), or another type.
        Opening and reading raise the ``SourceError`` kinds of ``capture.VideoSource``.
      ConfigError: ``options`` is not a ``SourceOptions``.
    """
    if isinstance(source, (bool, np.bool_)):
        raise SourceError(f"source must be a camera index, a video path or frames, got {source!r}")
    if isinstance(source, VideoSource):
        return iter(source), "BGR"
    if isinstance(source, (int, np.integer)):
        return iter(VideoSource(camera_index(source), options)), "BGR"
    if isinstance(source, (str, Path)):
        if isinstance(source, str) and _is_index(source) and not Path(source).exists():
            return iter(VideoSource(camera_index(int(source)), options)), "BGR"
        return iter(VideoSource(source, options)), "BGR"
    if not isinstance(source, Iterable):
        raise SourceError(
            "source must be a camera index, a video path or an iterable of frames, "
            f"got {type(source).__name__}"
        )
    return source, color_order


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has left (``stop``): never block on a full queue
    nobody reads."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


#: seconds leaving ``stream`` waits for the capture thread to finish before leaving it
#: behind (a daemon, stuck in a blocking call of the source; it exits when the call returns)
LEAVE_WAIT = 0.5


def prefetch(
    frames: Iterable[np.ndarray],
    prepare: Callable[[np.ndarray], _P],
    *,
    limit: int | None = None,
) -> Generator[tuple[np.ndarray, _P, float], None, None]:
    """Yield (frame, prepare(frame), ms to read the frame), reading and preparing the next
    frames in a capture thread (a queue of 2: memory stays flat on endless streams); at
    most ``limit`` frames are read (None: all).

    An exception in the thread (a bad frame, a failing camera) is raised here, in the
    consumer. Closing the iterator (break, an exception, KeyboardInterrupt) returns within
    ``LEAVE_WAIT`` s whatever the thread is doing: it tells the thread to stop, cancels a
    wait of a ``VideoFrames`` source (its ``cancel()``), waits at most ``LEAVE_WAIT`` s, and
    never joins a thread stuck in the source. A source with ``cancel()`` is closed by the
    thread itself when it stops (releasing its capture); other iterables are left as they
    are (the caller's generator stays usable).
    """
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()
    cancel = getattr(frames, "cancel", None)

    def produce() -> None:
        it: Iterator[np.ndarray] | None = None
        try:
            it = iter(frames)
            n = 0
            while not stop.is_set() and (limit is None or n < limit):
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                n += 1
                read_ms = (time.perf_counter() - t0) * 1e3
                if not _put(q, (frame, prepare(frame), read_ms), stop):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            _put(q, exc, stop)
        finally:
            if cancel is not None and it is not None:
                getattr(it, "close", lambda: None)()  # our VideoFrames: release the capture
            _put(q, done, stop)

    worker = threading.Thread(target=produce, name="rapsam-capture", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if cancel is not None:
            cancel()
        deadline = time.monotonic() + LEAVE_WAIT
        while worker.is_alive() and time.monotonic() < deadline:
            worker.join(timeout=0.02)
