"""Agreement between two runs of the same model (e.g. fp32 vs fp16 / int8 backends).

- ``mask_agreement``: per-mask IoU between two stacks of masks in matching order (mask i of
  one run against mask i of the other), for prompt masks or a fixed query order.
- ``label_map_agreement``: two panoptic segment-id maps whose ids need not correspond. Ids
  are paired one-to-one to maximise the summed IoU (Hungarian). The score is the fraction of
  pixels whose segments are paired with each other. Void pixels (``void_id``) agree only with
  void. With ``classes_a`` / ``classes_b``, segments of different classes are never paired.

Values are fractions in [0, 1] (not percent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rapsam_edge.ops import linear_assignment

__all__ = ["label_map_agreement", "mask_agreement", "mask_ious"]


def _mask_stack(x: object, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"{name} must be an N x H x W numpy array")
    if x.dtype != np.bool_ and x.dtype.kind not in "iu":
        raise ValueError(f"{name} must be bool or integer (nonzero = mask), got {x.dtype}")
    return x.astype(bool, copy=False)


def mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """N x H x W and N x H x W masks -> (N,) float64 IoU of a[i] and b[i]; 1.0 where both
    are empty (they agree)."""
    a, b = _mask_stack(a, "a"), _mask_stack(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"mask stacks differ in shape: {a.shape} vs {b.shape}")
    n, h, w = a.shape
    a2, b2 = a.reshape(n, h * w), b.reshape(n, h * w)
    inter = np.count_nonzero(a2 & b2, axis=1)
    union = np.count_nonzero(a2 | b2, axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def mask_agreement(a: np.ndarray, b: np.ndarray, threshold: float = 0.9) -> dict[str, Any]:
    """Two N x H x W mask stacks -> {"ious": (N,), "mean_iou", "min_iou", "frac_above"
    (fraction with IoU >= threshold), "n"}; the means are NaN for N = 0."""
    ious = mask_ious(a, b)
    n = int(ious.size)
    return {
        "ious": ious,
        "mean_iou": float(ious.mean()) if n else float("nan"),
        "min_iou": float(ious.min()) if n else float("nan"),
        "frac_above": float(np.count_nonzero(ious >= threshold)) / n if n else float("nan"),
        "n": n,
    }


def label_map_agreement(
    a: np.ndarray,
    b: np.ndarray,
    void_id: int | None = 0,
    classes_a: Mapping[int, int] | None = None,
    classes_b: Mapping[int, int] | None = None,
) -> dict[str, Any]:
    """Two H x W integer segment-id maps -> {"pixel_agreement": fraction of pixels whose
    segments are paired (void-void pixels included), "pairs": list of (id_a, id_b, iou) with
    iou > 0, "mean_pair_iou" (NaN without pairs), "unpaired_a", "unpaired_b": ids left over}.

    ``classes_a`` / ``classes_b`` (segment id -> class, both or neither) forbid pairing
    segments of different classes."""
    for x, name in ((a, "a"), (b, "b")):
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype.kind not in "iu":
            raise ValueError(f"{name} must be an H x W integer numpy array")
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    if (classes_a is None) != (classes_b is None):
        raise ValueError("give both classes_a and classes_b, or neither")
    ids_a, inv_a = np.unique(a, return_inverse=True)
    ids_b, inv_b = np.unique(b, return_inverse=True)
    n_a, n_b = ids_a.size, ids_b.size
    inter = np.bincount(inv_a.ravel() * n_b + inv_b.ravel(), minlength=n_a * n_b).reshape(n_a, n_b)
    area_a, area_b = inter.sum(axis=1), inter.sum(axis=0)
    iou = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1)

    agree = 0
    keep_a = np.ones(n_a, dtype=bool)
    keep_b = np.ones(n_b, dtype=bool)
    if void_id is not None:
        va, vb = np.flatnonzero(ids_a == void_id), np.flatnonzero(ids_b == void_id)
        if va.size and vb.size:
            agree += int(inter[va[0], vb[0]])
        keep_a[va] = False
        keep_b[vb] = False
    if classes_a is not None and classes_b is not None:
        cls_a = np.array([classes_a.get(int(i), -1) for i in ids_a])
        cls_b = np.array([classes_b.get(int(i), -2) for i in ids_b])
        iou = np.where(cls_a[:, None] == cls_b[None, :], iou, 0.0)
    rows_a, cols_b = np.flatnonzero(keep_a), np.flatnonzero(keep_b)
    pairs: list[tuple[int, int, float]] = []
    if rows_a.size and cols_b.size:
        sub = iou[np.ix_(rows_a, cols_b)]
        r, c = linear_assignment(sub, maximize=True)
        for i, j in zip(rows_a[r], cols_b[c]):
            if iou[i, j] > 0:
                pairs.append((int(ids_a[i]), int(ids_b[j]), float(iou[i, j])))
                agree += int(inter[i, j])
    paired_a = {p[0] for p in pairs}
    paired_b = {p[1] for p in pairs}
    total = a.size
    return {
        "pixel_agreement": agree / total if total else 1.0,
        "pairs": pairs,
        "mean_pair_iou": float(np.mean([p[2] for p in pairs])) if pairs else float("nan"),
        "unpaired_a": [int(i) for i in ids_a[keep_a] if int(i) not in paired_a],
        "unpaired_b": [int(i) for i in ids_b[keep_b] if int(i) not in paired_b],
    }
