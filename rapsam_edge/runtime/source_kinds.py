"""Kinds of video source and the settings that bound reading them (torch-free, no OpenCV
import): ``SourceOptions`` (timeouts and reconnect back-off, defaults below), the one table
of source kinds ``SOURCE_KINDS`` (``classify`` picks a row and checks URLs and pipelines,
``net_sources``) and ``camera_index``. Reading is ``capture.VideoSource``'s.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..contract import shared
from ..errors import (
    ConfigError,
    SourceError,
    SourceLost,
    SourceStalled,
    SourceTruncated,
    SourceUnavailable,
)
from .net_sources import (
    ACCEPTED,
    CAP_FFMPEG,
    CAP_GSTREAMER,
    check_pipeline,
    check_url,
    is_pipeline,
    mask,
    normalize_url,
    scheme_of,
)

__all__ = [
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RECONNECT_DELAYS",
    "DEFAULT_RECONNECT_TOTAL",
    "HINTS",
    "MAX_CAMERA_INDEX",
    "MAX_TIMEOUT",
    "SOURCE_KINDS",
    "KindHints",
    "SourceKind",
    "SourceOptions",
    "camera_index",
    "classify",
]

#: seconds to open a source and read its first frame (also after each reconnect)
DEFAULT_OPEN_TIMEOUT = shared.OPEN_TIMEOUT
#: seconds to wait for each later frame
DEFAULT_READ_TIMEOUT = shared.READ_TIMEOUT
#: seconds waited before each reconnect attempt of a live source (one entry per attempt)
DEFAULT_RECONNECT_DELAYS = shared.RECONNECT_DELAYS
#: seconds one outage may take in all (delays + opens) before ``SourceLost``
DEFAULT_RECONNECT_TOTAL = shared.RECONNECT_TOTAL
#: largest timeout / total accepted (an hour): a larger one is a hang by another name
MAX_TIMEOUT = shared.MAX_TIMEOUT
#: Largest camera index ``stream`` passes to OpenCV. ``cv2.VideoCapture(index)`` reads an
#: index of 100 or more as ``camera + CAP_*`` (its documented ``camera_id + domain_offset``
#: form: 200 is V4L2's camera 0), and some builds crash on a negative one, so an index is
#: checked here, before OpenCV sees it.
MAX_CAMERA_INDEX = 99


def _seconds(name: str, value: Any, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    value = float(value)
    ok = 0.0 <= value if zero else 0.0 < value
    if not (math.isfinite(value) and ok and value <= MAX_TIMEOUT):
        low = "[0" if zero else "(0"
        raise ConfigError(f"{name} must be in {low}, {MAX_TIMEOUT:g}] seconds, got {value}")
    return value


@dataclass(frozen=True)
class SourceOptions:
    """How long a video source may take, and how a live one reconnects.

    Attributes:
      open_timeout: seconds to open the source and read its first frame (also per attempt
        when reconnecting); past it, ``SourceUnavailable`` (could not open) or
        ``SourceStalled`` (opened, no first frame).
      read_timeout: seconds to wait for each later frame; past it a file or pipe is
        ``SourceStalled`` and a live source reconnects.
      reconnect_delays: seconds to wait before each reconnect attempt of a live source
        (a camera); its length is the number of attempts, () never reconnects.
      reconnect_total: seconds one outage may take in all before ``SourceLost``.
    Raises (at construction):
      ConfigError: a timeout not in (0, MAX_TIMEOUT], a delay not in [0, MAX_TIMEOUT],
        more than 100 delays.
    """

    open_timeout: float = DEFAULT_OPEN_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    reconnect_delays: tuple[float, ...] = DEFAULT_RECONNECT_DELAYS
    reconnect_total: float = DEFAULT_RECONNECT_TOTAL

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "open_timeout", _seconds("open_timeout", self.open_timeout))
        set_(self, "read_timeout", _seconds("read_timeout", self.read_timeout))
        set_(self, "reconnect_total", _seconds("reconnect_total", self.reconnect_total))
        delays: Any = self.reconnect_delays  # checked: a caller may pass anything
        if isinstance(delays, (str, bytes)) or not hasattr(delays, "__iter__"):
            raise ConfigError(f"reconnect_delays must be a sequence of seconds, got {delays!r}")
        delays = tuple(_seconds("a reconnect delay", d, zero=True) for d in delays)
        if len(delays) > 100:
            raise ConfigError(f"reconnect_delays holds {len(delays)} attempts, at most 100")
        set_(self, "reconnect_delays", delays)


# ------------------------------------------------------------------ kinds of source
def camera_index(source: Any) -> int:
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


def _mode(target: int | str) -> int | None:
    try:
        return os.stat(target).st_mode if isinstance(target, str) else None
    except OSError:
        return None


@dataclass(frozen=True)
class KindHints:
    """What to do, per kind of source, when it fails in each way: the ``hint`` of the
    ``SourceError`` subclass of that name (one line, fitting the kind: a URL's names the
    server and network, a pipe's its writer, a camera's its cable)."""

    unavailable: str  # SourceUnavailable: could not be opened (or no first frame)
    stalled: str  # SourceStalled: opened, then no frame within a timeout
    truncated: str  # SourceTruncated: ended before the frames it declares
    lost: str  # SourceLost: a live source dropped and did not come back

    def of(self, error: type[SourceError]) -> str:
        """The hint for ``error`` (a ``SourceError`` subclass); ``unavailable``'s for
        ``SourceError`` itself (OpenCV raised while reading)."""
        for cls, hint in (
            (SourceStalled, self.stalled),
            (SourceTruncated, self.truncated),
            (SourceLost, self.lost),
        ):
            if issubclass(error, cls):
                return hint
        return self.unavailable


_OPEN_LONGER = "`rapsam-edge run --open-timeout SECONDS` (SourceOptions.open_timeout) waits longer"
_READ_LONGER = "`rapsam-edge run --read-timeout SECONDS` (SourceOptions.read_timeout) waits longer"
_RECONNECTS = "the stream reconnects within its back-off (SourceOptions.reconnect_delays)"


def _net_hints(what: str) -> KindHints:
    return KindHints(
        unavailable=f"check the {what} URL (host, port, path), that the camera / server is up "
        f"and reachable from here, and the credentials; {_OPEN_LONGER}",
        stalled=f"the {what} camera / server stopped sending frames: check the network and "
        f"the server; {_READ_LONGER}",
        truncated=f"the {what} connection dropped before the end of the video: check the "
        "network and the server, then retry",
        lost=f"the {what} camera / server stopped answering: check the network, the camera's "
        f"power and the server; {_RECONNECTS}",
    )


#: the hints of each kind (``SourceKind.hints``: each ``SOURCE_KINDS`` row takes its own)
_HINTS: dict[str, KindHints] = {
    "camera": KindHints(
        unavailable="check the camera index (0 is the first camera), that the camera is "
        f"plugged in and that no other program holds it; {_OPEN_LONGER}",
        stalled="the camera opened but sends no frames: check its cable / driver and that no "
        f"other program holds it; {_READ_LONGER}",
        truncated="the camera stopped giving frames: check its cable / driver",
        lost=f"the camera stopped giving frames: check its cable / driver; {_RECONNECTS}",
    ),
    "device": KindHints(
        unavailable="check the capture device (/dev/videoN: that it exists, its permissions, "
        f"e.g. the video group) and that no other program holds it; {_OPEN_LONGER}",
        stalled="the capture device opened but sends no frames: check its cable / driver and "
        f"its format; {_READ_LONGER}",
        truncated="the capture device stopped giving frames: check its cable / driver",
        lost=f"the capture device stopped giving frames: check its cable / driver; {_RECONNECTS}",
    ),
    "pipe": KindHints(
        unavailable="start the program that writes the video into the named pipe (it opens "
        f"once a writer is there) and check what it writes; {_OPEN_LONGER}",
        stalled="the program writing into the named pipe stopped sending: check that it "
        f"runs; {_READ_LONGER}",
        truncated="the program writing into the named pipe ended before the video's end: "
        "check its output / errors",
        lost="the program writing into the named pipe stopped: check that it runs",
    ),
    "file": KindHints(
        unavailable="check that the file is a video OpenCV can read (a known codec, not "
        "truncated: `ffprobe FILE` tells)",
        stalled="the video file stopped giving frames (a slow or hung disk / network share?); "
        f"{_READ_LONGER}",
        truncated="the video file is incomplete: wait until its writer finishes, or re-copy it",
        lost="the video file stopped giving frames: check the disk / network share",
    ),
    "rtsp": _net_hints("rtsp"),
    "http": _net_hints("http"),
    "pipeline": KindHints(
        unavailable="check the GStreamer pipeline's elements and properties (gst-launch-1.0 "
        "with fakesink for appsink prints GStreamer's own error) and that what it reads is "
        f"up; {_OPEN_LONGER}",
        stalled="the GStreamer pipeline's source stopped sending frames: check what it reads "
        f"(camera, server, file); {_READ_LONGER}",
        truncated="the GStreamer pipeline ended before the video's end: check what it reads",
        lost="the GStreamer pipeline's source stopped: check what it reads (camera, server, "
        f"network); {_RECONNECTS}",
    ),
}


@dataclass(frozen=True)
class SourceKind:
    """One row of ``SOURCE_KINDS``.

    Attributes:
      name: shown in messages ("camera", "file", "rtsp", ...).
      matches: whether a target (an int camera index, or a string) is of this kind.
      hints: what to do when a source of this kind fails, per ``SourceError`` subclass
        (the ``hint`` of the errors ``capture.VideoSource`` raises for it).
      live: its end or stall is a loss: reconnect within the back-off, then ``SourceLost``.
      counted: its end is checked against the frame count its container declares.
      api: OpenCV's ``CAP_*`` backend preference (None: OpenCV's choice).
      finite_if_counted: (a live kind) a source whose container declares a frame count when
        opened is a finite video instead: it ends at its end (checked against the count)
        and is not reconnected (an HTTP file, a pipeline from a file).
      network: a URL or pipeline: its text is checked by ``check`` before OpenCV sees it,
        shown masked (``net_sources.mask``: no credentials) in messages and logs, and
        OpenCV's own open / read timeouts are set to ``SourceOptions``'.
      check: raises ``SourceUnavailable`` for a target of this kind that must not reach
        OpenCV (called by ``classify``).
      normalize: the form of a checked target OpenCV is given (a URL: its scheme and host
        in lower case, ``net_sources.normalize_url``); None: as given.
    """

    name: str
    matches: Callable[[int | str], bool]
    live: bool
    counted: bool
    hints: KindHints
    api: int | None = None
    finite_if_counted: bool = False
    network: bool = False
    check: Callable[[str], object] | None = None
    normalize: Callable[[str], str] | None = None

    def opened_as(self, target: int | str) -> int | str:
        """``target`` as OpenCV is given it (``normalize``)."""
        if self.normalize is not None and isinstance(target, str):
            return self.normalize(target)
        return target

    def shown(self, target: int | str) -> str:
        """``target`` as messages and logs show it (a URL masked)."""
        return repr(mask(target) if self.network and isinstance(target, str) else target)


def _scheme_is(*schemes: str) -> Callable[[int | str], bool]:
    return lambda t: isinstance(t, str) and scheme_of(t) in schemes


#: The kinds of video source, the first match wins. URLs and pipelines come before paths:
#: ``rtsp://...`` is a URL even where a folder ``rtsp:`` exists.
SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind(
        "camera", lambda t: isinstance(t, int), live=True, counted=False, hints=_HINTS["camera"]
    ),
    SourceKind(
        "rtsp",
        _scheme_is("rtsp", "rtsps"),
        live=True,
        counted=False,
        hints=_HINTS["rtsp"],
        api=CAP_FFMPEG,
        network=True,
        check=check_url,
        normalize=normalize_url,
    ),
    SourceKind(
        "http",
        _scheme_is("http", "https"),
        live=True,
        counted=False,
        hints=_HINTS["http"],
        api=CAP_FFMPEG,
        finite_if_counted=True,
        network=True,
        check=check_url,
        normalize=normalize_url,
    ),
    SourceKind(
        "pipeline",
        lambda t: isinstance(t, str) and is_pipeline(t),
        live=True,
        counted=False,
        hints=_HINTS["pipeline"],
        api=CAP_GSTREAMER,
        finite_if_counted=True,
        network=True,
        check=check_pipeline,
    ),
    SourceKind(
        "device",
        lambda t: stat.S_ISCHR(_mode(t) or 0),
        live=True,
        counted=False,
        hints=_HINTS["device"],
    ),
    SourceKind(
        "pipe",
        lambda t: stat.S_ISFIFO(_mode(t) or 0),
        live=False,
        counted=True,
        hints=_HINTS["pipe"],
    ),
    SourceKind(
        "file",
        lambda t: stat.S_ISREG(_mode(t) or 0),
        live=False,
        counted=True,
        hints=_HINTS["file"],
    ),
)


#: kind name -> its hints (the rows' own, for lookups and tests)
HINTS: dict[str, KindHints] = {kind.name: kind.hints for kind in SOURCE_KINDS}


def classify(target: int | str) -> SourceKind:
    """The kind of ``target`` (``SOURCE_KINDS``), its URL or pipeline checked.

    Raises:
      SourceUnavailable: a path that does not exist, or that no kind takes (a directory,
        a socket); a URL of a scheme no kind takes (``file://`` included) or a malformed
        one; a pipeline this OpenCV cannot run (``net_sources``)."""
    for kind in SOURCE_KINDS:
        if kind.matches(target):
            if kind.check is not None and isinstance(target, str):
                kind.check(target)
            return kind
    if isinstance(target, str) and scheme_of(target) is not None:
        check_url(target)  # refuses it, naming the schemes taken
    if _mode(target) is None:
        raise SourceUnavailable(
            f"video source {mask(str(target))!r} does not exist",
            hint=f"give one of: {ACCEPTED}",
        )
    raise SourceUnavailable(
        f"video source {mask(str(target))!r} is not a video file, pipe, capture device or camera "
        "(a directory or a socket?)",
        hint=f"give one of: {ACCEPTED}",
    )
