"""Annotated images for people: colour overlays from the C++ core plus text labels.

A label is one line of text drawn once, over a filled box sized with ``cv2.getTextSize``, so
it reads the same on every OpenCV version (OpenCV 5 widens glyphs with the stroke thickness,
so the old "thick dark text under thin light text" outline came out doubled)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .. import ops
from ..runtime.results import PanopticResult, PromptResult, PromptTrackResult, TrackResult

__all__ = [
    "draw_label",
    "draw_panoptic",
    "draw_prompt_tracks",
    "draw_prompts",
    "draw_tracks",
    "interior_point",
]

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
#: pixels between the text and the edge of its background box
LABEL_PAD = 2
LABEL_FG = (255, 255, 255)
LABEL_BG = (0, 0, 0)
#: colour of clicks and prompt boxes (BGR red)
PROMPT_COLOR = (0, 0, 255)


def _label_box(hw: tuple[int, int], text: str, x: int, y: int) -> tuple[int, int, int, int]:
    """The box ``draw_label`` fills for ``text`` at (x, y) in an image of size ``hw``."""
    (tw, th), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    h, w = hw
    bw, bh = tw + 2 * LABEL_PAD, th + baseline + 2 * LABEL_PAD
    x0 = min(max(int(x) - LABEL_PAD, 0), max(w - bw, 0))
    y0 = min(max(int(y) - th - LABEL_PAD, 0), max(h - bh, 0))
    return x0, y0, min(x0 + bw, w), min(y0 + bh, h)


def _tag(image: np.ndarray, text: str, x: int, y: int, avoid: np.ndarray) -> None:
    """A small label next to (x, y): right, left, above or below it, wherever it covers the
    fewest pixels of ``avoid`` (H x W bool, e.g. the mask the point gave)."""
    (tw, th), _ = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    gap = 6 + LABEL_PAD
    candidates = [
        (x + gap, y + th // 2),
        (x - gap - tw, y + th // 2),
        (x - tw // 2, y - gap),
        (x - tw // 2, y + gap + th),
    ]

    def covered(c: tuple[int, int]) -> int:
        x0, y0, x1, y1 = _label_box(image.shape[:2], text, *c)
        return int(avoid[y0:y1, x0:x1].sum())

    draw_label(image, text, *min(candidates, key=covered))


def draw_label(
    image: np.ndarray,
    text: str,
    x: int,
    y: int,
    *,
    fg: tuple[int, int, int] = LABEL_FG,
    bg: tuple[int, int, int] = LABEL_BG,
) -> tuple[int, int, int, int]:
    """Draw ``text`` once, in ``fg``, over a filled ``bg`` box, in place.

    Arguments:
      image: H x W x 3 uint8, modified in place.
      text: one line.
      x, y: pixel position of the text's left end and baseline; the box is moved inside the
        image when it would stick out (and clipped to it when larger than the image).
      fg, bg: text and box colours in the image's channel order.
    Returns:
      the box drawn, (x0, y0, x1, y1) pixels, exclusive max.
    """
    th = cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][1]
    x0, y0, x1, y1 = _label_box(image.shape[:2], text, x, y)
    image[y0:y1, x0:x1] = bg
    # draw into the box only, so no text pixel lands outside it
    box = np.ascontiguousarray(image[y0:y1, x0:x1])
    cv2.putText(box, text, (LABEL_PAD, LABEL_PAD + th), FONT, FONT_SCALE, fg, 1, cv2.LINE_AA)
    image[y0:y1, x0:x1] = box
    return x0, y0, x1, y1


#: largest region the distance transform of ``interior_point`` runs on (pixels)
_MAX_DT_PIXELS = 1 << 22


def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of ``mask`` farthest from its boundary (frame edges count as boundary): a
    point inside the mask also for non-convex or hollow shapes, whose box centre may miss.
    A mask whose box holds over 4 M pixels is searched on every s-th pixel (the point is
    still a set pixel of the mask, within s pixels of the farthest one).

    Arguments:
      mask: H x W bool (or 0 / non-0) array with at least one set pixel.
    Returns:
      (x, y) pixel coordinates, ints.
    Raises:
      ValueError: the mask is not 2-D or has no set pixel.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"mask must be H x W with a set pixel, got shape {mask.shape}")
    # the mask's box only (exact: the zero border stands for whatever lies outside it), and
    # over _MAX_DT_PIXELS every s-th pixel (a subsampled pixel that is set is set in the
    # mask), so a frame at the frame limit costs megabytes here, not a 268 MB float map
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    box = mask[y0 : int(rows[-1]) + 1, x0 : int(cols[-1]) + 1]
    s = max(1, int(np.ceil(np.sqrt(box.size / _MAX_DT_PIXELS))))
    if s > 1 and box[::s, ::s].any():
        box = box[::s, ::s]
    else:
        s = 1
    padded = np.pad((box != 0).astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return x0 + int(x) * s, y0 + int(y) * s


def _label_at(image: np.ndarray, text: str, x: int, y: int) -> None:
    """A label centred on (x, y)."""
    (tw, th), _ = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    draw_label(image, text, x - tw // 2, y + th // 2)


def _corner_lines(image: np.ndarray, lines: Sequence[str]) -> None:
    y = 4
    for line in lines:
        y = draw_label(image, line, 4, y + 12)[3] + 1


def draw_panoptic(image: np.ndarray, result: PanopticResult) -> np.ndarray:
    """Colour overlay of the segments, each labelled "class score" at its interior point.

    Arguments:
      image: H x W x 3 uint8 frame the result belongs to.
      result: its ``PanopticResult``.
    Returns:
      a new H x W x 3 uint8 image.
    """
    out = ops.overlay(np.ascontiguousarray(image), result.panoptic_map)
    for seg in result.segments:
        x, y = interior_point(result.panoptic_map == seg["id"])
        _label_at(out, f"{result.class_names[seg['class']]} {seg['score']:.2f}", x, y)
    return out


def draw_tracks(image: np.ndarray, result: TrackResult, class_names: Sequence[str]) -> np.ndarray:
    """Colour overlay of the tracked instances, each labelled "#track_id class", with the
    frame index and the number of tracks in this frame in the top-left corner (and a note
    when there are none).

    Arguments:
      image: H x W x 3 uint8 frame the result belongs to.
      result: its ``TrackResult``.
      class_names: the bundle's class names (``Segmenter.class_names``).
    Returns:
      a new H x W x 3 uint8 image.
    """
    out = ops.overlay(np.ascontiguousarray(image), result.track_map)
    for tid, cls in zip(result.track_ids.tolist(), result.track_classes.tolist()):
        x, y = interior_point(result.track_map == tid)
        _label_at(out, f"#{tid} {class_names[cls]}", x, y)
    n = len(result.track_ids)
    lines = [f"frame {result.frame_index}: {n} track{'' if n == 1 else 's'}"]
    if n == 0:
        lines.append("0 tracks: no object passed the score threshold")
    _corner_lines(out, lines)
    return out


def draw_prompts(
    image: np.ndarray,
    result: PromptResult,
    points: Sequence[Sequence[float]] = (),
    boxes: Sequence[Sequence[float]] = (),
) -> np.ndarray:
    """Colour overlay of the prompt masks with the clicks (dots) and boxes drawn in red, each
    numbered as its mask, and "prompt i: iou" lines in the top-left corner.

    Arguments:
      image: H x W x 3 uint8 frame.
      result: ``Segmenter.prompt``'s result for ``points`` then ``boxes``.
      points: P1 x 2 (x, y) pixels; boxes: P2 x 4 (x0, y0, x1, y1) pixels.
    Returns:
      a new H x W x 3 uint8 image.
    """
    labels = np.zeros(image.shape[:2], dtype=np.int32)
    for i, mask in enumerate(result.masks):
        labels[mask] = i + 1
    out = ops.overlay(np.ascontiguousarray(image), labels)
    n_points = len(points)
    for i, (x, y) in enumerate(points):
        cv2.circle(out, (int(x), int(y)), 4, (255, 255, 255), -1)
        cv2.circle(out, (int(x), int(y)), 3, PROMPT_COLOR, -1)
        _tag(out, f"{i + 1}", int(x), int(y), labels > 0)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), PROMPT_COLOR, 1)
        draw_label(out, f"{n_points + i + 1}", int(x0), int(y0) - 3)
    kinds = ["click"] * n_points + ["box"] * len(boxes)
    _corner_lines(
        out,
        [
            f"prompt {i + 1} ({kind}): iou {iou:.2f}"
            for i, (kind, iou) in enumerate(zip(kinds, result.iou.tolist()))
        ],
    )
    return out


def draw_prompt_tracks(image: np.ndarray, result: PromptTrackResult) -> np.ndarray:
    """Colour overlay of a ``PromptTracker`` frame: each tracked object's mask in its id's
    colour (the same colour as ``ops.overlay`` gives label ``id``) with its box and a
    "#id tracked score" label; an occluded or lost object's last box in grey with
    "#id occluded" / "#id lost"; "frame i: n objects" in the top-left corner.

    Arguments:
      image: H x W x 3 uint8 frame the result belongs to.
      result: its ``PromptTrackResult``.
    Returns:
      a new H x W x 3 uint8 image.
    """
    labels = np.zeros(image.shape[:2], dtype=np.int32)
    for obj in result.objects:
        if obj.state == "tracked":
            labels[obj.mask] = obj.id
    out = ops.overlay(np.ascontiguousarray(image), labels)
    for obj in result.objects:
        x0, y0, x1, y1 = (int(v) for v in obj.box)
        if obj.state == "tracked":
            cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), LABEL_FG, 1)
            draw_label(out, f"#{obj.id} tracked {obj.score:.2f}", x0, y0 - 3)
        else:
            cv2.rectangle(out, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), (128, 128, 128), 1)
            draw_label(out, f"#{obj.id} {obj.state}", x0, y0 - 3)
    n = len(result.objects)
    _corner_lines(out, [f"frame {result.frame_index}: {n} object{'' if n == 1 else 's'}"])
    return out
