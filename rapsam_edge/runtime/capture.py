"""Video sources with deadlines: every OpenCV call that may block (opening a capture, reading
a frame) runs in the capture's own I/O thread and is waited for with a timeout, so a stalled
pipe, camera or network share is a typed ``SourceError`` instead of a hang.

- ``SourceOptions``: the timeouts and the reconnect back-off (defaults in ``source_kinds``:
  5 s to open and read the first frame, 5 s per later frame; reconnects after 0.5, 1, 2, 4
  and 8 s, at most 30 s per outage).
- ``SOURCE_KINDS`` (``source_kinds``, re-exported here): the one table of source kinds
  (camera index, rtsp:// and http:// URLs, GStreamer pipelines, capture device, named pipe,
  file). A kind says whether the source is *live* (its end or stall is a loss: reconnect
  within the back-off) and whether its end is *counted* (checked against the frames the
  container declares, so a truncated file is an error, not the end of the video). An
  http:// or pipeline source that declares a frame count when opened is a finite video
  (``finite_if_counted``); URLs and pipelines are checked before OpenCV sees them, shown
  masked in messages and logs, and opened with OpenCV's own timeouts set
  (``net_sources``).
- ``VideoSource``: a re-iterable source of BGR frames; iterating opens it (``VideoFrames``),
  counts its reconnects (``reconnects``) and logs each attempt (logger ``rapsam_edge.runtime
  .capture``).
- ``open_capture``: the one place a capture is created (tests replace it).

A read that times out is abandoned, never joined: its I/O thread (a daemon named
``rapsam-capture-io``) releases its capture and exits as soon as OpenCV returns. A thread
stuck opening a named pipe with no writer is woken by opening the pipe's write end once
(OpenCV then sees an empty stream). At most ``MAX_STUCK_CAPTURES`` abandoned threads may be
alive at once; opening another source beyond that is a ``SourceUnavailable``.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    ConfigError,
    SourceError,
    SourceLost,
    SourceStalled,
    SourceTruncated,
    SourceUnavailable,
)
from .source_kinds import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RECONNECT_DELAYS,
    DEFAULT_RECONNECT_TOTAL,
    MAX_CAMERA_INDEX,
    MAX_TIMEOUT,
    SOURCE_KINDS,
    SourceKind,
    SourceOptions,
    camera_index,
    classify,
    mask,
)

__all__ = [
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RECONNECT_DELAYS",
    "DEFAULT_RECONNECT_TOTAL",
    "MAX_CAMERA_INDEX",
    "MAX_STUCK_CAPTURES",
    "MAX_TIMEOUT",
    "SOURCE_KINDS",
    "SourceKind",
    "SourceOptions",
    "VideoFrames",
    "VideoSource",
    "abandoned_captures",
    "camera_index",
    "classify",
    "open_capture",
]

log = logging.getLogger(__name__)

#: abandoned (timed-out) capture threads that may be alive at once
MAX_STUCK_CAPTURES = 8
#: A counted source is truncated when it ends more than max(2, count // 50) frames before the
#: count its container declares (some containers only estimate it from duration x fps).
COUNT_SLACK_FRACTION = 50
_POLL = 0.05  # s: how often a wait looks at its cancel flag
#: seconds a capture thread abandoned while opening a named pipe is woken for
FIFO_WAKE_FOR = 10.0


def open_capture(target: int | str, kind: SourceKind, options: SourceOptions) -> Any:
    """A ``cv2.VideoCapture`` for ``target`` (called in the capture's I/O thread; it may
    block). The one place captures are made: tests replace it with a fake. A network kind
    gets OpenCV's open / read timeouts (FFmpeg's interrupt callback) set to ``options``', so
    that a call abandoned at our deadline returns soon after inside OpenCV too."""
    import cv2

    if kind.api is None:
        return cv2.VideoCapture(target)
    if kind.network and kind.api == cv2.CAP_FFMPEG:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(options.open_timeout * 1000)]
        params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(options.read_timeout * 1000)]
        return cv2.VideoCapture(target, kind.api, params)
    return cv2.VideoCapture(target, kind.api)


# ------------------------------------------------------------------ one capture, one thread
class _Cancelled(Exception):
    """The consumer left: end quietly."""


class _TimedOut(Exception):
    pass


_STUCK: set[threading.Thread] = set()
_STUCK_LOCK = threading.Lock()


def _stuck_alive() -> int:
    with _STUCK_LOCK:
        _STUCK.difference_update([t for t in _STUCK if not t.is_alive()])
        return len(_STUCK)


def abandoned_captures() -> int:
    """Capture threads given up on (a read or open that did not return in time) that are
    still inside OpenCV. A program about to exit with some left should end with
    ``os._exit`` after flushing its output: finalising the interpreter while a daemon thread
    is inside a C library can crash it (``rapsam-edge`` does this)."""
    return _stuck_alive()


def _poke_fifo(path: str) -> None:
    """Open and close the write end of the FIFO ``path`` once: a reader blocked opening it
    (no writer came) returns and sees an empty stream."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader is waiting (ENXIO): nothing to wake


def _wake_fifo_open(path: str, opener: threading.Thread) -> None:
    """Wake ``opener``, blocked opening the FIFO ``path`` (OpenCV tries one backend after
    another, each opening the path again): poke it every ``_POLL`` s, in a daemon thread,
    until the opener exits or ``FIFO_WAKE_FOR`` s pass."""

    def wake() -> None:
        end = time.monotonic() + FIFO_WAKE_FOR
        while opener.is_alive() and time.monotonic() < end:
            _poke_fifo(path)
            opener.join(_POLL)

    threading.Thread(target=wake, name="rapsam-capture-wake", daemon=True).start()


class _Capture:
    """A capture owned by one daemon I/O thread: ``open`` and ``read`` post a request and
    wait for its answer with a deadline; ``close`` never waits on a stuck call."""

    def __init__(self, target: int | str, kind: SourceKind, options: SourceOptions) -> None:
        self.target, self.kind, self.options = target, kind, options
        self.shown = kind.shown(target)  # a URL masked: no credentials in messages
        self.frame_count = 0.0  # what the container declares (0 or less: unknown)
        self._requests: queue.Queue[bool] = queue.Queue()
        self._answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._busy = False  # a request is outstanding
        self._opening = True  # no answer to the open yet
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rapsam-capture-io", daemon=True)

    def _run(self) -> None:
        import cv2

        cap = None
        try:
            cap = open_capture(self.target, self.kind, self.options)
            if self._closed.is_set():
                return
            if not cap.isOpened():
                self._answers.put(("failed", None))
                return
            self._answers.put(("opened", float(cap.get(cv2.CAP_PROP_FRAME_COUNT))))
            while self._requests.get() and not self._closed.is_set():
                ok, frame = cap.read()
                self._answers.put(("frame", frame if ok else None))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._answers.put(("error", exc))
        finally:
            if cap is not None:
                try:
                    cap.release()
                except Exception:  # a failing release must not hide the cause
                    log.debug("release of %s failed", self.shown, exc_info=True)

    def _wait(self, timeout: float, cancel: threading.Event) -> tuple[str, Any]:
        self._busy = True
        deadline = time.monotonic() + timeout
        while not cancel.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _TimedOut
            try:
                answer = self._answers.get(timeout=min(left, _POLL))
            except queue.Empty:
                continue
            self._busy = False
            if answer[0] == "error":
                exc = answer[1]
                if not isinstance(exc, Exception):
                    raise exc
                text = mask(str(exc)) if self.kind.network else str(exc)
                raise SourceError(
                    f"reading {self.shown} failed: {text}", hint=self.kind.hints.of(SourceError)
                ) from exc
            return answer
        raise _Cancelled

    def open(self, timeout: float, cancel: threading.Event) -> bool:
        """True once open, False when OpenCV refused the source. Raises _TimedOut."""
        stuck = _stuck_alive()
        if stuck >= MAX_STUCK_CAPTURES:
            raise SourceUnavailable(
                f"cannot open {self.shown}: {stuck} capture threads are still blocked in "
                "OpenCV on earlier stalled sources",
                hint="end what feeds those stalled sources (pipes, cameras), then retry",
            )
        self._thread.start()
        status, count = self._wait(timeout, cancel)
        self._opening = False
        if status == "opened":
            self.frame_count = count
        return status == "opened"

    def read(self, timeout: float, cancel: threading.Event) -> np.ndarray | None:
        """The next frame, or None where OpenCV says there is none. Raises _TimedOut."""
        self._requests.put(True)
        return self._wait(timeout, cancel)[1]

    def close(self) -> None:
        """Release the capture: an idle thread releases it and exits now; a thread stuck in
        OpenCV does so when its call returns (it is counted as stuck until then)."""
        if self._closed.is_set() or not self._thread.is_alive():
            self._closed.set()
            return
        self._closed.set()
        self._requests.put(False)
        if self._busy:
            with _STUCK_LOCK:
                _STUCK.add(self._thread)
            if self._opening and self.kind.name == "pipe" and isinstance(self.target, str):
                _wake_fifo_open(self.target, self._thread)
        else:
            self._thread.join(timeout=1.0)  # idle: it only releases the capture


# ------------------------------------------------------------------ the source
class VideoSource:
    """A camera index, rtsp:// or http:// URL, GStreamer pipeline, capture device, named
    pipe or video file, read as BGR frames with the deadlines and back-off of ``options``.
    Iterating opens it (each iteration opens it anew); ``reconnects`` counts the reconnects
    of a live source so far (each attempt is also logged, as a warning); ``live`` says how
    the last iteration read it (an http:// source is finite when it declares a frame count).

    Arguments:
      target: a camera index (int), a URL, a pipeline or a path.
      options: timeouts and back-off (default ``SourceOptions()``).
    Raises (at construction):
      SourceUnavailable: a path that does not exist or is no video source (a directory); a
        refused URL or pipeline (``net_sources``: unknown scheme, malformed, no GStreamer).
    The iteration raises ``SourceUnavailable`` (cannot open / open timed out),
    ``SourceStalled`` (no frame within a timeout), ``SourceTruncated`` (a file ended before
    its declared frames) or ``SourceLost`` (a live source dropped and did not come back).
    """

    def __init__(self, target: int | str | Path, options: SourceOptions | None = None) -> None:
        if options is not None and not isinstance(options, SourceOptions):
            raise ConfigError(f"options must be a SourceOptions, got {type(options).__name__}")
        if isinstance(target, (bool, np.bool_)) or not isinstance(
            target, (int, np.integer, str, Path)
        ):
            raise SourceError(f"a video source is a camera index or a path, got {target!r}")
        self.target: int | str = (
            camera_index(target) if isinstance(target, (int, np.integer)) else str(target)
        )
        self.kind = classify(self.target)  # a URL / pipeline checked here
        #: what OpenCV is given (a URL's scheme and host in lower case: FFmpeg needs it)
        self.target = self.kind.opened_as(self.target)
        #: the target as messages and logs show it (a URL without its credentials)
        self.shown = self.kind.shown(self.target)
        self.options = options if options is not None else SourceOptions()
        #: reconnects that succeeded (a live source), over all iterations
        self.reconnects = 0
        #: frames read, over all iterations
        self.frames_read = 0
        #: whether the last iteration read it as live (reconnects) or finite; None before
        self.live: bool | None = None

    def __repr__(self) -> str:
        return f"VideoSource({self.shown}, kind={self.kind.name!r})"

    def __iter__(self) -> VideoFrames:
        return VideoFrames(self)

    def _size(self) -> int | None:
        if self.kind.name != "file":
            return None
        try:
            return os.stat(self.target).st_size
        except OSError:
            return None

    def _attempt(self, cancel: threading.Event, budget: float) -> tuple[_Capture, Any]:
        """Open a capture and read its first frame within ``budget`` seconds: (capture,
        first frame or None where the source holds none)."""
        cap = _Capture(self.target, self.kind, self.options)
        deadline = time.monotonic() + budget
        try:
            try:
                opened = cap.open(budget, cancel)
            except _TimedOut:
                raise SourceUnavailable(
                    f"{self.kind.name} {self.shown} did not open within {budget:g} s",
                    hint=self.kind.hints.unavailable,
                ) from None
            if not opened:
                why = (
                    "not a video, an unknown codec, or a truncated file?"
                    if self.kind.counted
                    else "server down, wrong path or credentials, or not a video?"
                    if self.kind.network
                    else "in use, unplugged, or not a camera?"
                )
                raise SourceUnavailable(
                    f"cannot open video source {self.shown}: OpenCV refused the "
                    f"{self.kind.name} ({why})",
                    hint=self.kind.hints.unavailable,
                )
            try:
                first = cap.read(max(deadline - time.monotonic(), _POLL), cancel)
            except _TimedOut:
                raise SourceStalled(
                    f"{self.kind.name} {self.shown} opened but gave no frame within {budget:g} s",
                    hint=self.kind.hints.stalled,
                ) from None
        except BaseException:
            cap.close()
            raise
        return cap, first

    def _check_end(self, cap: _Capture, n: int, size: int | None) -> None:
        """A counted source that ended: raise unless it gave the frames it declares."""
        declared = cap.frame_count
        count = round(declared) if math.isfinite(declared) and declared > 0 else 0
        if self.kind.network and n == 0:
            raise SourceUnavailable(
                f"{self.kind.name} {self.shown} opened, declares {count} frames, gave none",
                hint="an MP4 whose index (moov) is at its end needs a server that answers "
                "HTTP Range requests; or write it with the index first (ffmpeg -movflags "
                "+faststart)"
                if self.kind.name == "http"
                else self.kind.hints.unavailable,
            )
        if count > 0 and n < count - max(2, count // COUNT_SLACK_FRACTION):
            why = (
                "the connection dropped, or the file is truncated"
                if self.kind.network
                else "truncated or still being written"
            )
            raise SourceTruncated(
                f"{self.kind.name} {self.shown} ended after frame {n} of the {count} its "
                f"container declares ({why})",
                hint=self.kind.hints.truncated,
            )
        now = self._size()
        if size is not None and now is not None and now != size:
            raise SourceTruncated(
                f"file {self.shown} ended after frame {n} while it was being written "
                f"({size} bytes when opened, {now} now)",
                hint=self.kind.hints.truncated,
            )

    def _reconnect(self, n: int, why: str, cancel: threading.Event) -> tuple[_Capture, Any]:
        """Reopen a live source within the back-off: (capture, its first frame)."""
        opts, start = self.options, time.monotonic()
        attempts, last, tried = len(opts.reconnect_delays), why, 0
        for i, delay in enumerate(opts.reconnect_delays, 1):
            left = opts.reconnect_total - (time.monotonic() - start)
            if left <= 0 or cancel.wait(min(delay, left)):
                break
            log.warning(
                "%s %s lost after frame %d (%s): reconnect attempt %d of %d",
                *(self.kind.name, self.shown, n, last, i, attempts),
            )
            left, tried = opts.reconnect_total - (time.monotonic() - start), i
            try:
                cap, first = self._attempt(cancel, min(opts.open_timeout, max(left, _POLL)))
            except SourceError as exc:
                last = str(exc)
                continue
            if first is not None:
                self.reconnects += 1
                log.warning("%s %s reconnected (attempt %d)", self.kind.name, self.shown, i)
                return cap, first
            cap.close()
            last = "reopened but read no frame"
        if cancel.is_set():
            raise _Cancelled
        raise SourceLost(
            f"{self.kind.name} {self.shown} lost after frame {n} ({why}); {tried} "
            f"reconnect attempts in {time.monotonic() - start:.1f} s failed (last: {last})",
            hint=self.kind.hints.lost,
        )

    def _frames(self, cancel: threading.Event) -> Generator[np.ndarray, None, None]:
        opts, n, why = self.options, 0, ""
        size = self._size()
        try:
            cap, frame = self._attempt(cancel, opts.open_timeout)
        except _Cancelled:
            return
        declared = cap.frame_count
        finite = self.kind.finite_if_counted and math.isfinite(declared) and declared > 0
        self.live = live = self.kind.live and not finite
        try:
            while True:
                if frame is not None:
                    n += 1
                    self.frames_read += 1
                    yield frame
                    try:
                        frame = cap.read(opts.read_timeout, cancel)
                    except _TimedOut:
                        frame, why = None, f"no frame within {opts.read_timeout:g} s"
                    except SourceError as exc:  # OpenCV raised: a live source reconnects
                        if not live:
                            raise
                        frame, why = None, str(exc)
                    else:
                        why = "read failed"
                    if frame is not None:
                        continue
                elif n == 0:
                    why = "no first frame"
                if not live:
                    if why.startswith("no frame within"):
                        raise SourceStalled(
                            f"{self.kind.name} {self.shown} stalled after frame {n}: {why}",
                            hint=self.kind.hints.stalled,
                        )
                    self._check_end(cap, n, size)
                    return
                if n == 0:  # a live source that never gave a frame: refuse, do not retry
                    raise SourceUnavailable(
                        f"{self.kind.name} {self.shown} gave no frame",
                        hint=self.kind.hints.unavailable,
                    )
                cap.close()
                cap, frame = self._reconnect(n, why, cancel)
        except _Cancelled:
            return
        finally:
            cap.close()


class VideoFrames(Iterator[np.ndarray]):
    """One iteration of a ``VideoSource``: an iterator of BGR frames. ``close()`` (in the
    thread that iterates) ends it and releases the capture; ``cancel()`` (from any thread)
    makes a wait in progress end quietly (the iteration then stops)."""

    def __init__(self, source: VideoSource) -> None:
        self.source = source
        self._cancel = threading.Event()
        self._frames = source._frames(self._cancel)

    def __next__(self) -> np.ndarray:
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()

    def cancel(self) -> None:
        self._cancel.set()
