"""Video sources never hang and never end silently (issue 26): a named pipe with no writer,
a pipe that stalls, leaving ``stream()`` during a stall, Ctrl-C during a stall, a truncated
file, a file still being written, a camera that drops and comes back or does not.

Every case that could hang runs in a thread joined with a timeout (or a subprocess with a
timeout), so a regression fails the test instead of hanging the suite; the only bounds on
time are "ended within a generous bound" where a hang is the fault. Cameras are fakes put in
place of ``capture.open_capture`` (the one seam where captures are made), with reconnect
delays of 0 so the back-off costs no time.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import waits

from rapsam_edge import Segmenter
from rapsam_edge.errors import (
    ConfigError,
    SourceError,
    SourceLost,
    SourceStalled,
    SourceTruncated,
    SourceUnavailable,
)
from rapsam_edge.runtime import capture
from rapsam_edge.runtime.capture import SourceOptions, VideoSource
from rapsam_edge.runtime.sources import open_source, prefetch

BOUND = 10.0  # s: "did not hang" (each case's cause is a timeout of 0.5 s or less)
FRAMES = 30
fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
#: where a timeout is the point of the test
FAST = SourceOptions(open_timeout=0.5, read_timeout=0.5, reconnect_delays=(0.0, 0.0, 0.0))
#: where it is not: default timeouts (a busy machine never reaches them), no back-off delay
RETRY = SourceOptions(reconnect_delays=(0.0, 0.0, 0.0))


bounded = functools.partial(waits.bounded, limit=BOUND)  # tests/waits.py


def eventually(check: Callable[[], bool], limit: float = BOUND) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture(scope="module")
def avi(tmp_path_factory) -> Path:
    """A complete 30-frame MJPG AVI (its header declares 30 frames)."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(FRAMES):
        frame = np.full((48, 64, 3), (i * 7) % 255, np.uint8)
        frame[:, i % 64] = 255
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Segmenter:
    return Segmenter(shipped_bundle, "ort-cpu")


@pytest.fixture
def fifo(tmp_path):
    """A named pipe, and a way to feed it from a thread; the writers are closed at the end
    (so that no reader stays blocked after the test)."""
    path = tmp_path / "feed.avi"
    os.mkfifo(path)
    release = threading.Event()
    writers: list[threading.Thread] = []

    def feed(data: bytes, *, then_stall: bool) -> None:
        def write() -> None:
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                if then_stall:
                    release.wait()

        writers.append(threading.Thread(target=write, daemon=True))
        writers[-1].start()

    yield path, feed
    release.set()
    for w in writers:
        w.join(BOUND)
    capture._poke_fifo(str(path))  # a reader still waiting for a writer


def read_all(source: Any, options: SourceOptions | None = None) -> list[np.ndarray]:
    frames, order = open_source(source, "RGB", options)
    assert order == "BGR"
    return list(frames)


# ------------------------------------------------------------------ pipes and files
@fifo_only
def test_a_pipe_with_no_writer_is_source_unavailable_not_a_hang(fifo):
    path, _ = fifo
    with pytest.raises(SourceUnavailable, match=r"pipe .* did not open within 0\.5 s"):
        bounded(lambda: read_all(path, FAST))
    # the I/O thread blocked in open() is woken (the pipe's write end opened once) and exits
    assert eventually(lambda: capture._stuck_alive() == 0)


@fifo_only
def test_a_pipe_that_stalls_mid_stream_is_source_stalled(fifo, avi):
    path, feed = fifo
    data = avi.read_bytes()
    feed(data[: len(data) * 6 // 10], then_stall=True)
    got: list[np.ndarray] = []

    def consume() -> None:
        frames, _ = open_source(path, "RGB", SourceOptions(open_timeout=5.0, read_timeout=0.5))
        for frame in frames:
            got.append(frame)

    with pytest.raises(SourceStalled, match=r"pipe .* stalled after frame \d+: no frame within"):
        bounded(consume)
    assert 0 < len(got) < FRAMES


@fifo_only
def test_a_pipe_fed_to_its_end_is_read_whole(fifo, avi):
    """A pipe is a legitimate source (ffmpeg writing to a FIFO): not refused."""
    path, feed = fifo
    feed(avi.read_bytes(), then_stall=False)
    assert len(bounded(lambda: read_all(path))) == FRAMES


def test_a_complete_file_ends_normally(avi):
    frames = bounded(lambda: read_all(avi))
    assert len(frames) == FRAMES and frames[0].shape == (48, 64, 3)


@pytest.mark.parametrize("fraction", [0.6, 0.9])
def test_a_truncated_file_is_source_truncated_naming_the_frame(avi, tmp_path, fraction):
    data = avi.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(SourceTruncated, match=rf"ended after frame \d+ of the {FRAMES}") as info:
        bounded(lambda: read_all(cut))
    assert info.value.hint


def test_a_truncated_mp4_is_refused_at_open(tmp_path):
    """OpenCV's MP4 writer puts the index (moov) last: a cut file does not open at all."""
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    assert len(read_all(path)) == 10
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 9 // 10])
    with pytest.raises(SourceUnavailable, match=r"OpenCV refused the file.*truncated"):
        bounded(lambda: read_all(path))


def test_not_a_video_source_is_refused_before_opencv(tmp_path, monkeypatch):
    monkeypatch.setattr(capture, "open_capture", lambda *a: pytest.fail("OpenCV reached"))
    with pytest.raises(SourceUnavailable, match="does not exist"):
        read_all(tmp_path / "none.mp4")
    with pytest.raises(SourceUnavailable, match="not a video file, pipe"):
        read_all(tmp_path)


# ------------------------------------------------------------------ fake captures
class FakeCapture:
    """A capture that gives ``frames`` frames, then ``then``: "fail" (read returns False),
    "block" (read waits until ``unblock`` is set), "raise" (read raises)."""

    unblock = threading.Event()

    def __init__(self, frames: int, then: str = "fail", count: float = 0.0) -> None:
        self.frames, self.then, self.count = frames, then, count
        self.read_calls = 0
        self.released = threading.Event()

    def isOpened(self) -> bool:
        return True

    def get(self, prop: int) -> float:
        return self.count if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.read_calls += 1
        if self.read_calls <= self.frames:
            return True, np.full((48, 64, 3), self.read_calls, np.uint8)
        if self.then == "block":
            FakeCapture.unblock.wait()
        if self.then == "raise":
            raise cv2.error("camera gone")
        return False, None

    def release(self) -> None:
        self.released.set()


class Refused(FakeCapture):
    def isOpened(self) -> bool:
        return False


@pytest.fixture
def cameras(monkeypatch):
    """Install a plan: one capture per open, in order (the last one repeats)."""
    made: list[FakeCapture] = []
    FakeCapture.unblock = threading.Event()

    def install(*plan: FakeCapture) -> list[FakeCapture]:
        def factory(target: Any, kind: capture.SourceKind, options: Any) -> FakeCapture:
            cap = plan[min(len(made), len(plan) - 1)]
            made.append(cap)
            return cap

        monkeypatch.setattr(capture, "open_capture", factory)
        return made

    yield install
    FakeCapture.unblock.set()


@pytest.mark.parametrize("then", ["fail", "block", "raise"])
def test_a_camera_that_drops_and_returns_is_reconnected(cameras, then):
    made = cameras(FakeCapture(4, then), Refused(0), FakeCapture(100))
    source = VideoSource(
        0,
        SourceOptions(read_timeout=1.0, reconnect_delays=(0.0,) * 3) if then == "block" else RETRY,
    )
    frames = bounded(lambda: list(prefetch(iter(source), lambda f: None, limit=10)))
    assert len(frames) == 10
    assert [int(f[0][0, 0, 0]) for f in frames] == [1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    assert source.reconnects == 1 and len(made) == 3  # one refused attempt, one success
    assert eventually(made[0].released.is_set) or then == "block"


def test_a_camera_that_never_returns_is_source_lost_after_the_budget(cameras, caplog):
    made = cameras(FakeCapture(3), Refused(0))
    with pytest.raises(SourceLost, match=r"camera 0 lost after frame 3 .*3 reconnect attempts"):
        bounded(lambda: read_all(VideoSource(0, RETRY)))
    assert len(made) == 4  # the first open and the 3 attempts of the back-off
    assert sum("reconnect attempt" in r.message for r in caplog.records) == 3


def test_the_reconnect_budget_caps_the_time_of_one_outage(cameras):
    made = cameras(FakeCapture(1), Refused(0))
    options = SourceOptions(reconnect_delays=(0.05,) * 100, reconnect_total=0.3)
    with pytest.raises(SourceLost):
        bounded(lambda: read_all(VideoSource(0, options)))
    assert len(made) < 50  # stopped by the total, not by the 100 attempts


def test_a_camera_that_never_gives_a_frame_is_refused_without_retrying(cameras):
    made = cameras(FakeCapture(0), FakeCapture(5))
    with pytest.raises(SourceUnavailable, match="gave no frame"):
        bounded(lambda: read_all(VideoSource(0, RETRY)))
    assert len(made) == 1


def test_a_file_still_being_written_is_source_truncated(cameras, tmp_path):
    """A container that declares no frame count: a file that grows while read ended early."""
    path = tmp_path / "growing.mkv"
    path.write_bytes(b"x" * 100)
    cameras(FakeCapture(3, count=0.0))
    frames = iter(VideoSource(path, RETRY))
    next(frames)
    with open(path, "ab") as f:
        f.write(b"y" * 100)
    with pytest.raises(SourceTruncated, match="after frame 3 while it was being written"):
        bounded(lambda: list(frames))


def test_abandoned_capture_threads_are_bounded(cameras, monkeypatch):
    assert eventually(lambda: capture._stuck_alive() == 0)  # none left by other tests
    monkeypatch.setattr(capture, "MAX_STUCK_CAPTURES", 1)
    first = FakeCapture(1, "block")
    cameras(first)
    no_retry = SourceOptions(open_timeout=0.5, read_timeout=0.2, reconnect_delays=())
    with pytest.raises(SourceLost, match=r"no frame within 0\.2 s"):
        bounded(lambda: read_all(VideoSource(0, no_retry)))
    with pytest.raises(SourceUnavailable, match="1 capture threads are still blocked"):
        bounded(lambda: read_all(VideoSource(0, no_retry)))
    FakeCapture.unblock.set()  # the stuck read returns: the thread releases and exits
    assert eventually(first.released.is_set) and eventually(lambda: capture._stuck_alive() == 0)


# ------------------------------------------------------------------ leaving stream()
def test_leaving_stream_during_a_stall_returns_and_the_capture_is_released(seg, cameras):
    cam = FakeCapture(3, "block")
    cameras(cam)
    patient = SourceOptions(read_timeout=600)  # only leaving can end this wait
    it = seg.stream(0, task="panoptic", source_options=patient)
    bounded(lambda: next(it))
    assert eventually(lambda: cam.read_calls == 4)  # the capture thread is now stuck
    bounded(it.close, limit=5.0)  # the consumer leaves: no join on the stuck thread
    assert not cam.released.is_set()
    FakeCapture.unblock.set()
    assert eventually(cam.released.is_set)  # released once OpenCV returns
    assert eventually(lambda: capture._stuck_alive() == 0)


def test_an_exception_in_the_loop_body_during_a_stall_leaves_promptly(seg, cameras):
    cameras(FakeCapture(3, "block"))

    def body() -> None:
        for _ in seg.stream(0, task="panoptic", source_options=SourceOptions(read_timeout=600)):
            time.sleep(0.2)  # the capture thread reaches the stall meanwhile
            raise RuntimeError("caller's own error")

    with pytest.raises(RuntimeError, match="caller's own error"):
        bounded(body)


def test_ctrl_c_during_a_stall_reaches_the_caller():
    """In a subprocess (signals go to the main thread): SIGINT while stream's consumer waits
    on a capture thread stuck in OpenCV ends the process with KeyboardInterrupt."""
    script = """
import os, signal, threading, numpy as np
from rapsam_edge.runtime import capture
from rapsam_edge.runtime.capture import VideoSource, SourceOptions
from rapsam_edge.runtime.sources import prefetch
class Cap:
    def isOpened(self): return True
    def get(self, p): return 0.0
    def read(self): threading.Event().wait(); return False, None
    def release(self): pass
capture.open_capture = lambda *a: Cap()
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    list(prefetch(VideoSource(0, SourceOptions(open_timeout=600)), lambda f: f))
except KeyboardInterrupt:
    print("interrupted")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "interrupted" in out.stdout, out.stderr


def test_frames_from_an_iterable_are_not_timed(seg):
    """An iterable keeps today's behaviour: no timeout (a slow generator is not a stall) and
    its end is the end of the stream."""

    def slow():
        for _ in range(3):
            time.sleep(0.1)
            yield np.zeros((40, 50, 3), np.uint8)

    options = SourceOptions(read_timeout=0.01, open_timeout=0.01)
    assert len(list(seg.stream(slow(), task="panoptic", source_options=options))) == 3


def test_stream_passes_source_options_and_reads_a_video_source(seg, avi):
    source = VideoSource(avi)
    got = bounded(lambda: list(seg.stream(source, task="panoptic", max_frames=5)))
    assert len(got) == 5 and source.frames_read == 5  # no frame read past max_frames
    with pytest.raises(ConfigError, match="SourceOptions"):
        next(seg.stream(avi, source_options={"read_timeout": 1}))  # type: ignore[arg-type]


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize(
    "kwargs",
    [
        {"open_timeout": 0},
        {"read_timeout": -1},
        {"read_timeout": float("nan")},
        {"read_timeout": True},
        {"open_timeout": 1e9},
        {"reconnect_total": float("inf")},
        {"reconnect_delays": (1.0, -1.0)},
        {"reconnect_delays": "1"},
        {"reconnect_delays": (0.0,) * 101},
    ],
)
def test_bad_source_options_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        SourceOptions(**kwargs)


def test_run_has_timeout_flags_with_their_defaults(capsys):
    from rapsam_edge.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--open-timeout SECONDS" in text and f"(default {capture.DEFAULT_OPEN_TIMEOUT})" in text
    assert f"(default {capture.DEFAULT_READ_TIMEOUT})" in text
    for bad in ("0", "nan", "-3", "x"):
        with pytest.raises(SystemExit) as info:
            main(["run", "--source", "0", "--read-timeout", bad])
        assert info.value.code == 2


def test_source_error_kinds_are_source_errors():
    for cls in (SourceUnavailable, SourceStalled, SourceTruncated, SourceLost):
        assert issubclass(cls, SourceError) and cls("x").hint


@fifo_only
def test_run_on_a_pipe_with_no_writer_fails_in_one_line(fifo, tmp_path):
    """The CLI: ``rapsam-edge run --source FIFO`` with no writer ends with the typed error
    (exit 2, message and hint, no traceback) instead of hanging."""
    path, _ = fifo
    cmd = [sys.executable, "-m", "rapsam_edge.cli", "run", "--backend", "ort-cpu"]
    cmd += ["--source", str(path), "--open-timeout", "0.5", "--out", str(tmp_path / "out")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "did not open within 0.5 s" in out.stderr and "hint:" in out.stderr
    assert "Traceback" not in out.stderr


def test_ctrl_c_on_a_stalled_pipe_ends_rapsam_edge_run_cleanly(avi, tmp_path):
    """The program: Ctrl-C while `rapsam-edge run` waits on a stalled pipe exits 130 with no
    traceback and no crash. (It crashed 2 times in 9 with SIGSEGV: the interpreter finalised
    while the abandoned capture thread was inside OpenCV; `cli._leave` now ends the process
    with os._exit once its output is flushed.)"""
    data = avi.read_bytes()
    release = threading.Event()
    for attempt in range(3):
        path = tmp_path / f"feed{attempt}.avi"
        os.mkfifo(path)

        def write(path: Path = path) -> None:
            with open(path, "wb") as f:
                f.write(data[: len(data) * 6 // 10])
                f.flush()
                release.wait()

        threading.Thread(target=write, daemon=True).start()
        cmd = [sys.executable, "-m", "rapsam_edge.cli", "run", "--backend", "ort-cpu"]
        cmd += ["--source", str(path), "--read-timeout", "60", "--out", str(tmp_path / "out")]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("bundle"), attempt  # the bundle is loaded
        time.sleep(1.5)  # the 60 % of the clip is read; the reader now waits on the pipe
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=BOUND)
        assert proc.returncode == 130, (attempt, proc.returncode, err)
        assert "Traceback" not in err
    release.set()
