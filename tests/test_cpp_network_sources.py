"""The C++ example's network sources (issue 28, deliverable 6: examples/cpp/video_input.hpp)
against REAL servers on 127.0.0.1 (tests/net_servers.py): an HTTP file gives the same output
lines as the file itself (identical frames); a live MJPEG-over-HTTP camera that goes away
and returns is reconnected, one gone for good ends in one error line (exit 2) within the
contract's back-off; the RTSP server (Debian's GStreamer packages) likewise; a GStreamer
pipeline runs through OpenCV's GStreamer back-end (or is refused naming it); refused URLs
never reach OpenCV and credentials are never printed.

Needs the built example: RAPSAM_CPP_EXAMPLE (its path) and RAPSAM_CPP_EXAMPLE_VIDEO=1 (built
with OpenCV), as .ci/run sets them; the RTSP cases also need the Debian packages (skipped
without them unless RAPSAM_REQUIRE_NET_SOURCES=1).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import net_servers
import pytest

from rapsam_edge.contract import shared

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "models" / "samples" / "synthetic_clip.mp4"
BUNDLE = REPO / "models" / "edge-s-synthetic"
EXAMPLE = os.environ.get("RAPSAM_CPP_EXAMPLE")
SECRET = "s3cretPW"
BOUND = 240.0  # s: "did not hang" (loading the bundle is most of it)

pytestmark = pytest.mark.skipif(
    not EXAMPLE or not os.environ.get("RAPSAM_CPP_EXAMPLE_VIDEO"),
    reason="RAPSAM_CPP_EXAMPLE / RAPSAM_CPP_EXAMPLE_VIDEO unset (the example built with OpenCV)",
)


S = net_servers  # tests/net_servers.py


def example(source: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(EXAMPLE), str(BUNDLE), source, "--static-shapes", "off", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=BOUND)


def example_while(source: str, during: Any, *args: str) -> tuple[int, str, str]:
    """Run the example; once it has printed 5 frame lines, call ``during()`` (in a thread,
    while the example keeps reading). Returns (exit status, stdout, stderr)."""
    cmd = [str(EXAMPLE), str(BUNDLE), source, "--static-shapes", "off", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(stderr.read()), daemon=True)
    reader.start()
    lines = []
    try:
        for line in stdout:
            lines.append(line)
            if len(lines) == 5:
                threading.Thread(target=during, daemon=True).start()
        proc.wait(BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        stdout.close()
    reader.join(10)
    stderr.close()
    return proc.returncode, "".join(lines), "".join(err)


@pytest.fixture(scope="module")
def file_lines() -> list[str]:
    out = example(str(CLIP))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 48
    return lines


def test_an_http_file_gives_the_files_output(file_lines, tmp_path):
    S.copy_clip(CLIP, tmp_path)
    with S.http_files(tmp_path) as base:
        out = example(f"{base}/clip.mp4")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == file_lines  # identical frames, identical results


def test_an_upper_case_scheme_and_host_give_the_files_output(file_lines, tmp_path):
    """Scheme and host are case-insensitive: the example gives OpenCV them in lower case
    (FFmpeg refuses 'HTTP://'), the path as given (the server's file is 'Clip.mp4')."""
    (tmp_path / "Clip.mp4").write_bytes(CLIP.read_bytes())
    with S.http_files(tmp_path) as base:
        out = example(base.replace("http://127.0.0.1", "HTTP://LOCALHOST") + "/Clip.mp4")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == file_lines


def test_a_live_http_camera_that_drops_and_returns_is_reconnected(file_lines):
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    frames = [cap.read()[1] for _ in range(10)]
    cap.release()
    camera = S.MjpegServer(frames, fps=5.0)  # slow: little is buffered when it drops
    camera.start()

    def drop() -> None:
        camera.stop()
        time.sleep(0.5)
        camera.start()

    try:
        code, out, err = example_while(camera.url(f"admin:{SECRET}@"), drop, "--max-frames", "20")
    finally:
        camera.stop()
    assert code == 0, err
    assert len(out.splitlines()) == 20 and "reconnected (attempt" in err
    assert SECRET not in out + err and "***@127.0.0.1" in err


def test_a_live_http_camera_gone_for_good_is_one_error_line(file_lines):
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    frames = [cap.read()[1] for _ in range(10)]
    cap.release()
    camera = S.MjpegServer(frames, fps=5.0)  # slow: little is buffered when it drops
    camera.start()
    start = time.monotonic()
    code, out, err = example_while(
        camera.url(f"admin:{SECRET}@"), camera.stop, "--read-timeout", "2", "--open-timeout", "2"
    )
    took = time.monotonic() - start
    assert code == 2 and len(out.splitlines()) >= 5, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    attempts = len(shared.RECONNECT_DELAYS)
    assert len(errors) == 1 and f"{attempts} reconnect attempts in" in errors[0], err
    assert SECRET not in out + err
    assert took < BOUND


@pytest.fixture
def rtsp(tmp_path):
    why = S.rtsp_server_available()
    if why is not None:
        if os.environ.get("RAPSAM_REQUIRE_NET_SOURCES") == "1":
            pytest.fail(f"RAPSAM_REQUIRE_NET_SOURCES=1 but {why}")
        pytest.skip(why)
    server = S.RtspServer(S.copy_clip(CLIP, tmp_path / "srv"))
    server.start()
    yield server
    server.stop()


def test_rtsp_gives_the_files_output_and_reconnects_a_restarted_server(rtsp, file_lines):
    out = example(rtsp.url(), "--max-frames", "12")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == file_lines[:12]  # identical frames over RTSP

    def restart() -> None:
        rtsp.stop()
        time.sleep(0.5)
        rtsp.start()

    code, text, err = example_while(rtsp.url(f"admin:{SECRET}@"), restart, "--max-frames", "30")
    assert code == 0 and len(text.splitlines()) == 30, err
    assert "reconnected (attempt" in err and SECRET not in text + err


def test_an_rtsp_server_gone_for_good_is_one_error_line(rtsp):
    code, out, err = example_while(rtsp.url(f"admin:{SECRET}@"), rtsp.stop, "--read-timeout", "2")
    assert code == 2 and "lost after frame" in err, err
    assert SECRET not in out + err


def test_a_gstreamer_pipeline_runs_or_is_refused_naming_the_backend():
    pipeline = "videotestsrc num-buffers=5 ! videoconvert ! video/x-raw,format=BGR ! appsink"
    out = example(pipeline, "--max-frames", "8")
    if "no GStreamer back-end" in out.stderr:
        assert out.returncode == 2 and "WITH_GSTREAMER" in out.stderr
        return
    # 5 frames, then its end is a loss (a pipeline declares no frame count: live): reopened
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 8 and "reconnected (attempt 1)" in out.stderr


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("ftp://127.0.0.1/x.mp4", "scheme 'ftp' is not taken"),
        ("file:///etc/passwd", "file:// URLs are not taken"),
        (f"rtsp://admin:{SECRET}/x", "malformed URL"),
        (f"rtsp://admin:{SECRET}@/x", "names no host"),
        (f"rtsp://admin:pa/{SECRET}@cam/x", "malformed URL"),
        (f"rtsp://admin:pa?{SECRET}@cam/x", "malformed URL"),
        (f"rtsp://admin:p@{SECRET}@127.0.0.1:{S.free_port()}/x", "OpenCV refused it"),
        ("rtsp://127.0.0.1:0/x", "'rtsp://127.0.0.1:0/x' refused: the URL's port is empty or 0"),
        ("rtsp://127.0.0.1:70000/x", "'rtsp://127.0.0.1:70000/x' refused: the URL's port 70000"),
        (f"rtsp://u:{SECRET}@cam:99999/x?k={SECRET}", "'rtsp://***@cam:99999/x?k=***' refused"),
        ("rtsp://admin:1234567/x", "'rtsp://***/x' refused: malformed URL"),
        (f"rtsp://admin:{SECRET} x/y", "'rtsp://***/y' refused: the URL holds a character"),
        (f"rtsp://admin:{SECRET}%zz/y", "'rtsp://***/y' refused: the URL holds a malformed %"),
        ("rtsp://cam/a b", "outside RFC 3986"),
        ("rtsp://cam/x\n\x1b[2Jy", "control character"),
        ("http://caméra/x", "outside RFC 3986"),
        ("http://cam/%zz", "malformed % escape"),
        ("http://-cam-/x", "not a host name"),
        ("http://[::zz]/x", "malformed IPv6 host"),
        ("http://cam/" + "a" * 2100, "at most 2048 bytes"),
        (f"http://127.0.0.1:{S.free_port()}/x?password={SECRET}", "OpenCV refused it"),
    ],
)
def test_refused_urls_are_one_line_and_show_no_secret(source, why):
    out = example(source, "--open-timeout", "3")
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and why in errors[0], out.stderr
    assert SECRET not in out.stdout + out.stderr and "\x1b" not in out.stderr
