"""A live view of the results in Rerun (``rerun-sdk``), or the same log in an ``.rrd`` file.

    seg = Segmenter()
    with RerunView(OutputInfo.of(seg), save="run.rrd") as view:   # or spawn=True / connect=URL
        for frame, result in seg.stream(0):
            view.log(frame, result)

Entities (``ENTITIES`` names them), on the timeline ``frame`` (and ``stamp`` when a stamp is
given):
  * ``camera/image``: the frame (``rr.Image``, in the frames' colour order);
  * ``camera/segmentation``: the class id per pixel (``rr.SegmentationImage``), the same image
    as the ROS ``semantic/labels`` topic (void = 255 / 65535, vision_msgs' UNLABELED), coloured
    and named by the class annotation context logged once on ``camera`` (class id -> name,
    colour; the UNLABELED id transparent);
  * ``camera/detections``: one box per track (``rr.Boxes2D``, x0 y0 x1 y1) with its class id and
    the label "#track_id class";
  * ``camera/prompts``: the prompted objects' masks (object id per pixel), when given;
  * ``timings/<stage>``: each stage's milliseconds (``rr.Scalars``), and ``fps`` (from the
    second frame on).

A ``PromptTrackResult`` (``task="prompt"``) logs the frame, ``camera/prompts`` and the
timings. A view never closed is closed when garbage-collected or at interpreter exit, with a
``ResourceWarning`` and a logged WARNING (``_closing``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .. import ops
from ..apps.writers import check_written
from ..errors import ConfigError, InputError, OutputError, OutputExistsError
from ..runtime.results import PanopticResult, PromptTrackResult, TrackResult
from ._closing import finish_unclosed, track, untrack
from ._optional import require
from .messages import (
    MONO8_UNLABELED,
    MONO16_UNLABELED,
    check_fps,
    detections,
    prompt_masks,
    semantic_labels,
)
from .outputs import FpsMeter, OutputInfo, check_output_file, split_result

__all__ = [
    "ENTITIES",
    "RRD_SUFFIXES",
    "VIEWER_SCHEMES",
    "RerunView",
    "check_display",
    "check_viewer_url",
]

RRD_SUFFIXES = frozenset({".rrd"})
#: the URL schemes Rerun's ``connect_grpc`` takes (path ``/proxy``)
VIEWER_SCHEMES = ("rerun", "rerun+http", "rerun+https")
_MAX_URL = 2048


def check_display() -> None:
    """On Linux, a spawned viewer needs a display: ``DISPLAY`` or ``WAYLAND_DISPLAY``.

    Raises:
      ConfigError: neither is set (a headless robot or server)."""
    names = ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET")
    if sys.platform.startswith("linux") and not any(os.environ.get(n) for n in names):
        raise ConfigError(
            "cannot spawn the Rerun viewer: no display (DISPLAY / WAYLAND_DISPLAY unset)",
            hint="log to a file (--view FILE.rrd, save=...) or to a viewer running elsewhere "
            "(--view rerun+http://HOST:9876/proxy, connect=...)",
        )


def check_viewer_url(url: Any) -> str:
    """A Rerun viewer URL ``rerun[+http|+https]://HOST[:PORT]/proxy``, checked before Rerun
    sees it; messages show it with credentials masked (``runtime.net_sources.mask``).

    Raises:
      ConfigError: not a string, too long, a control character, another scheme or path, no
        host, a bad port, credentials (``user:password@``: Rerun has none to send), a query
        or fragment."""
    from urllib.parse import urlsplit

    from ..runtime.net_sources import mask

    hint = "give the viewer's URL as rerun+http://HOST:PORT/proxy (default port 9876)"
    if not isinstance(url, str):
        raise ConfigError(f"the viewer URL must be a string, got {type(url).__name__}", hint=hint)
    if len(url) > _MAX_URL or not url.isprintable():  # not echoed: it may not be a URL at all
        raise ConfigError(
            f"a viewer URL of {len(url)} characters refused: longer than {_MAX_URL} or "
            "holds a control character",
            hint=hint,
        )
    shown = mask(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port, parts = -1, None
    if parts is None or port == -1 or port == 0:
        raise ConfigError(f"viewer URL {shown!r} refused: malformed host or port", hint=hint)
    why = None
    if parts.scheme.lower() not in VIEWER_SCHEMES:
        why = f"the scheme {parts.scheme!r} is not one of {', '.join(VIEWER_SCHEMES)}"
    elif "@" in parts.netloc:
        why = "credentials in the URL (a Rerun viewer takes none)"
    elif not parts.hostname:
        why = "no host"
    elif parts.path != "/proxy" or parts.query or parts.fragment:
        why = "the path must be /proxy, with no query or fragment"
    if why is not None:
        raise ConfigError(f"viewer URL {shown!r} refused: {why}", hint=hint)
    return url


#: what the view logs, by entity path
ENTITIES = {
    "camera": "the class annotation context (static)",
    "camera/image": "the frame",
    "camera/segmentation": "class id per pixel (as semantic/labels)",
    "camera/detections": "boxes with class ids and '#track_id class' labels",
    "camera/prompts": "prompted object id per pixel",
    "timings": "one scalar series per stage (ms), and fps",
}


class RerunView:
    """Logs each frame's results to Rerun: a viewer it starts (``spawn``), one it connects to
    (``connect``), or an ``.rrd`` file (``save``)."""

    def __init__(
        self,
        info: OutputInfo,
        *,
        save: str | Path | None = None,
        spawn: bool = False,
        connect: str | None = None,
        overwrite: bool = False,
        application_id: str = "rapsam_edge",
        recording_id: str | None = None,
    ) -> None:
        """
        Arguments:
          info: class names and colour order (``OutputInfo.of(seg)``).
          save: write an ``.rrd`` file (written beside it, renamed at ``close``).
          spawn: start the Rerun viewer and stream to it.
          connect: stream to a running viewer at this gRPC URL
            (``rerun+http://127.0.0.1:9876/proxy``; ``check_viewer_url``).
          overwrite: replace an existing ``save`` file.
        Raises:
          ConfigError: not exactly one of save / spawn / connect; a bad ``connect`` URL, or
            one Rerun refuses (the message shows it with credentials masked); ``spawn``
            without a display (Linux: no DISPLAY / WAYLAND_DISPLAY).
          InputError: more than 65535 classes.
          OutputError / OutputExistsError: as for the MCAP recorder.
          MissingDependencyError: rerun-sdk is not installed.
        """
        if len(info.class_names) > MONO16_UNLABELED:
            raise InputError(
                f"{len(info.class_names)} classes: Rerun class ids are uint16 (< 65535)"
            )
        if not isinstance(spawn, bool) or not isinstance(overwrite, bool):
            raise ConfigError(
                f"spawn and overwrite must be True or False, got {spawn!r}, {overwrite!r}"
            )
        if sum((save is not None, spawn, connect is not None)) != 1:
            raise ConfigError(
                "RerunView needs exactly one of save=PATH, spawn=True, connect=URL",
                hint="--view opens a viewer; --view FILE.rrd writes a file",
            )
        self.info = info
        self.path: Path | None = None
        self._tmp: Path | None = None
        if save is not None:
            self.path = check_output_file(save, "the Rerun recording", RRD_SUFFIXES, overwrite)
            self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.partial")
        if connect is not None:
            check_viewer_url(connect)
        self.overwrite = overwrite
        self._rr: Any = require("rerun")
        self._rec: Any = self._rr.RecordingStream(application_id, recording_id=recording_id)
        self._open = True
        self._fps = FpsMeter()
        self.frames = 0
        try:
            if self._tmp is not None:
                self._rec.save(str(self._tmp))
            elif spawn:
                check_display()
                self._rec.spawn()
            else:
                self._connect(connect)
            self._rec.log("camera", self.annotation_context(), static=True)
        except BaseException:
            self._open = False  # nothing half-made stays behind
            self._rec.disconnect()
            self._drop()
            raise
        track(self)

    def _connect(self, url: Any) -> None:
        from ..runtime.net_sources import mask

        try:
            self._rec.connect_grpc(url)
        except (RuntimeError, ValueError) as e:  # rerun's text holds the URL: not shown
            raise ConfigError(
                f"Rerun refused the viewer URL {mask(url)!r} ({type(e).__name__})",
                hint="give the viewer's URL as rerun+http://HOST:PORT/proxy",
            ) from None

    @classmethod
    def for_segmenter(cls, seg: Any, **kwargs: Any) -> RerunView:
        """``RerunView(OutputInfo.of(seg), **kwargs)``."""
        return cls(OutputInfo.of(seg), **kwargs)

    def annotation_context(self) -> Any:
        """``rr.AnnotationContext``: class id -> (name, colour); both UNLABELED ids
        transparent."""
        rr = self._rr
        ids = np.arange(len(self.info.class_names))
        # the overlay's colour of label k + 1 (full strength, no boundary): the ops palette
        row = (ids + 1).astype(np.int32)[None]
        colours = ops.overlay(np.zeros((1, ids.size, 3), np.uint8), row, 1.0, False)[0]
        infos = [
            rr.AnnotationInfo(id=int(i), label=name, color=tuple(int(c) for c in colour))
            for i, name, colour in zip(ids, self.info.class_names, colours)
        ]
        infos += [
            rr.AnnotationInfo(id=void, label="unlabeled", color=(0, 0, 0, 0))
            for void in (MONO8_UNLABELED, MONO16_UNLABELED)
            if void >= len(self.info.class_names)
        ]
        return rr.AnnotationContext(infos)

    def log(
        self,
        frame: np.ndarray,
        result: PanopticResult | TrackResult | PromptTrackResult,
        *,
        stamp_ns: int | None = None,
        prompts: PromptTrackResult | None = None,
        fps: float | None = None,
    ) -> None:
        """Log one frame and its result at ``frame`` = the number of frames logged so far.

        Arguments:
          frame, result: a ``Segmenter.stream`` pair (a ``PromptTrackResult`` logs the frame,
            ``camera/prompts`` and the timings).
          prompts: the prompt tracker's result (default: ``result.prompts``).
          fps: the rate to log (default: measured between calls; none on the first frame).
        Raises:
          InputError: a result that is not a stream result, a frame of another size, a bad
            fps, a malformed result (``messages``' checks); nothing is logged then.
          OutputError: closed."""
        if not self._open:
            raise OutputError("the Rerun view is closed")
        rr, rec = self._rr, self._rec
        scene, prompts = split_result(result, prompts)
        fps = check_fps(fps)
        labels, dets = None, None
        if scene is not None:
            labels, _ = semantic_labels(scene)
            dets, _ = detections({"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""}, scene)
        hw = tuple(prompts.frame_hw) if labels is None else labels.shape  # type: ignore[union-attr]
        if np.asarray(frame).shape[:2] != hw:
            raise InputError(f"frame {np.shape(frame)} does not match the maps {hw}")
        masks = None if prompts is None else prompt_masks(prompts)
        if masks is not None and masks.shape != hw:
            raise InputError(f"prompt result {masks.shape} does not match the maps {hw}")
        timings = (scene if scene is not None else prompts).timings  # type: ignore[union-attr]
        measured = self._fps.tick()
        rec.set_time("frame", sequence=self.frames)
        if stamp_ns is not None:
            rec.set_time("stamp", timestamp=np.datetime64(int(stamp_ns), "ns"))
        rec.log("camera/image", rr.Image(frame, color_model=self.info.color_order))
        if labels is not None and dets is not None:
            rec.log("camera/segmentation", rr.SegmentationImage(labels))
            rec.log("camera/detections", self._boxes(dets["detections"]))
        if masks is not None:
            rec.log("camera/prompts", rr.SegmentationImage(masks))
        for stage, ms in timings.items():
            rec.log(f"timings/{stage}", rr.Scalars(float(ms)))
        rate = measured if fps is None else fps
        if rate is not None:
            rec.log("timings/fps", rr.Scalars(float(rate)))
        self.frames += 1

    def write(self, frame: np.ndarray, result: Any, **kwargs: Any) -> None:
        """``log`` (the name a ``process_stream`` sink has)."""
        self.log(frame, result, **kwargs)

    def _boxes(self, dets: list[dict[str, Any]]) -> Any:
        names = self.info.class_names
        xyxy, classes, labels = [], [], []
        for d in dets:
            b = d["bbox"]
            cx, cy = b["center"]["position"]["x"], b["center"]["position"]["y"]
            hx, hy = b["size_x"] / 2, b["size_y"] / 2
            xyxy.append((cx - hx, cy - hy, cx + hx, cy + hy))
            cls = int(d["results"][0]["hypothesis"]["class_id"])
            classes.append(cls)
            labels.append(f"#{d['id']} {names[cls]}")
        return self._rr.Boxes2D(
            array=np.array(xyxy, np.float32).reshape(-1, 4),
            array_format=self._rr.Box2DFormat.XYXY,
            class_ids=np.array(classes, np.uint16),
            labels=labels,
        )

    def close(self) -> Path | None:
        """Flush and disconnect; a saved file is moved to its path and checked.

        Returns:
          the ``.rrd`` path, or None for a live view.
        Raises:
          OutputError: the file cannot be finished or moved, or a live viewer could not be
            reached (the frames were not delivered)."""
        untrack(self)
        if not self._open:
            return self.path
        self._open = False
        try:
            self._rec.flush()
        except RuntimeError as e:  # a live viewer gone or never reached (a file: below)
            self._rec.disconnect()
            self._drop()
            if self.path is not None:
                raise OutputError(f"cannot write the Rerun recording {str(self.path)!r}") from e
            raise OutputError(
                "the Rerun viewer could not be reached: the frames logged were not delivered",
                hint="start the viewer first (rerun), or log to a file with --view FILE.rrd",
            ) from None  # rerun's text holds the URL
        self._rec.disconnect()
        if self.path is None or self._tmp is None:
            return None
        if self.path.exists() and not self.overwrite:
            self._drop()
            raise OutputExistsError(f"the Rerun recording {str(self.path)!r} appeared meanwhile")
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:
            self._drop()
            raise OutputError(f"cannot write the Rerun recording {str(self.path)!r}: {e}") from e
        return check_written(self.path, "the Rerun recording")

    def abort(self) -> None:
        """Stop logging and drop a saved file (nothing appears at its path)."""
        untrack(self)
        if self._open:
            self._open = False
            self._rec.disconnect()
        self._drop()

    def _finish_unclosed(self, why: str) -> None:
        if getattr(self, "_open", False):
            finish_unclosed(
                self, "the Rerun view" + (f" {str(self.path)!r}" if self.path else ""), why
            )

    def __del__(self) -> None:
        self._finish_unclosed("it was garbage-collected")

    def _drop(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

    def __enter__(self) -> RerunView:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
