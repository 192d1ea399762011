"""Real servers on 127.0.0.1 for tests/test_network_sources.py, each bounded in time and
stopped by its context manager:

- ``http_files(root, ranges=True)``: an HTTP/1.1 file server (``http.server`` in a thread)
  that answers ``Range`` requests (an MP4 with its index at its end needs them) unless
  ``ranges`` is False (Python's plain ``SimpleHTTPRequestHandler``).
- ``MjpegServer``: a live HTTP camera, ``multipart/x-mixed-replace`` JPEG frames (what IP
  cameras serve), paced at ``fps``; ``stop()`` drops every client and closes the port,
  ``start()`` brings it back on the same port.
- ``RtspServer``: GStreamer's RTSP server (Debian packages, run by the system python3
  with ``gi``: tests/rtsp_clip_server.py) serving a clip at rtsp://127.0.0.1:PORT/clip.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

SYSTEM_PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """``SimpleHTTPRequestHandler`` with single ``bytes=A-B`` ranges (206 answers)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if match is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start = int(match[1]) if match[1] else max(size - int(match[2] or 0), 0)
        end = min(int(match[2]), size - 1) if match[1] and match[2] else size - 1
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return _Limited(f, end - start + 1)

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()


class _Limited:
    """A file read up to ``left`` bytes (a range's end)."""

    def __init__(self, f, left: int) -> None:  # type: ignore[no-untyped-def]
        self.f, self.left = f, left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


class _PlainHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_files(root: Path, *, ranges: bool = True) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port): yields ``http://127.0.0.1:PORT``."""
    handler = RangeHandler if ranges else _PlainHandler
    server = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class DroppingFiles:
    """An HTTP file server (Range requests) on 127.0.0.1 that goes away mid-transfer: an
    answer to a range that starts past 0 (FFmpeg reads an MP4 whole from 0 to find its index,
    then again from its first frame) sends ``HOLD_AFTER`` bytes, then holds (the rest is
    never sent) until ``drop()`` closes the port and cuts every connection."""

    HOLD_AFTER = 48 * 1024

    def __init__(self, root: Path) -> None:
        conns: list[socket.socket] = []
        self.conns, self.gone = conns, threading.Event()
        gone = self.gone

        class Holding(RangeHandler):
            def setup(self) -> None:
                super().setup()
                conns.append(self.connection)

            def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
                wanted = self.headers.get("Range", "")
                if not wanted.startswith("bytes=") or wanted.startswith("bytes=0-"):
                    with contextlib.suppress(OSError):
                        super().copyfile(source, outputfile)
                    return
                with contextlib.suppress(OSError):
                    outputfile.write(source.read(DroppingFiles.HOLD_AFTER))
                    outputfile.flush()
                    gone.wait(60)  # held: nothing more is sent
                    outputfile.write(source.read())

        self.server = _Server(("127.0.0.1", 0), functools.partial(Holding, directory=str(root)))
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.dropped = False

    def drop(self) -> None:
        if self.dropped:
            return
        self.dropped = True
        for conn in self.conns:  # cut first: the held answers end
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.gone.set()
        self.server.shutdown()
        self.server.server_close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)


class MjpegServer:
    """A live MJPEG-over-HTTP camera on 127.0.0.1 serving ``frames`` in a loop (JPEG
    quality 95) at ``fps``; ``sent`` counts the frames sent since the last ``start``."""

    BOUNDARY = "rapsamframe"

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 25.0) -> None:
        import cv2

        self.jpegs = [
            cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for f in frames
        ]
        self.fps, self.port, self.sent = fps, 0, 0
        self.stall_until = 0.0  # time.monotonic() until which no client gets a frame
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header(
                    "Content-Type", f"multipart/x-mixed-replace;boundary={owner.BOUNDARY}"
                )
                self.end_headers()
                i = 0
                with contextlib.suppress(OSError):
                    while not owner._stop.is_set():
                        jpeg = owner.jpegs[i % len(owner.jpegs)]
                        head = f"--{owner.BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        head += f"Content-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                        owner.sent += 1
                        i += 1
                        owner._stop.wait(1.0 / owner.fps)
                        while time.monotonic() < owner.stall_until and not owner._stop.is_set():
                            owner._stop.wait(0.02)  # stalled: the connection open, no data
                with contextlib.suppress(OSError):  # drop the client: a camera gone
                    self.connection.shutdown(socket.SHUT_RDWR)

        return Handler

    def start(self) -> None:
        self._stop.clear()
        self.sent = 0
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Drop every client and close the port (a camera unplugged)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}/stream.mjpg"


def rtsp_server_available() -> str | None:
    """Why the RTSP server cannot run here (None: it can)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', "
        "'1.0'); from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "assert all(Gst.ElementFactory.find(e) for e in ('qtdemux', 'mpeg4videoparse', "
        "'rtpmp4vpay', 'filesrc'))"
    )
    out = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return "GStreamer's RTSP server (gi, GstRtspServer, plugins-good/bad) is not installed"
    return None


class RtspServer:
    """tests/rtsp_clip_server.py as a subprocess: ``start()`` waits for it to listen (on
    ``port``, a free one the first time), ``stop()`` kills it (SIGKILL: a camera gone)."""

    def __init__(self, clip: Path, lifetime: float = 120.0) -> None:
        self.clip, self.lifetime, self.port = clip, lifetime, 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self, wait: float = 30.0) -> None:
        cmd = [SYSTEM_PYTHON, str(HERE / "rtsp_clip_server.py"), str(self.clip), str(self.port)]
        cmd += ["--lifetime", str(self.lifetime)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        end = time.monotonic() + wait
        line = ""
        assert self.proc.stdout is not None
        ready = threading.Event()

        def read() -> None:
            nonlocal line
            line = self.proc.stdout.readline() if self.proc and self.proc.stdout else ""
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(max(end - time.monotonic(), 0)) or not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"the RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.proc = None

    def url(self, userinfo: str = "") -> str:
        return f"rtsp://{userinfo}127.0.0.1:{self.port}/clip"


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers (a hung camera):
    yields the port; the connections are closed at the end."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        for conn in held:
            conn.close()
        listener.close()


def free_port() -> int:
    """A port nothing listens on (closed right after it was bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_clip(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, dst_dir / "clip.mp4"))


__all__ = [
    "SYSTEM_PYTHON",
    "DroppingFiles",
    "MjpegServer",
    "RtspServer",
    "copy_clip",
    "free_port",
    "http_files",
    "rtsp_server_available",
    "silent_server",
]
