"""The parts of ``rapsam-edge demo`` (``commands.demo``): what to prompt on, where to click,
and the timed panoptic and prompt passes.

Clicks land inside objects: on the pixel of an object's mask farthest from its boundary
(``draw.interior_point``), for the thing segments the model found or, when it named none
(the shipped model names no thing class), for the blobs of the frame that no segment claims:
the objects it could not name."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..errors import SourceError
from .draw import interior_point
from .timing import StageTimes

if TYPE_CHECKING:
    from ..runtime.results import ImageEmbedding, PanopticResult, PromptResult
    from ..runtime.segmenter import Segmenter

#: most clicks the demo makes (plus one box)
MAX_CLICKS = 3
#: pixels added around an object's bounding box for the box prompt
BOX_MARGIN = 4
#: pixels an unclaimed region's interior point must lie from its boundary to count as an
#: object (thinner ones are slivers between segments)
MIN_OBJECT_DEPTH = 5.0


@dataclass(frozen=True)
class Target:
    """An object to prompt: ``name`` for people, ``mask`` H x W bool."""

    name: str
    mask: np.ndarray


def first_frame(source: str) -> np.ndarray:
    if not Path(source).exists():
        raise SourceError(f"video source {source!r} does not exist")
    cap = cv2.VideoCapture(source)
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    cap.release()
    if not ok or frame is None:
        raise SourceError(f"cannot read a frame from {source!r} (not a video file?)")
    return np.asarray(frame)


def _by_area(targets: list[Target]) -> list[Target]:
    return sorted(targets, key=lambda t: -int(t.mask.sum()))


def unclaimed_objects(panoptic_map: np.ndarray) -> list[np.ndarray]:
    """The blobs of a frame that no segment claims (id 0), largest first: where the model
    found objects it could not name. Slivers between segments (interior point closer than
    ``MIN_OBJECT_DEPTH`` pixels to the boundary) are left out.

    Arguments:
      panoptic_map: H x W int32 segment ids (0 = void).
    Returns:
      H x W bool masks, one per blob.
    """
    void = np.pad((panoptic_map == 0).astype(np.uint8), 1)  # frame edges are boundary
    depth = cv2.distanceTransform(void, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    n, labels = cv2.connectedComponents(void[1:-1, 1:-1], connectivity=8)
    deepest = np.zeros(n, np.float32)
    np.maximum.at(deepest, np.asarray(labels, np.intp).ravel(), depth.ravel())
    blobs = [labels == i for i in range(1, n) if deepest[i] >= MIN_OBJECT_DEPTH]
    return sorted(blobs, key=lambda m: -int(m.sum()))


def choose_targets(pan: PanopticResult) -> tuple[list[Target], str]:
    """What the demo prompts on, largest first, and where the targets come from: the thing
    segments the model found; else the blobs no segment claims (``unclaimed_objects``); else
    the (stuff) segments.

    Arguments:
      pan: the frame's ``PanopticResult``.
    Returns:
      (targets, a phrase naming their origin); targets may be [] (nothing found).
    """
    segs = pan.segments
    found = [
        Target(f"{pan.class_names[s['class']]} (segment {s['id']})", pan.panoptic_map == s["id"])
        for s in segs
        if s["is_thing"]
    ]
    if found:
        return _by_area(found), "thing segments the model found"
    blobs = unclaimed_objects(pan.panoptic_map)
    if blobs:
        targets = [Target(f"unnamed object {i + 1}", m) for i, m in enumerate(blobs)]
        return targets, (
            "the objects the model found but could not name (blobs no segment claims; it "
            "named no thing in this frame)"
        )
    stuff = [
        Target(f"{pan.class_names[s['class']]} (segment {s['id']})", pan.panoptic_map == s["id"])
        for s in segs
    ]
    return _by_area(stuff), "segments the model found (it named no thing in this frame)"


def plan_prompts(
    targets: list[Target], frame_hw: tuple[int, int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int, int, int]], list[str]]:
    """Clicks and one box on the targets: the box frames the largest target, the clicks land
    on the others (up to ``MAX_CLICKS``; on the largest too when it is the only one), each on
    its mask's interior point.

    Arguments:
      targets: from ``choose_targets``, largest first (may be []: then the frame's centre
        and its middle half are used).
      frame_hw: (H, W) pixels.
    Returns:
      (points [(x, y)], boxes [(x0, y0, x1, y1)] exclusive max, one name per prompt: points
      first), pixels.
    """
    h, w = frame_hw
    if not targets:
        return [(w // 2, h // 2)], [(w // 4, h // 4, 3 * w // 4, 3 * h // 4)], ["centre", "middle"]
    clicked = targets[1 : 1 + MAX_CLICKS] or targets[:1]
    points = [interior_point(t.mask) for t in clicked]
    ys, xs = np.nonzero(targets[0].mask)
    box = (
        max(int(xs.min()) - BOX_MARGIN, 0),
        max(int(ys.min()) - BOX_MARGIN, 0),
        min(int(xs.max()) + 1 + BOX_MARGIN, w),
        min(int(ys.max()) + 1 + BOX_MARGIN, h),
    )
    return points, [box], [t.name for t in clicked] + [targets[0].name]


def track_click(targets: list[Target], frame_hw: tuple[int, int]) -> tuple[tuple[int, int], str]:
    """The click that starts the demo's click-to-track: the interior point of the largest
    target (on the sample clip the ring, which moves and grows through the clip), or the
    frame's centre when there is none.

    Returns:
      ((x, y) pixels, the target's name)."""
    if not targets:
        return (frame_hw[1] // 2, frame_hw[0] // 2), "the frame's centre"
    return interior_point(targets[0].mask), targets[0].name


def time_panoptic(
    seg: Segmenter, frame: np.ndarray, repeats: int
) -> tuple[PanopticResult, StageTimes]:
    """``repeats`` timed panoptic passes over ``frame`` (at least one).

    Returns:
      (the last ``PanopticResult``, ``StageTimes`` per stage plus "total", ms)."""
    times = StageTimes()

    def timed() -> PanopticResult:
        t0 = time.perf_counter()
        pan = seg.panoptic(frame)
        times.add({**pan.timings, "total": (time.perf_counter() - t0) * 1e3})
        return pan

    pan = timed()
    for _ in range(repeats - 1):
        pan = timed()
    return pan, times


def time_prompts(
    seg: Segmenter,
    frame: np.ndarray,
    points: list[tuple[int, int]],
    boxes: list[tuple[int, int, int, int]],
    repeats: int,
) -> tuple[PromptResult, StageTimes]:
    """``repeats`` timed ``set_image`` + one-click ``prompt`` pairs (at least one), then one
    prompt call with every point and box.

    Returns:
      (that ``PromptResult``, ``StageTimes`` of "set_image" and "prompt_1pt", ms)."""
    times = StageTimes()

    def timed() -> ImageEmbedding:
        t0 = time.perf_counter()
        emb = seg.set_image(frame)
        t1 = time.perf_counter()
        seg.prompt(emb, points=points[:1])
        t2 = time.perf_counter()
        times.add({"set_image": (t1 - t0) * 1e3, "prompt_1pt": (t2 - t1) * 1e3})
        return emb

    emb = timed()
    for _ in range(repeats - 1):
        emb = timed()
    return seg.prompt(emb, points=points, boxes=boxes), times


def describe_prompts(
    points: Sequence[tuple[int, int]],
    boxes: Sequence[tuple[int, int, int, int]],
    names: list[str],
    res: PromptResult,
) -> tuple[list[dict[str, Any]], list[str]]:
    """What each prompt (points first, then boxes) gave: a JSON-ready record and a line.

    Returns:
      (records with kind, at, target, mask_area, predicted_iou and, for clicks,
      contains_click; one printable line per prompt)."""
    records: list[dict[str, Any]] = []
    lines: list[str] = []
    prompts: list[tuple[int, ...]] = [*points, *boxes]
    for i, (prompt, name, mask, iou) in enumerate(zip(prompts, names, res.masks, res.iou)):
        kind = "click" if i < len(points) else "box"
        entry = {
            "kind": kind,
            "at": [int(v) for v in prompt],
            "target": name,
            "mask_area": int(mask.sum()),
            "predicted_iou": float(iou),
        }
        if kind == "click":
            entry["contains_click"] = bool(mask[prompt[1], prompt[0]])
            inside = "inside" if entry["contains_click"] else "NOT inside"
            lines.append(
                f"  {i + 1}. click at (x, y) = {tuple(prompt)} on {name}: mask of "
                f"{entry['mask_area']} px, click {inside} it, predicted IoU {iou:.2f}"
            )
        else:
            lines.append(
                f"  {i + 1}. box (x0, y0, x1, y1) = {tuple(prompt)} around {name}: mask of "
                f"{entry['mask_area']} px, predicted IoU {iou:.2f}"
            )
        records.append(entry)
    return records, lines
