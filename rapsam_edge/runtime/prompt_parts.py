"""The parts of ``runtime.prompt_tracker`` that hold no tracker state: the clicks' rule
(``clicks``), the box a click is decoded as, a mask's box, the growth cap against box
creep, and the mask-pooled appearance of an object (the module doc of
``runtime.prompt_tracker`` gives the method)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..contract.postprocess import POINT_BOX_HALF
from ..errors import InputError
from .inputs import as_coords
from .results import ImageEmbedding

__all__ = [
    "RESCALE_MAX_ASPECT",
    "RESCALE_MIN_SIDE",
    "cells",
    "clamp_growth",
    "click_box",
    "clicks",
    "combine",
    "mask_box",
    "no_bools",
    "pool",
    "rescaled",
]

#: ``PromptTracker.step(rescale=True)`` takes a frame of another size as the same view at
#: another resolution only when its aspect ratio (W / H) is within this factor of the last
#: frame's (a camera's 4:3 and 16:9 modes: 1.33) ...
RESCALE_MAX_ASPECT = 1.5
#: ... and both its sides have at least this many pixels (no camera mode is smaller; the
#: smallest common one, QQVGA, is 160 x 120): a 1 x 1 or 5000 x 1 frame is no resolution
#: change of a view, and boxes scaled onto it would lose every object.
RESCALE_MIN_SIDE = 32


def no_bools(name: str, value: Any, kind: str = "numbers") -> None:
    """Refuse bools in a prompt given as (nested) lists / tuples: numpy turns ``[1, True]``
    into ints, so the array's dtype alone would let them through (bool arrays are refused
    by their dtype where the array is checked).

    Raises:
      InputError: a bool (Python or numpy) in ``value``."""
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, (bool, np.bool_)):
            raise InputError(f"{name} must be {kind}, not bools; got {v!r}")
        if isinstance(v, (list, tuple)):  # sizes: the array of it was made and checked
            todo.extend(v)


def rescaled(
    old_hw: tuple[int, int], new_hw: tuple[int, int], boxes: list[np.ndarray]
) -> list[np.ndarray]:
    """``boxes`` (x0, y0, x1, y1, frame pixels of ``old_hw``) scaled to ``new_hw``, each
    kept at least 1 pixel wide and high inside the frame (a small object's box scaled down
    would round to an empty box: no prompt, no object).

    Raises:
      InputError: ``new_hw`` is no resolution change of the same view (``RESCALE_MIN_SIDE``,
        ``RESCALE_MAX_ASPECT``)."""
    (h, w), (nh, nw) = old_hw, new_hw
    aspect = (nw / nh) / (w / h)
    if min(nh, nw) < RESCALE_MIN_SIDE or max(aspect, 1 / aspect) > RESCALE_MAX_ASPECT:
        raise InputError(
            f"frame of {nh} x {nw} (H x W) after {h} x {w} frames is no resolution change of "
            f"the same view (rescale needs both sides >= {RESCALE_MIN_SIDE} and the aspect "
            f"ratio within a factor {RESCALE_MAX_ASPECT:g} of the last frame's): reset() "
            "for a new video"
        )
    scale, size = np.array([nw / w, nh / h] * 2), np.array([nw, nh] * 2, np.float64)
    out = []
    for box in boxes:
        b = np.clip(np.asarray(box, np.float64) * scale, 0, size)
        for lo, hi, side in ((0, 2, nw), (1, 3, nh)):
            if b[hi] - b[lo] < 1:
                b[lo] = min(max((b[lo] + b[hi]) / 2 - 0.5, 0.0), side - 1.0)
                b[hi] = b[lo] + 1
        out.append(b)
    return out


def clicks(
    points: Any, labels: Any, *, required: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Clicks as (P x 2 float64, P int labels in {0, 1}), or (None, None) when none.

    Raises:
      InputError: points not P x 2 real numbers (NaN / inf and points outside the frame:
        ``Segmenter.prompt``'s rules, where the clicks are decoded), labels not one 0 / 1
        int per point (bools refused, as ``as_coords`` refuses them in points), labels
        without points, no positive click, or no click when ``required``."""
    if points is None or np.size(points) == 0:
        if required:
            raise InputError("refine() needs points=... (with labels=...)")
        if labels is not None and np.size(labels):
            raise InputError("labels=... given without points=...")
        return None, None
    pts = as_coords("points", points, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError(f"points must be P x 2 numbers, got shape {pts.shape}")
    no_bools("points", points)
    if labels is None:
        lab = np.ones(len(pts), np.int64)
    else:
        n = len(pts)
        want = f"labels must be ints (1 positive, 0 negative), one per point ({n} for {n} point"
        want += "s)" if n != 1 else ")"
        try:
            lab = np.asarray(labels)
        except (TypeError, ValueError, OverflowError) as e:
            raise InputError(f"{want}: {e}") from e
        if lab.dtype.kind not in "iu" or lab.shape != (n,):
            raise InputError(f"{want}; got {lab.dtype} of shape {lab.shape}")
        no_bools("labels", labels, "ints 0 / 1")
        if not np.isin(lab, (0, 1)).all():
            raise InputError(f"labels must be 1 (positive) or 0 (negative), got {lab}")
        lab = lab.astype(np.int64)
    if not (lab == 1).any():
        raise InputError("the clicks need at least one positive point (label 1)")
    return pts, lab


def combine(masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The union of the positive clicks' masks less the negative clicks' masks."""
    pos = masks[labels == 1].any(axis=0)
    neg = masks[labels == 0].any(axis=0) if (labels == 0).any() else None
    return pos if neg is None else pos & ~neg


def click_box(emb: ImageEmbedding, pts: np.ndarray | None) -> np.ndarray | None:
    """The box prompt, in frame pixels, that one click is decoded as (``POINT_BOX_HALF`` of
    the network input around it, cut to the frame); None unless there is one click."""
    if pts is None or len(pts) != 1:
        return None
    half = POINT_BOX_HALF / emb.prepared.scale
    h, w = emb.frame_hw
    return np.clip(np.concatenate([pts[0] - half, pts[0] + half]), 0, [w, h, w, h])


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """(x0, y0, x1, y1) float64 of a mask, exclusive max; None when empty."""
    box = np.asarray(ops.masks_to_boxes(np.ascontiguousarray(mask)), dtype=np.float64)
    return None if box[2] <= box[0] else box


def clamp_growth(box: np.ndarray, last: np.ndarray, growth: float) -> np.ndarray:
    """``box`` cut to ``last`` enlarged by ``growth`` of its size on each side; ``box``
    itself when the two do not overlap."""
    g = growth * np.array([last[0] - last[2], last[1] - last[3]] * 2)
    out = np.concatenate([np.maximum(box[:2], (last + g)[:2]), np.minimum(box[2:], (last - g)[2:])])
    return out if out[2] > out[0] and out[3] > out[1] else box


def cells(emb: ImageEmbedding, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame-pixel (rows, cols) of the centres of the feature cells inside the frame."""
    scale = emb.prepared.scale
    vh, vw = emb.prepared.valid_hw
    h, w = emb.frame_hw
    rows = np.minimum(
        ((np.arange(-(-vh // stride)) + 0.5) * stride / scale).astype(np.int64), h - 1
    )
    cols = np.minimum(
        ((np.arange(-(-vw // stride)) + 0.5) * stride / scale).astype(np.int64), w - 1
    )
    return rows, cols


def pool(emb: ImageEmbedding, mask: np.ndarray, cells: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The unit-norm mean of the encoder features over the feature cells whose centre lies
    in ``mask`` (the mask's own centre cell when it is smaller than a cell)."""
    rows, cols = cells
    inside = mask[np.ix_(rows, cols)]
    feats = emb.feats[0, :, : len(rows), : len(cols)]
    if not inside.any():  # a mask smaller than one cell: its centre's cell
        ys, xs = np.nonzero(mask)
        r = min(int(np.searchsorted(rows, ys.mean())), len(rows) - 1)
        c = min(int(np.searchsorted(cols, xs.mean())), len(cols) - 1)
        inside = np.zeros((len(rows), len(cols)), bool)
        inside[r, c] = True
    v = feats[:, inside].mean(axis=1)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
