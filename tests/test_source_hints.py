"""The hint of every source failure fits its case (issue 28): a ``SourceError`` raised while
reading a source carries its source kind's own hint (``SourceKind.hints``, a field of each
``SOURCE_KINDS`` row), so an rtsp:// URL that does not open is never told to "check that
something writes to a pipe", nor an HTTP camera that goes away to "check the camera's cable";
and an OSError that escapes the CLI gets a hint that fits its errno (a port in use names
``--port``, not "the paths given on the command line").

The table test checks every kind x failure hint for the words it must and must not hold; the
raised test makes each kind fail in each way it can (captures are fakes put in place of
``capture.open_capture``, the one seam where captures are made) and checks the hint the
error carries is that row's.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import threading
from typing import Any

import cv2
import numpy as np
import pytest

from rapsam_edge import cli
from rapsam_edge.errors import (
    SourceError,
    SourceLost,
    SourceStalled,
    SourceTruncated,
    SourceUnavailable,
)
from rapsam_edge.runtime import capture, net_sources, source_kinds
from rapsam_edge.runtime.capture import SourceOptions, VideoSource

PIPE = re.compile(r"\bpipe\b")
FAILURES = ("unavailable", "stalled", "truncated", "lost")
#: kind -> (words every hint of the kind holds, words none holds)
MUST = {
    "camera": (["camera"], ["URL", "server", PIPE, "pipeline", "file"]),
    "device": (["device"], ["URL", "server", PIPE, "pipeline"]),
    "pipe": (["named pipe", "writ"], ["URL", "server", "camera", "cable"]),
    "file": (["file"], ["URL", "server", "camera", "cable", PIPE]),
    "rtsp": (["rtsp", "server"], ["cable", "camera index", PIPE, "pipeline", "file"]),
    "http": (["http", "server"], ["cable", "camera index", PIPE, "pipeline", "file"]),
    "pipeline": (["GStreamer pipeline"], ["cable", "camera index", PIPE, "URL"]),
}
#: (kind, failure) -> more words that hint holds
ALSO = {
    ("rtsp", "unavailable"): ["URL", "reachable", "credentials", "--open-timeout"],
    ("http", "unavailable"): ["URL", "reachable", "credentials", "--open-timeout"],
    ("rtsp", "lost"): ["network", "reconnects"],
    ("http", "lost"): ["network", "reconnects"],
    ("rtsp", "stalled"): ["network", "--read-timeout"],
    ("http", "stalled"): ["network", "--read-timeout"],
    ("camera", "unavailable"): ["camera index", "--open-timeout"],
    ("camera", "lost"): ["cable", "reconnects"],
    ("device", "unavailable"): ["/dev/video", "permissions"],
    ("pipe", "unavailable"): ["start the program", "--open-timeout"],
    ("pipe", "stalled"): ["--read-timeout"],
    ("file", "unavailable"): ["video"],
    ("file", "truncated"): ["incomplete"],
    ("pipeline", "unavailable"): ["elements", "gst-launch-1.0"],
}


def _has(text: str, word: str | re.Pattern[str]) -> bool:
    return bool(word.search(text)) if isinstance(word, re.Pattern) else word in text


def test_every_source_kind_row_has_its_hints():
    names = [k.name for k in source_kinds.SOURCE_KINDS]
    assert sorted(names) == sorted(MUST) == sorted(source_kinds.HINTS)
    for kind in source_kinds.SOURCE_KINDS:
        assert source_kinds.HINTS[kind.name] is kind.hints


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("kind", list(MUST))
def test_each_kinds_hint_names_what_to_check(kind, failure):
    hint = getattr(source_kinds.HINTS[kind], failure)
    must, never = MUST[kind]
    for word in must + ALSO.get((kind, failure), []):
        assert _has(hint, word), f"{kind} {failure}: {word!r} missing from {hint!r}"
    for word in never:
        assert not _has(hint, word), f"{kind} {failure}: {word!r} does not fit {hint!r}"
    assert "\n" not in hint and len(hint) < 300


def test_the_error_class_maps_to_its_row():
    row = source_kinds.HINTS["rtsp"]
    assert row.of(SourceUnavailable) == row.unavailable
    assert row.of(SourceStalled) == row.stalled
    assert row.of(SourceTruncated) == row.truncated
    assert row.of(SourceLost) == row.lost
    assert row.of(SourceError) == row.unavailable


def test_the_class_defaults_name_no_single_kind():
    """What an error raised without a kind shows: fits any source."""
    for cls in (SourceError, SourceUnavailable, SourceLost, SourceTruncated):
        hint = cls("x").hint
        assert "URL" in hint or "server" in hint or "connection" in hint, (cls, hint)
    assert "writes to a pipe" not in SourceUnavailable("x").hint


# ------------------------------------------------------------------ raised, per kind
class Fake:
    """A capture: ``opened``; ``frames`` frames, then read fails, or blocks on ``gate``
    (``block``); the container declares ``count`` frames."""

    def __init__(self, gate: threading.Event, *, opened=True, frames=0, block=False, count=0.0):
        self.gate, self.opened, self.frames, self.block, self.count = (
            gate,
            opened,
            frames,
            block,
            count,
        )
        self.reads = 0

    def isOpened(self) -> bool:
        return self.opened

    def get(self, prop: int) -> float:
        return self.count if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.reads <= self.frames:
            return True, np.zeros((8, 8, 3), np.uint8)
        if self.block:
            self.gate.wait(30)
        return False, None

    def release(self) -> None:
        pass


@pytest.fixture
def targets(tmp_path, monkeypatch) -> dict[str, Any]:
    """One target of each kind (the pipeline as if this OpenCV had GStreamer)."""
    monkeypatch.setattr(net_sources, "backend_available", lambda api: True)
    video = tmp_path / "clip.avi"
    video.write_bytes(b"x" * 64)
    out: dict[str, Any] = {
        "camera": 0,
        "rtsp": "rtsp://cam.lan/stream",
        "http": "http://cam.lan/video.mjpg",
        "pipeline": "videotestsrc ! videoconvert ! appsink",
        "file": str(video),
    }
    if os.path.exists("/dev/null"):
        out["device"] = "/dev/null"  # a character device: the device kind
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "feed")
        out["pipe"] = str(tmp_path / "feed")
    return out


#: failure -> the error, and the captures that make it (the count: a finite source)
PLANS = {
    "unavailable": (SourceUnavailable, lambda g, live: [Fake(g, opened=False)]),
    "stalled": (SourceStalled, lambda g, live: [Fake(g, block=True)]),
    "truncated": (SourceTruncated, lambda g, live: [Fake(g, frames=3, count=40.0)]),
    "lost": (SourceLost, lambda g, live: [Fake(g, frames=3), Fake(g, opened=False)]),
}


def _can(kind: source_kinds.SourceKind, failure: str) -> bool:
    if failure == "truncated":
        return kind.counted or kind.finite_if_counted
    if failure == "lost":
        return kind.live
    return True


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("name", list(MUST))
def test_a_raised_source_error_carries_its_kinds_hint(targets, monkeypatch, name, failure):
    if name not in targets:
        pytest.skip(f"no {name} on this system")
    source = VideoSource(targets[name], SourceOptions(0.3, 0.3, (0.0, 0.0), 5.0))
    if not _can(source.kind, failure):
        return  # this kind cannot fail this way (a camera declares no frame count)
    error, plan = PLANS[failure]
    gate = threading.Event()
    made = plan(gate, source.kind.live)
    opened: list[Fake] = []

    def factory(target: Any, kind: Any, options: Any) -> Fake:
        cap = made[min(len(opened), len(made) - 1)]
        opened.append(cap)
        return cap

    monkeypatch.setattr(capture, "open_capture", factory)
    try:
        with pytest.raises(error) as info:
            list(source)
    finally:
        gate.set()  # free a blocked fake read
    assert source.kind.name == name
    assert info.value.hint == getattr(source_kinds.HINTS[name], failure), info.value


# ------------------------------------------------------------------ the CLI's OSError hints
def test_a_port_in_use_says_so_and_names_port_0():
    """The OSError asyncio raises when ``serve --port`` is taken (errno, no filename)."""
    with socket.socket() as taken, socket.socket() as again:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError) as info:
            again.bind(taken.getsockname())
    assert info.value.errno == errno.EADDRINUSE
    message, hint, status = cli._classify(info.value, "serve")
    assert status == 2 and "port is already in use" in message
    assert "--port 0" in hint and "paths" not in hint


@pytest.mark.parametrize(
    ("exc", "words", "never"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file", "/x/y.mp4"), ["paths"], []),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), ["permissions"], []),
        (OSError(errno.EROFS, "Read-only file system", "/sys/x"), ["read-only"], []),
        (OSError(errno.ENOSPC, "No space left on device", "/tmp/o.mp4"), ["disk is full"], []),
        (OSError(errno.EADDRNOTAVAIL, "cannot assign requested address"), ["--host"], ["paths"]),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ["server"], ["paths"]),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ["host"], ["paths"]),
        (OSError(errno.EMFILE, "Too many open files"), ["ulimit"], ["paths"]),
        (OSError(errno.EIO, "Input/output error"), ["names no file"], ["paths"]),
    ],
)
def test_os_errors_get_the_hint_of_their_case(exc, words, never):
    message, hint, status = cli._classify(exc, "run")
    assert status == 2 and message
    for word in words:
        assert word in hint, (exc, hint)
    for word in never:
        assert word not in hint, (exc, hint)
