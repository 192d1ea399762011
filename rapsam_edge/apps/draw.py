"""Annotated images for people: colour overlays from the C++ core plus text labels."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .. import ops
from ..runtime.results import PanopticResult, PromptResult, TrackResult


def _label(image: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def _centres(labels: np.ndarray, ids: Sequence[int]) -> list[tuple[int, int]]:
    if not len(ids):
        return []
    boxes = ops.masks_to_boxes(np.ascontiguousarray(labels[None] == np.asarray(ids)[:, None, None]))
    return [((x0 + x1) // 2, (y0 + y1) // 2) for x0, y0, x1, y1 in boxes.tolist()]


def draw_panoptic(image: np.ndarray, result: PanopticResult) -> np.ndarray:
    out = ops.overlay(np.ascontiguousarray(image), result.panoptic_map)
    segs = result.segments
    for seg, (x, y) in zip(segs, _centres(result.panoptic_map, segs["id"].tolist())):
        _label(out, f"{result.class_names[seg['class']]} {seg['score']:.2f}", x - 20, y)
    return out


def draw_tracks(image: np.ndarray, result: TrackResult, class_names: Sequence[str]) -> np.ndarray:
    out = ops.overlay(np.ascontiguousarray(image), result.track_map)
    for tid, cls, (x, y) in zip(
        result.track_ids.tolist(),
        result.track_classes.tolist(),
        _centres(result.track_map, result.track_ids.tolist()),
    ):
        _label(out, f"#{tid} {class_names[cls]}", x - 20, y)
    _label(out, f"frame {result.frame_index}", 5, 15)
    return out


def draw_prompts(image: np.ndarray, result: PromptResult, points=(), boxes=()) -> np.ndarray:
    labels = np.zeros(image.shape[:2], dtype=np.int32)
    for i, mask in enumerate(result.masks):
        labels[mask] = i + 1
    out = ops.overlay(np.ascontiguousarray(image), labels)
    for x, y in points:
        cv2.circle(out, (int(x), int(y)), 4, (0, 0, 255), -1)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), (0, 0, 255), 1)
    for i, iou in enumerate(result.iou.tolist()):
        _label(out, f"prompt {i + 1}: iou {iou:.2f}", 5, 15 + 16 * i)
    return out
