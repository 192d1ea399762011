"""A tiny RTSP server for tests/test_network_sources.py (run with the SYSTEM python3, which
has GStreamer's introspection bindings ``gi``): serves a video file's MPEG-4 Part 2 or H.264
stream, unchanged (no re-encoding), at ``rtsp://127.0.0.1:PORT/clip``, each client from the
file's start, paced in real time. Listens on 127.0.0.1 only.

    /usr/bin/python3 tests/rtsp_clip_server.py CLIP.mp4 PORT   (PORT 0: a free one)

Prints ``ready PORT`` once it listens; ends on SIGTERM / SIGINT or after --lifetime seconds
(a bound, so that a test that dies leaves no server behind).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PAYLOADERS = {
    "mpeg4": "mpeg4videoparse config-interval=-1 ! rtpmp4vpay name=pay0 pt=96 config-interval=1",
    "h264": "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=1",
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("port", type=int)
    parser.add_argument("--codec", choices=sorted(PAYLOADERS), default="mpeg4")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.clip.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! {PAYLOADERS[args.codec]} )')
    factory.set_shared(False)
    server.get_mount_points().add_factory("/clip", factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    GLib.timeout_add(int(args.lifetime * 1000), loop.quit)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
