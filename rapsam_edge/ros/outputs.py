"""All ROS 2 outputs of one frame: ``frame_messages(header, frame, result, info)`` -> topic
-> message dict (``messages`` builds each; ``topics.TOPICS`` names them). The node publishes
them and the MCAP recorder writes them, so both carry the same messages on the same topics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..contract.shared import SCORE_THRESHOLD
from ..errors import InputError
from ..runtime.results import PanopticResult, PromptTrackResult, TrackResult
from .messages import (
    Msg,
    check_header,
    detections,
    diagnostics,
    image_msg,
    label_info,
    panoptic_layers,
    prompt_masks,
)
from .topics import TOPICS

__all__ = ["FpsMeter", "OutputInfo", "frame_messages", "label_info_message"]


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


def frame_messages(
    header: Mapping[str, Any],
    frame: np.ndarray,
    result: PanopticResult | TrackResult,
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
      prompts: the prompt tracker's result on this frame (``prompts/masks``), if any.
      overlay: draw ``debug/overlay`` (the costliest output).
    Raises:
      InputError: a frame or prompt result of another size than the result's maps, or a
        malformed result (see the builders)."""
    from ..apps.draw import draw_panoptic, draw_prompt_tracks, draw_tracks

    pan = result.panoptic if isinstance(result, TrackResult) else result
    hw = pan.panoptic_map.shape
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape != (*hw, 3):
        raise InputError(
            f"frame {frame.dtype} {frame.shape} does not match the result's {hw} maps "
            "(an H x W x 3 uint8 frame)"
        )
    hdr = check_header(header)
    labels, label_enc, confidence = panoptic_layers(result)
    dets, id_image = detections(hdr, result)
    out = {
        "panoptic/segments": image_msg(hdr, pan.panoptic_map.astype(np.int32), "32SC1"),
        "semantic/labels": image_msg(hdr, labels, label_enc),
        "semantic/confidence": image_msg(hdr, confidence, "32FC1"),
        "detections": dets,
        "detections/ids": image_msg(hdr, id_image, "32SC1"),
        "diagnostics": diagnostics(
            hdr, result.timings, fps=fps, backend=info.backend, bundle=info.bundle
        ),
    }
    if prompts is not None:
        if tuple(prompts.frame_hw) != tuple(hw):
            raise InputError(f"prompt result {prompts.frame_hw} does not match the maps {hw}")
        out["prompts/masks"] = image_msg(hdr, prompt_masks(prompts), "32SC1")
    if overlay:
        if isinstance(result, TrackResult):
            drawn = draw_tracks(frame, result, info.class_names)
        else:
            drawn = draw_panoptic(frame, result)
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
