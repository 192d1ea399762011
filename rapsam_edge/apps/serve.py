"""``rapsam-edge serve``: a browser view of click-to-track on a live source.

The web side is aiohttp: one well-kept dependency with HTTP and WebSocket both built in, on
asyncio, so the server needs no second package (FastAPI needs Starlette, pydantic and an
ASGI server such as uvicorn for the same two routes and one socket).

Routes:
- ``GET /``: the page (``static/serve.html``, package data: no CDN, nothing downloaded).
- ``GET /ws``: a WebSocket. The server sends, per frame, a JSON text message ``{"type":
  "frame", "frame_index", "width", "height", "objects", "timings", "paused", "loop"}``
  followed by the annotated frame as one binary JPEG message; and ``{"type": "ack" |
  "error" | "ended" | "source_error", ...}`` messages. The page sends JSON: ``{"type":
  "click", "x", "y"}`` (add an object at a point, frame pixels), ``{"type": "box", "x0",
  "y0", "x1", "y1"}`` (add from a box), ``{"type": "remove", "x", "y"}`` (the object whose
  mask holds the point, else the nearest box) or ``{"type": "remove", "id"}``, ``{"type":
  "pause" | "resume"}``, ``{"type": "step", "frames": n}``. A bad message (not JSON, NaN,
  a coordinate outside the frame, an unknown id or type) is answered with an ``error``
  message; the inference loop never sees it. Once the stream has ended (a video's end
  without ``--loop``, or a source error), ``click``, ``box``, ``pause``, ``resume`` and
  ``step`` cannot act and are answered with an ``error`` "the stream has ended ...";
  ``remove`` still acts (the object leaves ``/state``).
- ``GET /state``: JSON: the frame index on screen, the objects (id, state, box, score, the
  prompt that made it), the timings, paused / ended / error. ``GET /frame.jpg``: the latest
  annotated frame.

Frames are latest-only: each client holds at most one unsent frame (a newer one replaces it)
and at most ``MAX_PENDING`` other messages, so a slow tab never makes memory grow; any
number of tabs see the same stream and act on the one tracker.

Binding: 127.0.0.1 by default; a host that is not a loopback address is refused unless
``allow_remote`` (``--allow-remote``), and then a warning is printed: the page has no
authentication, anyone who reaches the port sees the camera and drives the tracker. A
WebSocket whose ``Origin`` is another site's is refused (a page elsewhere cannot drive the
tracker through the user's browser). Port 0 picks a free port; the URL is printed.
SIGINT / SIGTERM stop the server within ``STOP_WAIT`` s or so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import signal
import sys
from collections import deque
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from ..errors import ConfigError, InputError, RapsamEdgeError
from .serve_engine import MAX_STEP, Engine, Meta

__all__ = ["MAX_CLIENTS", "MAX_PENDING", "Hub", "check_host", "handle_message", "make_app", "serve"]

#: messages other than frames one client may have waiting (the oldest is dropped)
MAX_PENDING = 32
#: largest message the page may send (characters; a longer one is answered with an error)
MAX_MESSAGE = 4096
#: most WebSockets open at once (a further one is refused with 503)
MAX_CLIENTS = 32
#: a socket frame over this is a protocol error: aiohttp closes that socket (code 1009)
MAX_FRAME = 1 << 20
_LOOPBACK_NAMES = ("localhost",)


def check_host(host: str, allow_remote: bool) -> bool:
    """True when ``host`` is a loopback address (or "localhost").

    Raises:
      ConfigError: a non-loopback host without ``allow_remote``."""
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host.lower() in _LOOPBACK_NAMES
    if not loopback and not allow_remote:
        raise ConfigError(
            f"--host {host} is not a loopback address: the page has no authentication, "
            "anyone who reaches it sees the source and drives the tracker",
            hint="keep the default 127.0.0.1 (tunnel with ssh -L), or add --allow-remote",
        )
    return loopback


class _Client:
    """One WebSocket: at most one unsent frame and ``MAX_PENDING`` other messages."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.frame: tuple[Meta, bytes] | None = None
        self.messages: deque[Meta] = deque(maxlen=MAX_PENDING)
        self.wake = asyncio.Event()

    def push(self, msg: Meta) -> None:
        self.messages.append(msg)
        self.wake.set()

    def push_frame(self, frame: tuple[Meta, bytes]) -> None:
        self.frame = frame  # latest-only: an unsent older frame is dropped
        self.wake.set()

    async def send_loop(self) -> None:
        try:
            while not self.ws.closed:
                await self.wake.wait()
                self.wake.clear()
                while self.messages:
                    await self.ws.send_str(json.dumps(self.messages.popleft()))
                if self.frame is not None:
                    (meta, jpeg), self.frame = self.frame, None
                    await self.ws.send_str(json.dumps(meta))
                    await self.ws.send_bytes(jpeg)
        except (ConnectionError, RuntimeError):
            pass  # the client left


class Hub:
    """The connected clients; the engine's callbacks come from its thread and are moved
    onto the event loop here."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: set[_Client] = set()

    def publish(self, meta: Meta, jpeg: bytes) -> None:
        """From the inference thread: a new frame for every client."""
        self.loop.call_soon_threadsafe(self._to_all, None, (meta, jpeg))

    def notify(self, msg: Meta) -> None:
        """From the inference thread: a message for every client."""
        self.loop.call_soon_threadsafe(self._to_all, msg, None)

    def _to_all(self, msg: Meta | None, frame: tuple[Meta, bytes] | None) -> None:
        for c in self.clients:
            if msg is not None:
                c.push(msg)
            if frame is not None:
                c.push_frame(frame)


# ------------------------------------------------------------------ messages from the page
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number the page may send")


def _number(msg: Meta, key: str, limit: float, *, inclusive: bool) -> float:
    """``msg[key]``: a finite number in [0, limit) (``inclusive``: [0, limit])."""
    v = msg.get(key)
    try:  # an int past float's range (JSON has no limit) is not finite either
        finite = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    except OverflowError:
        finite = False
    if not finite or not isinstance(v, (int, float)):
        raise InputError(f"{key!r} must be a finite number, got {str(v)[:40]!r}")
    if not (0 <= v <= limit if inclusive else 0 <= v < limit):
        raise InputError(f"{key}={v} is outside the frame (0 to {limit:g})")
    return float(v)


def _point(engine: Engine, msg: Meta) -> tuple[float, float]:
    h, w = _frame_hw(engine)
    return _number(msg, "x", w, inclusive=False), _number(msg, "y", h, inclusive=False)


def _frame_hw(engine: Engine) -> tuple[int, int]:
    if engine.last is None:
        raise InputError("no frame yet")
    return engine.last.frame_hw


def _box(engine: Engine, msg: Meta) -> list[float]:
    h, w = _frame_hw(engine)
    box = [
        _number(msg, k, lim, inclusive=True) for k, lim in zip(("x0", "y0", "x1", "y1"), (w, h) * 2)
    ]
    if box[2] <= box[0] or box[3] <= box[1]:
        raise InputError(f"a box needs x0 < x1 and y0 < y1, got {box}")
    return box


def _int_id(msg: Meta) -> int:
    v = msg.get("id")
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"'id' must be an integer, got {v!r}")
    return v


def _apply(engine: Engine, msg: Meta) -> Meta:
    """Carry out one message (in a worker thread: a click runs the prompt decoder)."""
    op = msg.get("type")
    if op == "click":
        return {"op": op, "ids": engine.add(point=_point(engine, msg))}
    if op == "box":
        return {"op": op, "ids": engine.add(box=_box(engine, msg))}
    if op == "remove":
        if "id" in msg:
            oid = _int_id(msg)
            engine.remove(oid)
        else:
            oid = engine.remove_at(*_point(engine, msg))
        return {"op": op, "ids": [oid]}
    if op == "pause":
        engine.pause()
    elif op == "resume":
        engine.resume()
    elif op == "step":
        n = msg.get("frames", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEP:
            raise InputError(f"'frames' must be an integer in [1, {MAX_STEP}], got {n!r}")
        engine.step(n)
    else:
        known = "click, box, remove, pause, resume, step"
        raise InputError(f"unknown message type {op!r} (known: {known})")
    return {"op": op}


async def handle_message(engine: Engine, text: str) -> Meta:
    """The answer to one message from the page: ``{"type": "ack", "op", ...}`` or
    ``{"type": "error", "message"}``; never raises for what a client sends."""
    if len(text) > MAX_MESSAGE:
        return {"type": "error", "message": f"message over {MAX_MESSAGE} bytes"}
    try:
        msg = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return {"type": "error", "message": f"not a JSON message: {exc}"}
    if not isinstance(msg, dict):
        return {"type": "error", "message": "a message is a JSON object with a 'type'"}
    op = str(msg.get("type"))[:40]
    try:
        return {"type": "ack", **await asyncio.to_thread(_apply, engine, msg)}
    except RapsamEdgeError as exc:
        return {"type": "error", "message": str(exc), "op": op}
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
        # a value no check above foresaw: still only this message fails
        return {"type": "error", "message": f"bad message: {type(exc).__name__}: {exc}", "op": op}


# ------------------------------------------------------------------ the app
def _same_origin(request: web.Request) -> bool:
    """No Origin (a script) or the page's own origin."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def _ws(request: web.Request) -> web.StreamResponse:
    engine: Engine = request.app["engine"]
    hub: Hub = request.app["hub"]
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    if len(hub.clients) >= MAX_CLIENTS:
        raise web.HTTPServiceUnavailable(text=f"{MAX_CLIENTS} clients are connected already")
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    client = _Client(ws)
    hub.clients.add(client)
    if engine.latest is not None:
        client.push_frame(engine.latest)
    if engine.error is not None:
        client.push({"type": "source_error", "message": engine.error})
    elif engine.ended:
        client.push({"type": "ended", "message": "the stream ended"})
    sender = asyncio.create_task(client.send_loop())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                client.push(await handle_message(engine, msg.data))
            elif msg.type == WSMsgType.BINARY:
                client.push({"type": "error", "message": "binary messages are not understood"})
    finally:
        hub.clients.discard(client)
        sender.cancel()
    return ws


async def _page(request: web.Request) -> web.StreamResponse:
    return web.Response(text=request.app["page"], content_type="text/html")


async def _state(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app["engine"].state())


async def _frame(request: web.Request) -> web.StreamResponse:
    latest = request.app["engine"].latest
    if latest is None:
        raise web.HTTPServiceUnavailable(text="no frame yet")
    return web.Response(body=latest[1], content_type="image/jpeg")


def make_app(engine: Engine, hub: Hub) -> web.Application:
    """The aiohttp application over ``engine`` (its callbacks are wired to ``hub``)."""
    app = web.Application()
    app["engine"], app["hub"] = engine, hub
    app["page"] = resources.files(__package__).joinpath("static/serve.html").read_text("utf-8")
    engine.on_frame, engine.on_event = hub.publish, hub.notify
    app.router.add_get("/", _page)
    app.router.add_get("/ws", _ws)
    app.router.add_get("/state", _state)
    app.router.add_get("/frame.jpg", _frame)
    return app


def _url(address: Any) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def _serve(engine: Engine, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    hub = Hub(loop)
    runner = web.AppRunner(make_app(engine, hub), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    try:
        await web.TCPSite(runner, host, port).start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"serving {_url(runner.addresses[0])} (Ctrl-C to stop)", flush=True)
        engine.start()
        await stop.wait()
        print("rapsam-edge serve: stopping", file=sys.stderr, flush=True)
    finally:
        await asyncio.to_thread(engine.stop)
        for c in list(hub.clients):
            await c.ws.close(code=1001, message=b"server stopping")
        await runner.cleanup()


def serve(engine: Engine, *, host: str, port: int, allow_remote: bool) -> int:
    """Open the source (its first frame), then serve until SIGINT / SIGTERM.

    Raises:
      ConfigError: a non-loopback host without ``allow_remote``.
      SourceError: the source cannot be opened or holds no frame.
      OSError: the port cannot be bound."""
    if not check_host(host, allow_remote):
        print(
            f"rapsam-edge serve: WARNING: serving on {host}, not a loopback address: anyone "
            "who reaches this port sees the source and drives the tracker (no authentication)",
            file=sys.stderr,
            flush=True,
        )
    engine.open()
    asyncio.run(_serve(engine, host, port))
    return 0
