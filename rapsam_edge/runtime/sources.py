"""Frame sources for ``Segmenter.stream``: opening a camera, a video file or an iterable of
frames (``open_source``), and the capture thread that reads and prepares frame t+1 while
frame t is inferred (``prefetch``).
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

__all__ = ["MAX_CAMERA_INDEX", "STREAM_TASKS", "check_stream_args", "open_source", "prefetch"]

#: what ``Segmenter.stream`` can yield per frame
STREAM_TASKS = ("track", "panoptic")
#: Largest camera index ``stream`` passes to OpenCV. ``cv2.VideoCapture(index)`` reads an
#: index of 100 or more as ``camera + CAP_*`` (its documented ``camera_id + domain_offset``
#: form: 200 is V4L2's camera 0), and some builds crash on a negative one, so an index is
#: checked here, before OpenCV sees it.
MAX_CAMERA_INDEX = 99

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


def _camera_index(source: Any) -> int:
    """A camera index (an int, numpy ints included, not a bool) in [0, MAX_CAMERA_INDEX].

    Raises:
      SourceError: a negative or larger index (checked before OpenCV sees it)."""
    index = int(source)
    if not 0 <= index <= MAX_CAMERA_INDEX:
        raise SourceError(
            f"camera index must be in [0, {MAX_CAMERA_INDEX}], got {index}",
            hint="pass 0 for the first camera (OpenCV reads indices of 100 or more as "
            "camera + CAP_* backend), or a video path",
        )
    return index


def _video_frames(source: int | str | Path) -> Iterator[np.ndarray]:
    """BGR frames of a camera index or a video file, read lazily; the capture is released
    when the iterator ends or is closed."""
    import cv2

    if isinstance(source, (str, Path)) and not str(source).isdigit() and not Path(source).exists():
        raise SourceError(f"video source {str(source)!r} does not exist")
    cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not cap.isOpened():
        raise SourceError(f"cannot open video source {source!r}")

    def read() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()

    return read()


def open_source(source: Any, color_order: str) -> tuple[Iterable[np.ndarray], str]:
    """(frames, their colour order) for a camera index, a video path or an iterable of
    frames. Camera / file frames are BGR H x W x 3 uint8, read lazily and released when the
    iterator ends or is closed; an iterable passes through in ``color_order``.

    Raises:
      SourceError: a missing file, a camera index outside [0, ``MAX_CAMERA_INDEX``] (before
        OpenCV sees it), a camera or file OpenCV cannot open, or another type.
    """
    if isinstance(source, (bool, np.bool_)):
        raise SourceError(f"source must be a camera index, a video path or frames, got {source!r}")
    if isinstance(source, (int, np.integer)):
        return _video_frames(_camera_index(source)), "BGR"
    if isinstance(source, (str, Path)):
        return _video_frames(source), "BGR"
    if not isinstance(source, Iterable):
        raise SourceError(
            "source must be a camera index, a video path or an iterable of frames, "
            f"got {type(source).__name__}"
        )
    return source, color_order


def prefetch(
    frames: Iterable[np.ndarray], prepare: Callable[[np.ndarray], _P]
) -> Generator[tuple[np.ndarray, _P, float], None, None]:
    """Yield (frame, prepare(frame), ms to read the frame), reading and preparing the next
    frames in a capture thread (a queue of 2: memory stays flat on endless streams).

    An exception in the thread (a bad frame, a failing camera) is raised here, in the
    consumer. Closing the iterator stops the thread and waits for it.
    """
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            it = iter(frames)
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                read_ms = (time.perf_counter() - t0) * 1e3
                q.put((frame, prepare(frame), read_ms))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            q.put(exc)
        finally:
            q.put(done)

    worker = threading.Thread(target=produce, name="rapsam-capture", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
