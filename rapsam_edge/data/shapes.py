"""Thing shapes: unit outlines per thing class and their rasterisation into binary masks."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .classes import CLASSES

_SHIFT = 4  # sub-pixel bits for cv2.fillPoly (smooth motion of slowly moving objects)
_CIRCLE_VERTS = 48


def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    t = phase + np.arange(n) * (2 * math.pi / n)
    return np.stack([np.cos(t), np.sin(t)], axis=1) * radius


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(2 * points, 1.0, -math.pi / 2)
    outer[1::2] *= inner
    return outer


def _cross(arm: float = 0.36) -> np.ndarray:
    a, b = arm, 1.0
    return np.array(
        [
            [a, -b],
            [a, -a],
            [b, -a],
            [b, a],
            [a, a],
            [a, b],
            [-a, b],
            [-a, a],
            [-b, a],
            [-b, -a],
            [-a, -a],
            [-a, -b],
        ],
        dtype=np.float64,
    )


# (fill outlines, hole outlines) in units of the object radius, before rotation
_OUTLINES: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
    "circle": ([_regular(_CIRCLE_VERTS)], []),
    "square": ([_regular(4, 1.0, math.pi / 4)], []),
    "triangle": ([_regular(3, 1.0, -math.pi / 2)], []),
    "star": ([_star()], []),
    "ring": ([_regular(_CIRCLE_VERTS)], [_regular(_CIRCLE_VERTS, 0.55)]),
    "cross": ([_cross()], []),
    "ellipse": ([_regular(_CIRCLE_VERTS) * np.array([1.0, 0.5])], []),
    "crescent": ([_regular(_CIRCLE_VERTS)], [_regular(_CIRCLE_VERTS, 0.8) + np.array([0.42, 0])]),
}
SHAPES: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {
    c.id: _OUTLINES[c.name] for c in CLASSES if c.is_thing
}


def _to_fixed(pts: np.ndarray, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]]) * radius
    xy = pts @ rot + np.array([cx, cy])
    # pixel centres at integer coordinates; fillPoly's fixed point scales by 2**_SHIFT
    return np.round(xy * (1 << _SHIFT)).astype(np.int32)


def render_shape(
    class_id: int,
    *,
    center: tuple[float, float],
    radius: float,
    angle: float,
    out_hw: tuple[int, int],
) -> np.ndarray:
    """Rasterise thing class ``class_id`` centred at ``center`` (x, y, pixels), ``radius``
    pixels, rotated by ``angle`` radians -> H x W bool mask (clipped to the frame)."""
    fills, holes = SHAPES[class_id]
    mask = np.zeros(out_hw, dtype=np.uint8)
    cx, cy = center
    cv2.fillPoly(mask, [_to_fixed(p, cx, cy, radius, angle) for p in fills], 1, cv2.LINE_8, _SHIFT)
    if holes:
        cv2.fillPoly(
            mask, [_to_fixed(p, cx, cy, radius, angle) for p in holes], 0, cv2.LINE_8, _SHIFT
        )
    return mask.view(bool)


def shape_area(class_id: int, *, radius: float, angle: float) -> int:
    """Pixel area of the whole (unclipped) shape centred on a pixel (rendered on its own
    canvas; other sub-pixel positions differ by a pixel row or so)."""
    side = 2 * math.ceil(radius) + 5
    half = side / 2 - 0.5
    return int(
        np.count_nonzero(
            render_shape(
                class_id, center=(half, half), radius=radius, angle=angle, out_hw=(side, side)
            )
        )
    )


def place_shape(
    class_id: int,
    *,
    center: tuple[float, float],
    radius: float,
    angle: float,
    frame_hw: tuple[int, int],
) -> tuple[int, int, np.ndarray] | None:
    """Rasterise a shape only over its bounding box inside an H x W frame.

    Returns (y0, x0, mask) with ``mask`` the h x w bool crop whose top-left pixel is frame
    pixel (y0, x0), or None when the box misses the frame."""
    cx, cy = center
    reach = radius + 2.0
    x0, y0 = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
    x1 = min(frame_hw[1], math.ceil(cx + reach) + 1)
    y1 = min(frame_hw[0], math.ceil(cy + reach) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = render_shape(
        class_id, center=(cx - x0, cy - y0), radius=radius, angle=angle, out_hw=(y1 - y0, x1 - x0)
    )
    return y0, x0, mask
