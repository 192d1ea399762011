"""Video object segmentation measures (DAVIS): region J, boundary F, their mean J&F, and ID
switches. numpy + OpenCV only (no torch).

The definitions follow the DAVIS 2017 evaluation (davisvideochallenge/davis2017-evaluation,
``davis2017/metrics.py`` and ``evaluation.py``); this is an independent implementation:

- Region J of one frame: |gt & pred| / |gt | pred|; 1 when both masks are empty (union 0).
- Boundary map of a mask (the ``seg2bmap`` rule, one pixel wide, offset half a pixel towards
  the origin): pixel (y, x) is a boundary pixel when its value differs from that of its
  right (y, x + 1), lower (y + 1, x) or lower-right (y + 1, x + 1) neighbour; on the last row
  only the right neighbour is compared, on the last column only the lower one, and the
  bottom-right pixel is never a boundary pixel. (A rectangle of rows r0..r1-1 and columns
  c0..c1-1 inside the image has the outline of rows r0-1..r1-1 x columns c0-1..c1-1 as its
  boundary: 2 x (height + width) pixels.)
- Boundary F of one frame: the tolerance is ``ceil(0.008 x image diagonal)`` pixels (a
  tolerance >= 1 is taken as pixels). Each boundary is dilated with a disk of that radius
  (x^2 + y^2 <= r^2). Precision = predicted boundary pixels inside the dilated GT boundary /
  predicted boundary pixels; recall = GT boundary pixels inside the dilated predicted boundary
  / GT boundary pixels. F = 2PR / (P + R), 0 when P + R = 0. Empty boundaries: both empty ->
  F = 1; only the prediction's -> P = 1, R = 0 (F = 0); only the GT's -> P = 0, R = 1 (F = 0).
- Per object: the mean of its per-frame J (and F) over its scored frames (DAVIS'
  ``db_statistics`` "M"); over a dataset: J = mean over objects of the per-object means, F
  likewise, J&F = (J + F) / 2. Every object counts once, whatever its video.
- A frame where the GT object is absent (it left, or it is hidden) is still scored: an empty
  prediction there has J = F = 1, any predicted pixel J = F = 0.

ID switches (``IdSwitches``), the CLEAR-MOT rule on masks (Bernardin and Stiefelhagen,
"Evaluating multiple object tracking performance: the CLEAR MOT metrics", 2008, its mapping
procedure; py-motmetrics' ``MOTAccumulator`` keeps prior matches the same way), one definition for
every tracker the SDK measures (the prompt tracker in ``eval.vos_protocol``, the panoptic video
tracker there and in ``eval.harness``): on each scored frame where the GT object is visible,
its match is the previous match while that predicted object still has IoU >= ``min_iou``
(0.5) with it; otherwise the predicted object with the highest IoU among those with IoU >=
``min_iou`` (ties: the lower id), or none. A switch is counted each time the match differs
from the previous match. (Keeping a still-valid match matters where predicted masks may
overlap, as a prompt tracker's may: another object's mask drifting onto this object, even
one scoring a higher IoU, is that object's error, not a switch of this one; on a tracker's
id map, whose masks are disjoint, two ids can both reach IoU 0.5 only as two halves of
exactly 0.5 each, so there the rule is the plain highest-IoU one.)
The previous match starts as ``initial_id``: the id a prompt tracker gave the object when it
was prompted, or the panoptic track matched on the frame the prompt was given; ``None`` (no
id yet) lets the first match set it without a switch. Frames without a match change nothing
(losing the object is what J measures, not a switch; a miss then a re-acquire under the same
id is no switch); coming back under the original id after another id had the object is a
second switch. With IoU >= 0.5 and GT objects that do not overlap, no predicted object can
match two GT objects on one frame, so per-GT matching is one-to-one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

__all__ = [
    "BOUNDARY_TOLERANCE",
    "IdSwitches",
    "VosScores",
    "boundary_f",
    "boundary_map",
    "boundary_radius",
    "count_id_switches",
    "index_map_predictions",
    "region_j",
]

#: DAVIS' boundary tolerance: a fraction of the image diagonal (>= 1: pixels)
BOUNDARY_TOLERANCE = 0.008


def _mask(x: object, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be an H x W mask, got shape {a.shape}")
    if a.dtype != np.bool_ and a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be bool or integer (nonzero = object), got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, the ground truth {shape}")
    return a.astype(bool, copy=False)


def region_j(gt: np.ndarray, pred: np.ndarray) -> float:
    """Region similarity J of one frame: IoU of two H x W masks, 1.0 when both are empty."""
    g = _mask(gt, "gt")
    p = _mask(pred, "pred", g.shape)
    union = int(np.count_nonzero(g | p))
    return 1.0 if union == 0 else int(np.count_nonzero(g & p)) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """H x W mask -> H x W bool boundary map by the ``seg2bmap`` rule (module docstring)."""
    m = _mask(mask, "mask")
    right = np.zeros_like(m)
    right[:, :-1] = m[:, 1:]
    below = np.zeros_like(m)
    below[:-1, :] = m[1:, :]
    diag = np.zeros_like(m)
    diag[:-1, :-1] = m[1:, 1:]
    b = (m ^ right) | (m ^ below) | (m ^ diag)
    b[-1, :] = m[-1, :] ^ right[-1, :]  # last row: the right neighbour only
    b[:, -1] = m[:, -1] ^ below[:, -1]  # last column: the lower neighbour only
    b[-1, -1] = False
    return b


def boundary_radius(shape: tuple[int, int], tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Matching distance in pixels: ``ceil(tolerance x diagonal)``, or ``tolerance`` itself
    when it is >= 1 (pixels)."""
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number, got {tolerance}")
    if tolerance >= 1:
        return math.ceil(tolerance)
    return math.ceil(tolerance * math.hypot(shape[0], shape[1]))


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (xx * xx + yy * yy <= radius * radius).astype(np.uint8)


def boundary_f(gt: np.ndarray, pred: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """Boundary measure F of one frame (module docstring): two H x W masks -> [0, 1]."""
    g = _mask(gt, "gt")
    p = _mask(pred, "pred", g.shape)
    gb, pb = boundary_map(g), boundary_map(p)
    n_g, n_p = int(np.count_nonzero(gb)), int(np.count_nonzero(pb))
    if n_g == 0 or n_p == 0:
        return 1.0 if n_g == n_p else 0.0  # both empty: 1; one empty: P or R is 0
    disk = _disk(boundary_radius(g.shape, tolerance))
    g_near = cv2.dilate(gb.astype(np.uint8), disk).astype(bool)
    p_near = cv2.dilate(pb.astype(np.uint8), disk).astype(bool)
    precision = int(np.count_nonzero(pb & g_near)) / n_p
    recall = int(np.count_nonzero(gb & p_near)) / n_g
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


class VosScores:
    """Per-object J and F sequences -> DAVIS means. ``add(key, gt, pred)`` scores one frame
    of object ``key`` (any hashable); ``compute()`` averages per object, then over objects.
    Objects with no scored frame are not counted."""

    def __init__(self, tolerance: float = BOUNDARY_TOLERANCE) -> None:
        self.tolerance = tolerance
        self.j: dict[object, list[float]] = {}
        self.f: dict[object, list[float]] = {}

    def add(self, key: object, gt: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
        """Score one frame of object ``key``; returns its (J, F)."""
        j = region_j(gt, pred)
        f = boundary_f(gt, pred, self.tolerance)
        self.j.setdefault(key, []).append(j)
        self.f.setdefault(key, []).append(f)
        return j, f

    def per_object(self) -> dict[object, tuple[float, float]]:
        """key -> (mean J, mean F) over the object's scored frames."""
        return {
            k: (math.fsum(v) / len(v), math.fsum(self.f[k]) / len(v)) for k, v in self.j.items()
        }

    def compute(self) -> dict[str, float | int]:
        """{"j", "f", "jf": DAVIS means in [0, 1] (NaN without objects), "objects",
        "frames": object-frames scored}."""
        means = list(self.per_object().values())
        if not means:
            return {"j": math.nan, "f": math.nan, "jf": math.nan, "objects": 0, "frames": 0}
        j = math.fsum(m[0] for m in means) / len(means)
        f = math.fsum(m[1] for m in means) / len(means)
        frames = sum(len(v) for v in self.j.values())
        return {"j": j, "f": f, "jf": (j + f) / 2.0, "objects": len(means), "frames": frames}


class IdSwitches:
    """ID switches of one GT object (module docstring). ``update(gt, predictions)`` per
    scored frame, ``predictions`` {tracker id: H x W mask} (what the tracker shows)."""

    def __init__(self, initial_id: int | None = None, min_iou: float = 0.5) -> None:
        self.last = initial_id
        self.min_iou = float(min_iou)
        self.switches = 0
        self.matched = 0  # visible frames with a match
        self.visible = 0  # frames scored with the GT object visible

    def match(
        self, gt: np.ndarray, predictions: Mapping[int, np.ndarray], keep: int | None = None
    ) -> int | None:
        """The id that matches ``gt`` on this frame, or None: ``keep`` (the previous match)
        while its IoU is >= ``min_iou``, else the highest IoU >= ``min_iou`` (ties: the lower
        id)."""
        g = _mask(gt, "gt")
        area = int(np.count_nonzero(g))
        best, best_iou = None, -1.0
        for tid in sorted(predictions):
            p = _mask(predictions[tid], f"mask of object {tid}", g.shape)
            inter = int(np.count_nonzero(g & p))
            if inter == 0:
                continue
            iou = inter / (area + int(np.count_nonzero(p)) - inter)
            if iou >= self.min_iou and tid == keep:
                return tid
            if iou >= self.min_iou and iou > best_iou:
                best, best_iou = tid, iou
        return best

    def update(self, gt: np.ndarray, predictions: Mapping[int, np.ndarray]) -> int | None:
        """Count one frame; returns its match (None: GT absent or no match)."""
        if not np.any(gt):
            return None
        self.visible += 1
        best = self.match(gt, predictions, keep=self.last)
        if best is None:
            return None
        self.matched += 1
        if self.last is not None and best != self.last:
            self.switches += 1
        self.last = best
        return best


def index_map_predictions(index_map: np.ndarray, gt: np.ndarray) -> dict[int, np.ndarray]:
    """{id: index_map == id} for the nonzero ids of an H x W id map (0 = nothing) that overlap
    ``gt``: what ``IdSwitches.update`` needs from a tracker that outputs one id map (ids not
    touching the GT object can never match it, so leaving them out changes nothing)."""
    ids = np.unique(np.asarray(index_map)[_mask(gt, "gt")])
    return {int(i): index_map == i for i in ids.tolist() if i != 0}


def count_id_switches(
    gt: Sequence[np.ndarray],
    predictions: Sequence[Mapping[int, np.ndarray]],
    initial_id: int | None = None,
    min_iou: float = 0.5,
) -> int:
    """ID switches of one GT object over its scored frames (``gt`` and ``predictions`` one
    entry per frame, the prompted frame excluded; ``initial_id``: see ``IdSwitches``)."""
    if len(gt) != len(predictions):
        raise ValueError(f"{len(gt)} GT frames but {len(predictions)} prediction frames")
    counter = IdSwitches(initial_id, min_iou)
    for g, p in zip(gt, predictions):
        counter.update(g, p)
    return counter.switches
