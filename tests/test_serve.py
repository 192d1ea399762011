"""`rapsam-edge serve`: the server without a browser (the socket's messages, bad messages,
/state, latest-only delivery, the end and the failure of a source, cross-origin sockets,
host policy, SIGTERM) and the page in a real browser (Debian's chromium + chromedriver,
headless, through Selenium; tests/test_serve_browser.py).

The server runs in this process on the shipped edge-s-synthetic bundle (ONNX Runtime) and the
sample clip, started paused: frames advance only by "step", so every check is on a known
frame index, whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from serve_cli import BACKEND, BUNDLE, WAIT, start_cli  # tests/serve_cli.py

from rapsam_edge.apps.draw import interior_point
from rapsam_edge.apps.serve import MAX_PENDING, Hub, _Client, check_host, make_app
from rapsam_edge.apps.serve_engine import Engine
from rapsam_edge.assets import sample_clip
from rapsam_edge.errors import ConfigError, SourceError


@pytest.fixture(scope="module")
def seg():
    from rapsam_edge.runtime.segmenter import Segmenter

    return Segmenter(BUNDLE, backend=BACKEND, color_order="BGR")


@pytest.fixture(scope="module")
def thing_point(seg) -> tuple[int, int]:
    """An interior point of the first frame's panoptic thing (a point inside an object)."""
    cap = cv2.VideoCapture(str(sample_clip()))
    ok, frame = cap.read()
    cap.release()
    assert ok
    res = seg.panoptic(frame)
    things = [s for s in res.segments if s[5]]
    assert things, "the sample clip's first frame has a thing"
    return interior_point(res.panoptic_map == things[0][0])


def _serve(engine: Engine, body: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = Hub(asyncio.get_running_loop())
        async with TestServer(make_app(engine, hub)) as server, TestClient(server) as client:
            engine.start()
            try:
                await asyncio.wait_for(body(client), WAIT * 2)
            finally:
                await asyncio.to_thread(engine.stop)

    engine.open()
    asyncio.run(main())


async def _until(ws: Any, pred: Callable[[dict], bool]) -> dict:
    """The next JSON message from the server that ``pred`` accepts (binary frames skipped)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        assert msg.type in (WSMsgType.TEXT, WSMsgType.BINARY), msg
        if msg.type == WSMsgType.TEXT:
            m = json.loads(msg.data)
            if pred(m):
                return m


async def _ask(ws: Any, text: str) -> dict:
    await ws.send_str(text)
    return await _until(ws, lambda m: m["type"] in ("ack", "error"))


def _frame(index: int) -> Callable[[dict], bool]:
    return lambda m: m["type"] == "frame" and m["frame_index"] == index


def test_host_policy():
    assert check_host("127.0.0.1", False) and check_host("::1", False)
    assert check_host("localhost", False) and check_host("127.0.0.2", False)
    for host in ("0.0.0.0", "192.168.1.5", "example.com", "::"):
        with pytest.raises(ConfigError, match="not a loopback"):
            check_host(host, False)
        assert check_host(host, True) is False  # allowed, and the caller warns


BAD_MESSAGES = [
    ("not json", "not a JSON message"),
    ("[1, 2]", "JSON object"),
    ('{"type": "click", "x": NaN, "y": 3}', "NaN"),
    ('{"type": "click", "x": 1e999, "y": 3}', "finite"),
    ('{"type": "click", "x": 1' + "0" * 400 + ', "y": 3}', "finite"),
    ('{"type": "remove", "id": 1' + "0" * 400 + "}", "no tracked object"),
    ('{"type": "step", "frames": 1' + "0" * 400 + "}", "frames"),
    ('{"type": "click", "x": -1, "y": 3}', "outside the frame"),
    ('{"type": "click", "x": 480, "y": 3}', "outside the frame"),
    ('{"type": "click", "x": "5", "y": 3}', "finite number"),
    ('{"type": "click", "x": true, "y": 3}', "finite number"),
    ('{"type": "click", "x": 5}', "finite number"),
    ('{"type": "box", "x0": 50, "y0": 50, "x1": 40, "y1": 90}', "x0 < x1"),
    ('{"type": "box", "x0": 0, "y0": 0, "x1": 481, "y1": 90}', "outside the frame"),
    ('{"type": "remove", "id": 99}', "no tracked object"),
    ('{"type": "remove", "id": "1"}', "integer"),
    ('{"type": "remove", "x": 5, "y": 5}', "no tracked object"),
    ('{"type": "step", "frames": 0}', "frames"),
    ('{"type": "step", "frames": 1.5}', "frames"),
    ('{"type": "launch"}', "unknown message type"),
    ('{"no": "type"}', "unknown message type"),
    ("[" * 100000, "over"),
    ("[" * 3000, "not a JSON message"),  # nested past the parser's recursion limit
]


def test_socket_click_step_remove_box_and_bad_messages(seg, thing_point):
    engine = Engine(seg, str(sample_clip()), paused=True)
    x, y = thing_point

    async def body(client: TestClient) -> None:
        ws = await client.ws_connect("/ws")
        first = await _until(ws, _frame(0))
        jpeg = await asyncio.wait_for(ws.receive(), WAIT)  # the frame's JPEG follows it
        image = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (first["height"], first["width"], 3) == (360, 480, 3)
        for text, fragment in BAD_MESSAGES:  # each answered, none kills anything
            reply = await _ask(ws, text)
            assert reply["type"] == "error" and fragment in reply["message"], (text, reply)
        await ws.send_bytes(b"\x00\x01")
        assert "binary" in (await _until(ws, lambda m: m["type"] == "error"))["message"]
        assert (await _ask(ws, json.dumps({"type": "click", "x": x, "y": y})))["ids"] == [1]
        state = await (await client.get("/state")).json()
        assert state["frame_index"] == 0 and state["paused"] is True
        new = {"id": 1, "state": "new", "box": None, "score": None}
        assert state["objects"] == [{**new, "prompt": {"frame_index": 0, "points": [[x, y]]}}]
        assert (await _ask(ws, '{"type": "step", "frames": 2}'))["op"] == "step"
        meta = await _until(ws, _frame(2))
        (obj,) = meta["objects"]
        assert obj["id"] == 1 and obj["state"] == "tracked" and obj["score"] > 0.5
        x0, y0, x1, y1 = obj["box"]
        assert x1 > x0 and y1 > y0
        assert {"read", "encoder", "decoder", "tracking", "draw"} <= set(meta["timings"])
        state = await (await client.get("/state")).json()
        assert state["frame_index"] == 2 and state["objects"][0]["box"] == obj["box"]
        assert engine.last is not None
        mask = engine.last.objects[0].mask
        rx, ry = interior_point(mask)
        assert (await _ask(ws, json.dumps({"type": "remove", "x": rx, "y": ry})))["ids"] == [1]
        assert (await (await client.get("/state")).json())["objects"] == []
        box = {"type": "box", "x0": x0, "y0": y0, "x1": x1, "y1": y1}
        assert (await _ask(ws, json.dumps(box)))["ids"] == [2]
        assert (await _ask(ws, '{"type": "remove", "id": 2}'))["ids"] == [2]
        assert (await _ask(ws, '{"type": "remove", "id": 2}'))["type"] == "error"
        await _ask(ws, '{"type": "step", "frames": 1}')
        assert (await _until(ws, _frame(3)))["objects"] == []
        resp = await client.get("/frame.jpg")
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        await ws.close()

    _serve(engine, body)


def test_several_clients_share_one_tracker_and_a_client_may_leave(seg, thing_point):
    engine = Engine(seg, str(sample_clip()), paused=True)

    async def body(client: TestClient) -> None:
        a, b = await client.ws_connect("/ws"), await client.ws_connect("/ws")
        await _until(a, _frame(0))
        await _until(b, _frame(0))
        x, y = thing_point
        click = json.dumps({"type": "click", "x": x, "y": y})
        assert (await _ask(a, click))["ids"] == [1]
        # another tab right-clicks it before any frame showed it (paused): its click's point
        remove = json.dumps({"type": "remove", "x": x + 2, "y": y})
        assert (await _ask(b, remove))["ids"] == [1]
        assert (await _ask(a, click))["ids"] == [2]
        await a.close()  # a tab closes: the stream goes on for the other
        await _ask(b, '{"type": "step", "frames": 1}')
        assert [o["id"] for o in (await _until(b, _frame(1)))["objects"]] == [2]
        assert (await _ask(b, '{"type": "remove", "id": 2}'))["type"] == "ack"
        await b.close()

    _serve(engine, body)


def test_a_cross_origin_socket_is_refused(seg):
    engine = Engine(seg, str(sample_clip()), paused=True)

    async def body(client: TestClient) -> None:
        from aiohttp import WSServerHandshakeError

        with pytest.raises(WSServerHandshakeError) as err:
            await client.ws_connect("/ws", headers={"Origin": "http://evil.example"})
        assert err.value.status == 403
        ws = await client.ws_connect("/ws", headers={"Origin": str(client.make_url("/"))[:-1]})
        await _until(ws, _frame(0))
        await ws.close()

    _serve(engine, body)


def _clip(path: Any, n: int) -> str:
    cap = cv2.VideoCapture(str(sample_clip()))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 360))
    for _ in range(n):
        out.write(cap.read()[1])
    out.release()
    cap.release()
    return str(path)


def test_a_video_ends_or_loops(seg, tmp_path):
    short = _clip(tmp_path / "short.mp4", 3)
    engine = Engine(seg, short)

    async def ended(client: TestClient) -> None:
        ws = await client.ws_connect("/ws")
        assert (await _until(ws, lambda m: m["type"] == "ended"))["message"]
        state = await (await client.get("/state")).json()
        assert state["ended"] is True and state["frame_index"] == 2 and state["error"] is None
        reply = await _ask(ws, '{"type": "click", "x": 10, "y": 10}')
        assert reply["type"] == "error" and "ended" in reply["message"]
        # the controls cannot act once no frame will come: an error, never an "ok"
        for text in (
            '"step", "frames": 3',
            '"resume"',
            '"pause"',
            '"box", "x0": 1, "y0": 1, "x1": 9, "y1": 9',
        ):
            reply = await _ask(ws, f'{{"type": {text}}}')
            assert reply["type"] == "error", reply
            assert reply["message"].startswith("the stream has ended"), reply
        assert (
            engine.paused is False
            and (await (await client.get("/state")).json())["frame_index"] == 2
        )
        late = await client.ws_connect("/ws")  # a tab opened after the end is told too
        await _until(late, lambda m: m["type"] == "ended")

    _serve(engine, ended)
    looping = Engine(seg, short, loop_video=True)

    async def loops(client: TestClient) -> None:
        ws = await client.ws_connect("/ws")
        meta = await _until(ws, lambda m: m["type"] == "frame" and m["frame_index"] >= 7)
        assert meta["loop"] >= 2 and not looping.ended

    _serve(looping, loops)


def test_a_failing_source_is_shown_and_the_server_stays_up(seg):
    frames = [cv2.VideoCapture(str(sample_clip())).read()[1]] * 2

    def source():
        yield from frames
        raise SourceError("camera unplugged")

    engine = Engine(seg, source())

    async def body(client: TestClient) -> None:
        ws = await client.ws_connect("/ws")
        msg = await _until(ws, lambda m: m["type"] == "source_error")
        assert "camera unplugged" in msg["message"]
        state = await (await client.get("/state")).json()
        assert "camera unplugged" in state["error"] and state["frame_index"] == 1
        reply = await _ask(ws, '{"type": "step", "frames": 1}')  # no frame will come
        assert reply["type"] == "error" and "camera unplugged" in reply["message"]

    _serve(engine, body)


def test_a_slow_client_holds_one_frame_and_bounded_messages():
    async def main() -> None:
        hub = Hub(asyncio.get_running_loop())
        client = _Client(ws=None)  # type: ignore[arg-type]  # never sent: a stalled tab
        hub.clients.add(client)
        for i in range(500):
            hub.publish({"type": "frame", "frame_index": i}, bytes(1000))
            hub.notify({"type": "error", "message": str(i)})
        await asyncio.sleep(0.05)  # the calls posted from "another thread" run
        assert client.frame is not None and client.frame[0]["frame_index"] == 499
        assert len(client.messages) == MAX_PENDING
        assert client.messages[-1]["message"] == "499"

    asyncio.run(main())


@pytest.mark.parametrize(
    ("sig", "host"), [(signal.SIGTERM, None), (signal.SIGINT, None), (signal.SIGTERM, "0.0.0.0")]
)
def test_the_command_serves_and_stops_on_a_signal(sig, host):
    from urllib.request import urlopen

    remote = ["--host", host, "--allow-remote"] if host else []
    proc, url = start_cli("--max-fps", "20", "--loop", *remote)
    try:
        assert url.startswith(f"http://{host or '127.0.0.1'}:")
        if host:
            url = url.replace(host, "127.0.0.1")
        with urlopen(url, timeout=WAIT) as r:
            assert b'<img id="view"' in r.read()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # the stream runs
            with urlopen(url + "state", timeout=WAIT) as r:
                if (json.loads(r.read())["frame_index"] or 0) >= 3:
                    break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopping" in err and "Traceback" not in err, err
    assert ("WARNING" in err and "not a loopback" in err) == bool(host), err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--source", "0.mp4", "--host", "0.0.0.0"], "not a loopback address"),
        (["--source", "no/such/clip.mp4"], "does not exist"),
        (["--source", os.devnull, "--bundle", BUNDLE, "--backend", BACKEND], "cannot open"),
    ],
)
def test_the_command_refuses_before_serving(args, fragment):
    proc = subprocess.run(
        [sys.executable, "-m", "rapsam_edge.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
    )
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    assert "serving" not in proc.stdout and "Traceback" not in proc.stderr
