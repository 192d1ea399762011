"""All ROS 2 outputs of one frame: ``frame_messages(header, frame, result, info)`` -> topic
-> message dict (``messages`` builds each; ``topics.TOPICS`` names them). The node publishes
them and the MCAP recorder writes them, so both carry the same messages on the same topics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..contract.shared import SCORE_THRESHOLD
from ..errors import InputError, OutputError, OutputExistsError
from ..runtime.results import PanopticResult, PromptTrackResult, TrackResult
from .messages import (
    Msg,
    check_fps,
    check_header,
    detections,
    diagnostics,
    image_msg,
    label_info,
    panoptic_layers,
    prompt_masks,
)
from .topics import TOPICS

__all__ = [
    "FpsMeter",
    "OutputInfo",
    "check_fps",
    "check_output_file",
    "frame_messages",
    "label_info_message",
    "split_result",
]

#: what ``Recorder.write`` / ``RerunView.log`` take as a frame's result
RESULT_TYPES = (PanopticResult, TrackResult, PromptTrackResult)


# ------------------------------------------------------------------------- files
def check_output_file(
    path: str | Path, what: str, suffixes: frozenset[str], overwrite: bool = False
) -> Path:
    """A recording's path, checked before any work: ``apps.writers.check_output``'s rules
    (a regular file or a new one, one of ``suffixes``), and its folder must exist: a file
    named on its own is not a folder to make (a typo would make a tree of folders).

    Raises:
      OutputError: a bad path (above), or a folder that does not exist or is not one.
      OutputExistsError: the file exists and ``overwrite`` is False."""
    from ..apps.writers import check_output

    if not isinstance(path, (str, Path)):
        raise OutputError(f"{what}: expected a path, got {type(path).__name__}")
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        state = "does not exist" if not parent.exists() else "is not a folder"
        raise OutputError(
            f"cannot write {what} {str(path)!r}: its folder {str(parent)!r} {state}",
            hint="make the folder first, or give a path in an existing one",
        )
    path = check_output(path, what, suffixes)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{what} {str(path)!r} exists",
            hint="pass overwrite=True (--overwrite) or another file name",
        )
    return path


# ------------------------------------------------------------------------- one frame
@dataclass(frozen=True)
class OutputInfo:
    """What the messages need besides a frame's result: the class names, the frames' colour
    order, the score threshold (``label_info``), backend and bundle names (diagnostics)."""

    class_names: tuple[str, ...]
    color_order: str = "RGB"
    score_threshold: float = SCORE_THRESHOLD
    backend: str = ""
    bundle: str = ""

    @classmethod
    def of(cls, seg: Any) -> OutputInfo:
        """From a ``Segmenter``."""
        return cls(
            tuple(seg.class_names),
            seg.color_order,
            float(seg.postprocess.score_threshold),
            str(seg.backend_name),
            str(seg.bundle.name),
        )


def split_result(
    result: Any, prompts: Any = None
) -> tuple[PanopticResult | TrackResult | None, PromptTrackResult | None]:
    """A ``stream()`` result -> (its panoptic / track part, its prompt tracker part).

    A ``PromptTrackResult`` (``task="prompt"``) has no panoptic part; a track / panoptic
    result of a stream given prompts carries them in ``result.prompts``, used unless
    ``prompts`` is passed.

    Raises:
      InputError: a result of another type (None included), or ``prompts`` that is not a
        ``PromptTrackResult``, or ``prompts`` beside a ``PromptTrackResult``."""
    if not isinstance(result, RESULT_TYPES):
        raise InputError(
            f"result must be a PanopticResult, TrackResult or PromptTrackResult (a "
            f"Segmenter.stream pair), got {type(result).__name__}"
        )
    if prompts is not None and not isinstance(prompts, PromptTrackResult):
        raise InputError(f"prompts must be a PromptTrackResult, got {type(prompts).__name__}")
    if isinstance(result, PromptTrackResult):
        if prompts is not None:
            raise InputError("prompts= is for a track / panoptic result, not a PromptTrackResult")
        return None, result
    return result, result.prompts if prompts is None else prompts


def _check_frame(frame: Any, hw: tuple[int, ...]) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape != (*hw, 3):
        raise InputError(
            f"frame {frame.dtype} {frame.shape} does not match the result's {hw} maps "
            "(an H x W x 3 uint8 frame)"
        )
    return frame


def frame_messages(
    header: Mapping[str, Any],
    frame: np.ndarray,
    result: PanopticResult | TrackResult | PromptTrackResult,
    info: OutputInfo,
    *,
    fps: float | None = None,
    overlay: bool = True,
    prompts: PromptTrackResult | None = None,
) -> dict[str, Msg]:
    """Every per-frame output (all "out" topics of ``TOPICS`` but ``label_info``) for one
    frame and its result, each carrying ``header``.

    Arguments:
      frame: the H x W x 3 uint8 frame in ``info.color_order`` (for the overlay).
      result: a ``stream()`` result. A ``PromptTrackResult`` (``task="prompt"``: no
        panoptic decoder ran) gives the prompt topics only: ``prompts/masks``,
        ``debug/overlay`` and ``diagnostics``.
      prompts: the prompt tracker's result on this frame (``prompts/masks``); default:
        ``result.prompts`` (a stream given prompts), else none.
      fps: the rate to report (None: no "fps" value, e.g. on the first frame).
      overlay: draw ``debug/overlay`` (the costliest output).
    Raises:
      InputError: a result that is not a stream result, a frame or prompt result of another
        size than the result's maps, a bad fps, or a malformed result (see the builders)."""
    from ..apps.draw import draw_panoptic, draw_prompt_tracks, draw_tracks

    scene, prompts = split_result(result, prompts)
    fps = check_fps(fps)
    hdr = check_header(header)
    out: dict[str, Msg] = {}
    if scene is not None:
        pan = scene.panoptic if isinstance(scene, TrackResult) else scene
        hw: tuple[int, ...] = pan.panoptic_map.shape
        frame = _check_frame(frame, hw)
        labels, label_enc, confidence = panoptic_layers(scene)
        dets, id_image = detections(hdr, scene)
        out = {
            "panoptic/segments": image_msg(hdr, pan.panoptic_map.astype(np.int32), "32SC1"),
            "semantic/labels": image_msg(hdr, labels, label_enc),
            "semantic/confidence": image_msg(hdr, confidence, "32FC1"),
            "detections": dets,
            "detections/ids": image_msg(hdr, id_image, "32SC1"),
        }
    else:
        assert prompts is not None
        hw = tuple(prompts.frame_hw)
        frame = _check_frame(frame, hw)
    timings = (scene if scene is not None else prompts).timings  # type: ignore[union-attr]
    out["diagnostics"] = diagnostics(
        hdr, timings, fps=fps, backend=info.backend, bundle=info.bundle
    )
    if prompts is not None:
        if tuple(prompts.frame_hw) != tuple(hw):
            raise InputError(f"prompt result {prompts.frame_hw} does not match the maps {hw}")
        out["prompts/masks"] = image_msg(hdr, prompt_masks(prompts), "32SC1")
    if overlay:
        if isinstance(scene, TrackResult):
            drawn = draw_tracks(frame, scene, info.class_names)
        elif scene is not None:
            drawn = draw_panoptic(frame, scene)
        else:
            drawn = frame
        if prompts is not None:
            drawn = draw_prompt_tracks(drawn, prompts)
        out["debug/overlay"] = image_msg(hdr, drawn, f"{info.color_order.lower()}8")
    assert set(out) <= {t for t, v in TOPICS.items() if v.direction == "out"}
    return out


def label_info_message(header: Mapping[str, Any], info: OutputInfo) -> Msg:
    """The ``label_info`` message (sent once, latched) for ``info``'s classes."""
    return label_info(header, info.class_names, info.score_threshold)


class FpsMeter:
    """Frames per second from the wall-clock gaps between ``tick()`` calls, smoothed (an
    exponential mean of the gap, weight ``alpha`` for the newest); None before the second
    tick."""

    def __init__(self, alpha: float = 0.1) -> None:
        if not 0.0 < alpha <= 1.0:
            raise InputError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._last: float | None = None
        self._gap: float | None = None

    def tick(self, now: float | None = None) -> float | None:
        """Count one frame (at ``now`` seconds, default ``time.monotonic()``); -> the fps."""
        now = time.monotonic() if now is None else now
        if self._last is not None:
            gap = max(now - self._last, 1e-9)
            self._gap = gap if self._gap is None else self._gap + self.alpha * (gap - self._gap)
        self._last = now
        return None if self._gap is None else 1.0 / self._gap
