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

__all__ = ["cells", "clamp_growth", "click_box", "clicks", "combine", "mask_box", "pool"]


def clicks(
    points: Any, labels: Any, *, required: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Clicks as (P x 2 float64, P int labels in {0, 1}), or (None, None) when none.

    Raises:
      InputError: points not P x 2 real numbers (NaN / inf and points outside the frame:
        ``Segmenter.prompt``'s rules, where the clicks are decoded), labels not one 0 / 1 int per point, labels without points, no
        positive click, or no click when ``required``."""
    if points is None or np.size(points) == 0:
        if required:
            raise InputError("refine() needs points=... (with labels=...)")
        if labels is not None and np.size(labels):
            raise InputError("labels=... given without points=...")
        return None, None
    pts = as_coords("points", points, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise InputError(f"points must be P x 2 numbers, got shape {pts.shape}")
    if labels is None:
        lab = np.ones(len(pts), np.int64)
    else:
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iub" or lab.shape != (len(pts),):
            raise InputError(
                f"labels must be {len(pts)} ints (1 positive, 0 negative), one per point; "
                f"got {lab.dtype} of shape {lab.shape}"
            )
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
