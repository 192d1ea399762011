"""What the ROS 2 node does, without rclpy: message dicts in, message dicts out. The node
(``node.py``) only moves messages between rclpy and this class, so the tests drive it with
messages decoded by rosbags and need no ROS installation.

    core = NodeCore(NodeParams.from_yaml("config/rapsam_edge.yaml"))
    core.label_info()                       # -> the latched label_info message
    core.on_boxes(detection_array)          # prompts/boxes: one object per detection
    core.on_point(point_stamped)            # prompts/point: one object per click
    outs = core.on_image(image)             # -> {topic: message} for every output topic

Prompts apply to the frame processed last (a prompt before any frame is refused with a
warning). A frame of another size than the last one (a camera switching resolution) resets
the trackers, with one warning, instead of failing every later frame.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError
from ..runtime.results import PromptTrackResult
from .messages import Msg, check_header, frame_from_image, make_header
from .outputs import FpsMeter, OutputInfo, frame_messages, label_info_message
from .params import NodeParams

__all__ = ["NodeCore", "boxes_of", "point_of"]

log = logging.getLogger(__name__)


def boxes_of(msg: Mapping[str, Any]) -> np.ndarray:
    """P x 4 (x0, y0, x1, y1) pixels of a ``vision_msgs/Detection2DArray`` dict (each
    detection's bbox: center +- size / 2; theta must be 0).

    Raises:
      InputError: a rotated box, a negative or non-finite size."""
    out = []
    for i, det in enumerate(msg["detections"]):
        box = det["bbox"]
        cx, cy = float(box["center"]["position"]["x"]), float(box["center"]["position"]["y"])
        sx, sy = float(box["size_x"]), float(box["size_y"])
        if float(box["center"]["theta"]) != 0.0:
            raise InputError(f"prompt box {i} is rotated (theta={box['center']['theta']})")
        if not (np.isfinite([cx, cy, sx, sy]).all() and sx > 0 and sy > 0):
            raise InputError(f"prompt box {i} has center ({cx}, {cy}), size ({sx}, {sy})")
        out.append((cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2))
    return np.array(out, np.float64).reshape(-1, 4)


def point_of(msg: Mapping[str, Any]) -> tuple[float, float]:
    """(x, y) pixels of a ``geometry_msgs/PointStamped`` dict (z ignored)."""
    x, y = float(msg["point"]["x"]), float(msg["point"]["y"])
    if not np.isfinite([x, y]).all():
        raise InputError(f"click ({x}, {y}) is not finite")
    return x, y


class NodeCore:
    """The node's state: the Segmenter, the stream's tracker, the prompt tracker."""

    def __init__(self, params: NodeParams, segmenter: Any = None) -> None:
        """
        Arguments:
          params: the node's parameters.
          segmenter: a ready ``Segmenter`` (default: made from ``params``).
        """
        if segmenter is None:
            from ..runtime.segmenter import Segmenter

            segmenter = Segmenter(params.bundle, **params.segmenter_kwargs())
        self.params = params
        self.seg = segmenter
        self.info = OutputInfo.of(segmenter)
        self.prompt_tracker = (
            segmenter.prompt_tracker(params.prompt_tracker_config()) if params.prompts else None
        )
        self._new_step()
        self.fps = FpsMeter()
        self.frames = 0
        self._frame_hw: tuple[int, int] | None = None
        self._has_frame = False

    def _new_step(self) -> None:
        """A fresh video tracker, and the per-frame work of ``Segmenter.stream``: one encoder
        pass serves the panoptic / track result and the prompt tracker (which steps every
        frame, objects or not, so that prompts apply to the frame processed last)."""
        from ..runtime.streaming import FrameStep

        task = self.params.task
        self.tracker = self.seg.new_tracker()
        self._step = FrameStep(
            self.seg,
            task=task,
            tracker=self.tracker if task == "track" else None,
            prompt_tracker=self.prompt_tracker,
        )

    def label_info(self, header: Mapping[str, Any] | None = None) -> Msg:
        """The ``label_info`` message (the node latches it at start)."""
        return label_info_message(make_header(0, "") if header is None else header, self.info)

    def on_image(self, msg: Mapping[str, Any]) -> dict[str, Msg]:
        """One ``image`` message -> every output, each carrying its header.

        Raises:
          InputError: an encoding other than rgb8 / bgr8, or malformed pixels / header."""
        header = check_header(msg["header"])
        frame = frame_from_image(msg, self.seg.color_order)
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        if self._frame_hw is not None and hw != self._frame_hw:
            log.warning(
                "frame size changed from %s to %s: tracks and prompted objects reset",
                self._frame_hw,
                hw,
            )
            self.reset()
        self._frame_hw = hw
        result = self._step(frame)  # one encoder pass (prompts: result.prompts)
        #: the last frame's TrackResult / PanopticResult (what the messages were made of)
        self.result = result
        assert not isinstance(result, PromptTrackResult)  # params.task: track or panoptic
        if result.prompts is not None and not result.prompts.objects:
            result.prompts = None  # nothing tracked yet: no prompts/masks message
        prompts = result.prompts
        self._has_frame = True
        self.frames += 1
        return frame_messages(
            header,
            frame,
            result,
            self.info,
            fps=self.fps.tick(),
            overlay=self.params.overlay,
            prompts=prompts,
        )

    def _prompt_frame(self) -> None:
        """The frame prompts apply to: None, the one the prompt tracker stepped last.

        Raises:
          InputError: prompts are off, or no image came yet."""
        if self.prompt_tracker is None:
            raise InputError("prompts are off (parameter prompts: false)")
        if not self._has_frame:
            raise InputError("a prompt came before any image: it needs a frame")

    def on_boxes(self, msg: Mapping[str, Any]) -> list[int]:
        """``prompts/boxes``: start tracking one object per detection box; -> their ids."""
        boxes = boxes_of(msg)
        if len(boxes) == 0:
            return []
        self._prompt_frame()
        assert self.prompt_tracker is not None
        return list(self.prompt_tracker.add(None, boxes=boxes))

    def on_point(self, msg: Mapping[str, Any]) -> list[int]:
        """``prompts/point``: start tracking the object under a click; -> its id."""
        x, y = point_of(msg)
        self._prompt_frame()
        assert self.prompt_tracker is not None
        return list(self.prompt_tracker.add(None, points=[[x, y]], labels=[1]))

    def reset(self) -> None:
        """Forget tracks and prompted objects (a new scene, a new frame size)."""
        if self.prompt_tracker is not None:
            self.prompt_tracker.reset()
        self._new_step()
        self._has_frame = False
