"""The inference side of ``rapsam-edge serve``: one thread reads the source (``open_source``,
with its timeouts), steps a ``PromptTracker`` on every frame, draws the objects
(``draw_prompt_tracks``) and hands the JPEG and its metadata to the web side; clicks from the
web side add and remove objects on the frame stepped last. The tracker is guarded by one lock
(``Engine.lock``): a step and a click never run at once.

Pausing: ``pause()`` holds the loop after the frame on screen; ``step(n)`` runs n more frames
and holds again (a click then lands on a known frame: tests and careful demos use this);
``resume()`` runs on. ``--max-fps`` paces the loop; a video file ends (the page says so) or,
with ``loop_video``, starts again (the objects are kept and searched for on the new frames).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np

from ..errors import InputError, RapsamEdgeError, SourceError
from ..runtime.capture import SourceOptions
from ..runtime.results import PromptTrackResult
from ..runtime.sources import open_source
from .draw import draw_prompt_tracks

__all__ = ["MAX_STEP", "Engine"]

log = logging.getLogger(__name__)

#: most frames one ``step`` request may ask for
MAX_STEP = 1000
#: JPEG quality of the frames sent to the page
JPEG_QUALITY = 90
#: seconds ``stop`` waits for the inference thread (it is a daemon: left behind after that)
STOP_WAIT = 1.0

Meta = dict[str, Any]
Publish = Callable[[Meta, bytes], None]
Notify = Callable[[Meta], None]


def _ignore_frame(meta: Meta, jpeg: bytes) -> None:
    del meta, jpeg


def _ignore_event(msg: Meta) -> None:
    del msg


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class Engine:
    """A source, a Segmenter (``color_order`` BGR) and its prompt tracker, run in a thread.

    Arguments:
      seg: the ``Segmenter`` (made with ``color_order="BGR"``: capture frames are BGR).
      source: a camera index, a video path or a ``VideoSource`` (``open_source``).
      options: the source's timeouts (``SourceOptions``).
      loop_video: start a video file again at its end instead of ending.
      max_fps: at most this many frames a second (None: as fast as inference runs).
      paused: hold after the first frame until ``resume`` / ``step``.
    """

    def __init__(
        self,
        seg: Any,
        source: Any,
        options: SourceOptions | None = None,
        *,
        loop_video: bool = False,
        max_fps: float | None = None,
        paused: bool = False,
    ) -> None:
        self.seg = seg
        self.tracker = seg.prompt_tracker()
        #: guards ``tracker`` and ``last``: held for one step, or one add / remove
        self.lock = threading.Lock()
        self.source, self.options = source, options
        self.loop_video, self.max_fps = loop_video, max_fps
        self.paused = paused
        self.ended = False
        self.error: str | None = None
        self.loops = 0
        #: the last frame's result and its (metadata, JPEG); None before the first frame
        self.last: PromptTrackResult | None = None
        self.latest: tuple[Meta, bytes] | None = None
        #: how each current object was given: id -> {"frame_index", "points" | "box"}
        self.prompts: dict[int, Meta] = {}
        #: where frames and messages go (``serve.Hub`` sets them; called in the loop's thread)
        self.on_frame: Publish = _ignore_frame
        self.on_event: Notify = _ignore_event
        self._frames: Iterator[np.ndarray] | None = None
        self._first: np.ndarray | None = None
        self._first_ms = 0.0
        self._steps = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open the source and read its first frame (before the server starts, so a bad
        source fails the command).

        Raises:
          SourceError: the source cannot be opened, stalls, or holds no frame."""
        t0 = time.perf_counter()
        self._first = self._open_frames()
        if self._first is None:
            raise SourceError(f"video source {self.source!r} holds no frame")
        self._first_ms = _ms(t0)

    def _open_frames(self) -> np.ndarray | None:
        frames, _ = open_source(self.source, "BGR", self.options)
        self._frames = iter(frames)
        return next(self._frames, None)

    def start(self) -> None:
        """Run the loop in a daemon thread (``open`` first)."""
        self._thread = threading.Thread(target=self._run, name="rapsam-serve-infer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop: a wait for a frame is cancelled (the capture thread is abandoned as
        ``runtime.capture`` does); waits at most ``STOP_WAIT`` s for the thread."""
        self._stop.set()
        cancel = getattr(self._frames, "cancel", None)
        if cancel is not None:
            cancel()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)

    # ------------------------------------------------------------------ controls
    def pause(self) -> None:
        """Hold after the frame on screen. Raises InputError: the stream has ended."""
        with self._cond:
            self._check_playing("pause")
            self.paused, self._steps = True, 0

    def resume(self) -> None:
        """Run on. Raises InputError: the stream has ended."""
        with self._cond:
            self._check_playing("resume")
            self.paused, self._steps = False, 0
            self._cond.notify_all()

    def step(self, n: int) -> None:
        """Run ``n`` more frames, then hold (pauses a running stream). Raises InputError:
        the stream has ended."""
        with self._cond:
            self._check_playing("step")
            self.paused, self._steps = True, n
            self._cond.notify_all()

    def _check_playing(self, op: str) -> None:
        """Refuse a control that cannot act: no frame will come (end of a video without
        ``--loop``, or a source error), so an "ok" would be a lie."""
        if self.ended:
            why = f" ({self.error})" if self.error else ""
            raise InputError(f"the stream has ended{why}: nothing to {op}")

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        frame, read_ms = self._first, self._first_ms
        self._first = None
        try:
            while frame is not None and not self._stop.is_set():
                t_next = time.monotonic() + (1.0 / self.max_fps if self.max_fps else 0.0)
                self._process(frame, read_ms)
                if not self._wait_turn(t_next):
                    return
                t0 = time.perf_counter()
                frame = self._next_frame()
                read_ms = _ms(t0)
            if not self._stop.is_set():
                self.ended = True
                self._event({"type": "ended", "message": "the stream ended"})
        except RapsamEdgeError as exc:
            self._fail(f"{type(exc).__name__}: {exc}" + (f" ({exc.hint})" if exc.hint else ""))
        except Exception as exc:  # shown on the page and logged, never a silent death
            log.exception("serve: inference loop failed")
            self._fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:  # in the thread that iterates: release the capture
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()

    def _fail(self, message: str) -> None:
        self.error, self.ended = message, True
        print(f"rapsam-edge serve: source error: {message}", file=sys.stderr, flush=True)
        self._event({"type": "source_error", "message": message})

    def _event(self, msg: Meta) -> None:
        try:
            self.on_event(msg)
        except RuntimeError:  # the web side's event loop is gone (shutting down)
            pass

    def _next_frame(self) -> np.ndarray | None:
        frame = next(self._frames, None) if self._frames is not None else None
        if frame is None and self.loop_video and not self._stop.is_set():
            self.loops += 1
            frame = self._open_frames()
        return frame

    def _wait_turn(self, t_next: float) -> bool:
        """Hold while paused (until a step or resume) and pace to ``max_fps``; False once
        stopped."""
        with self._cond:
            while not self._stop.is_set() and self.paused:
                if self._steps > 0:
                    self._steps -= 1
                    break
                self._cond.wait(0.1)
        left = t_next - time.monotonic()
        if left > 0:
            self._stop.wait(left)
        return not self._stop.is_set()

    def _process(self, frame: np.ndarray, read_ms: float) -> None:
        with self.lock:
            try:
                res = self.tracker.step(frame)
            except InputError as exc:  # a frame of another size: the objects cannot follow
                self.tracker.reset()
                self.prompts.clear()
                self._event({"type": "error", "message": f"objects dropped: {exc}"})
                res = self.tracker.step(frame)
            self.last = res
            objects = self._objects()
        t0 = time.perf_counter()
        image = draw_prompt_tracks(frame, res)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        timings = {"read": read_ms, **res.timings, "draw": _ms(t0)}
        h, w = res.frame_hw
        meta: Meta = {
            "type": "frame",
            "frame_index": res.frame_index,
            "width": w,
            "height": h,
            "loop": self.loops,
            "paused": self.paused,
            "objects": objects,
            "timings": {k: round(float(v), 3) for k, v in timings.items()},
        }
        self.latest = (meta, buf.tobytes())
        try:
            self.on_frame(*self.latest)
        except RuntimeError:  # the web side's event loop is gone (shutting down)
            pass

    # ------------------------------------------------------------------ clicks (web side)
    def _objects(self) -> list[Meta]:
        """Every current object (under ``lock``): id, state, box, score on the last frame
        (an object added since: state "new", no box yet) and how it was prompted."""
        last = {o.id: o for o in self.last.objects} if self.last is not None else {}
        out = []
        for oid in self.tracker.ids:
            o = last.get(oid)
            rec: Meta = {"id": oid, "state": "new", "box": None, "score": None}
            if o is not None:
                rec.update(state=o.state, box=[int(v) for v in o.box], score=float(o.score))
            rec["prompt"] = self.prompts.get(oid)
            out.append(rec)
        return out

    def _check_running(self) -> None:
        if self.ended or self.last is None:
            why = f" ({self.error})" if self.error else ""
            raise InputError(f"the stream has ended{why}: no frame to add an object on")

    def add(self, *, point: tuple[float, float] | None = None, box: Any = None) -> list[int]:
        """Add one object from a click (x, y) or a box (x0, y0, x1, y1), frame pixels, on the
        frame stepped last. Raises InputError (the tracker's, or the stream has ended)."""
        with self.lock:
            self._check_running()
            index = self.tracker.frame_index - 1
            if point is not None:
                ids = self.tracker.add(None, points=[list(point)])
                prompt: Meta = {"frame_index": index, "points": [list(point)]}
            else:
                ids = self.tracker.add(None, boxes=[list(box)])
                prompt = {"frame_index": index, "box": list(box)}
            for oid in ids:
                self.prompts[oid] = prompt
            return ids

    def remove(self, obj_id: int) -> None:
        """Stop tracking ``obj_id``. Raises InputError: unknown id."""
        with self.lock:
            self.tracker.remove(obj_id)
            self.prompts.pop(obj_id, None)

    def remove_at(self, x: float, y: float) -> int:
        """Remove the object whose mask on the last frame holds (x, y), else the one whose
        box is nearest; returns its id. Raises InputError: no object on the last frame."""
        with self.lock:
            shown = {o.id: o for o in (self.last.objects if self.last else [])}
            hit, boxes = None, {}
            for oid in self.tracker.ids:
                if oid in shown:  # its mask and box on the frame shown
                    o = shown[oid]
                    if hit is None and bool(o.mask[int(y), int(x)]):
                        hit = oid
                    boxes[oid] = [float(v) for v in o.box]
                else:  # added since that frame: its prompt
                    p = self.prompts.get(oid, {})
                    boxes[oid] = p.get("box") or [*p["points"][0], *p["points"][0]]
            if not boxes:
                raise InputError("no tracked object to remove")

            def gap(oid: int) -> float:
                x0, y0, x1, y1 = boxes[oid]
                return float(np.hypot(max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1)))

            oid = hit if hit is not None else min(boxes, key=gap)
            self.tracker.remove(oid)
            self.prompts.pop(oid, None)
            return oid

    def state(self) -> Meta:
        """What ``GET /state`` answers: the frame on screen, its objects and timings, and
        whether the stream is paused, ended or failed."""
        meta = dict(self.latest[0]) if self.latest is not None else {}
        with self.lock:
            objects = self._objects()
        return {
            "frame_index": meta.get("frame_index"),
            "width": meta.get("width"),
            "height": meta.get("height"),
            "loop": self.loops,
            "objects": objects,
            "timings": meta.get("timings", {}),
            "paused": self.paused,
            "ended": self.ended,
            "error": self.error,
        }
