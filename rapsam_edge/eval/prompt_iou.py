"""Interactive (click) segmentation metrics: single-click mIoU and NoC@IoU.

Click placement (RITM / SimpleClick protocol): a click goes to the pixel farthest from the
edge of an error region, i.e. the argmax of ``cv2.distanceTransform`` (exact L2) of the region
zero-padded by one pixel, so pixels on the image border count as next to background and are
not preferred. Ties go to the first pixel in row-major order. Pixels clicked before are not
clicked again.

- First click: the error region is the whole GT mask (nothing predicted yet), so the click is
  the distance-transform argmax of the GT mask. Single-click mIoU averages the IoU after it.
- Next clicks: the false-negative region (GT, not predicted) gives a positive click, the
  false-positive region (predicted, not GT) a negative one. Which of the two is used:
  ``rule="distance"`` (default, as RITM) takes the one whose distance-transform maximum is
  larger (ties -> negative); ``rule="area"`` takes the one with more pixels (ties -> positive).
- NoC@t: clicks until IoU >= t, at most ``max_clicks`` (20); a segment that never gets there
  counts ``max_clicks`` and is a failure (NoF@t).

The predictor is a callable that gets every click so far for ONE object, as (x, y,
is_positive) in pixel coordinates (x = column, y = row), and returns an H x W mask (bool or
integer, nonzero = object). How a negative click reaches the model is the callable's choice.
RAP-SAM has only positive point and box prompts. ``positive_only`` wraps a points-only
predictor and DROPS negative clicks: they still count toward NoC, but the model never sees
them and so cannot remove a false-positive region. NoC measured that way is a pessimistic
figure and should not be compared with numbers from models that take negative clicks.

mIoU is returned in percent (0-100); NoC in clicks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

Click = tuple[int, int, bool]
ClickPredictor = Callable[[Sequence[Click]], np.ndarray]

__all__ = [
    "Click",
    "ClickPredictor",
    "InteractiveEval",
    "click_at_max_distance",
    "click_session",
    "first_clicks",
    "mask_iou",
    "next_click",
    "positive_only",
]


def _as_mask(x: object, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"{name} must be an H x W numpy array")
    if x.dtype != np.bool_ and x.dtype.kind not in "iu":
        raise ValueError(f"{name} must be bool or integer (nonzero = object), got {x.dtype}")
    if shape is not None and x.shape != shape:
        raise ValueError(f"{name} has shape {x.shape}, expected {shape}")
    return x.astype(bool, copy=False)


def _as_mask_stack(x: object, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"{name} must be an N x H x W numpy array")
    if x.dtype != np.bool_ and x.dtype.kind not in "iu":
        raise ValueError(f"{name} must be bool or integer, got {x.dtype}")
    return x.astype(bool, copy=False)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two H x W masks; 1.0 when both are empty."""
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def _distance(region: np.ndarray) -> np.ndarray:
    """H x W bool -> H x W float32 distance to the nearest non-region pixel, the image
    outside counting as non-region."""
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def click_at_max_distance(
    region: np.ndarray, clicked: np.ndarray | None = None
) -> tuple[int, int, float] | None:
    """H x W bool region -> (x, y, distance) at its distance-transform argmax, skipping the
    pixels set in ``clicked`` (H x W bool); None when no pixel is left."""
    dt = _distance(_as_mask(region, "region"))
    if clicked is not None:
        dt[clicked] = 0
    flat = int(np.argmax(dt))
    y, x = divmod(flat, dt.shape[1])
    best = float(dt[y, x])
    return None if best <= 0 else (x, y, best)


def next_click(
    gt: np.ndarray, pred: np.ndarray, clicked: np.ndarray | None = None, rule: str = "distance"
) -> Click | None:
    """The next click for GT mask ``gt`` given the current prediction ``pred`` (both H x W);
    None when prediction and GT agree (or only clicked pixels are wrong)."""
    if rule not in ("distance", "area"):
        raise ValueError(f"rule must be 'distance' or 'area', got {rule!r}")
    gt = _as_mask(gt, "gt")
    pred = _as_mask(pred, "pred", gt.shape)
    fn = click_at_max_distance(gt & ~pred, clicked)
    fp = click_at_max_distance(~gt & pred, clicked)
    if fn is None and fp is None:
        return None
    if fn is None or fp is None:
        positive = fp is None
    elif rule == "distance":
        positive = fn[2] > fp[2]
    else:
        positive = bool(np.count_nonzero(gt & ~pred) >= np.count_nonzero(~gt & pred))
    x, y, _ = fn if positive else fp  # type: ignore[misc]
    return (x, y, positive)


def click_session(
    gt: np.ndarray,
    predict: ClickPredictor,
    max_clicks: int = 20,
    stop_iou: float | None = None,
    rule: str = "distance",
) -> tuple[list[float], list[Click]]:
    """Simulate clicks on one GT mask (H x W). Returns (IoU after each click, the clicks).
    Stops after ``max_clicks``, when IoU >= ``stop_iou``, or when nothing is left to click."""
    gt = _as_mask(gt, "gt")
    if not gt.any():
        raise ValueError("gt mask is empty; there is nothing to click on")
    pred = np.zeros_like(gt)
    clicked = np.zeros_like(gt)
    clicks: list[Click] = []
    ious: list[float] = []
    for _ in range(max_clicks):
        click = next_click(gt, pred, clicked, rule)
        if click is None:
            break
        clicks.append(click)
        clicked[click[1], click[0]] = True
        pred = _as_mask(predict(list(clicks)), "predicted mask", gt.shape)
        ious.append(mask_iou(pred, gt))
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
    return ious, clicks


def first_clicks(gt_masks: np.ndarray) -> np.ndarray:
    """N x H x W GT masks -> N x 2 int64 (x, y) first clicks (-1, -1 for an empty mask), for
    predictors that run all single-click prompts of an image in one batch."""
    masks = _as_mask_stack(gt_masks, "gt_masks")
    out = np.full((masks.shape[0], 2), -1, dtype=np.int64)
    for i, m in enumerate(masks):
        c = click_at_max_distance(m)
        if c is not None:
            out[i] = c[:2]
    return out


def positive_only(predict_points: Callable[[np.ndarray], np.ndarray]) -> ClickPredictor:
    """Wrap ``predict_points(points: K x 2 float32 (x, y)) -> H x W mask`` (positive points of
    one object) as a ClickPredictor that DROPS negative clicks; see the module docstring.
    The first click is always positive, so K >= 1."""

    def predict(clicks: Sequence[Click]) -> np.ndarray:
        pts = [(x, y) for x, y, positive in clicks if positive]
        return predict_points(np.asarray(pts, dtype=np.float32).reshape(-1, 2))

    return predict


class InteractiveEval:
    """Accumulates single-click IoU and NoC over images.

    ``update(gt_masks, predict)`` runs the click protocol (mIoU and NoC);
    ``update_masks(pred_masks, gt_masks)`` adds precomputed single-click predictions (made at
    ``first_clicks``) to mIoU only. Empty GT masks are skipped and counted.
    """

    def __init__(
        self,
        max_clicks: int = 20,
        thresholds: Sequence[float] = (0.5, 0.8, 0.85, 0.9),
        rule: str = "distance",
    ) -> None:
        if max_clicks < 1 or not thresholds:
            raise ValueError("max_clicks must be >= 1 and thresholds non-empty")
        self.max_clicks = int(max_clicks)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.rule = rule
        self.first_ious: list[float] = []
        self.nocs: list[list[int]] = []  # per segment, one NoC per threshold
        self.num_skipped = 0

    def update(self, gt_masks: np.ndarray, predict: ClickPredictor) -> np.ndarray:
        """Run the click protocol on every GT mask (N x H x W) of one image. Returns the
        N x len(thresholds) NoC matrix (-1 rows for skipped empty masks)."""
        masks = _as_mask_stack(gt_masks, "gt_masks")
        out = np.full((masks.shape[0], len(self.thresholds)), -1, dtype=np.int64)
        for i, gt in enumerate(masks):
            if not gt.any():
                self.num_skipped += 1
                continue
            ious, _ = click_session(gt, predict, self.max_clicks, max(self.thresholds), self.rule)
            self.first_ious.append(ious[0])
            noc = []
            for t in self.thresholds:
                hit = next((k + 1 for k, v in enumerate(ious) if v >= t), self.max_clicks + 1)
                noc.append(hit)
            self.nocs.append(noc)
            out[i] = np.minimum(noc, self.max_clicks)
        return out

    def update_masks(self, pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
        """Precomputed single-click predictions (N x H x W each, matching order) -> per-mask
        IoU (N,), NaN for skipped empty GT masks; adds to mIoU only."""
        pred = _as_mask_stack(pred_masks, "pred_masks")
        gt = _as_mask_stack(gt_masks, "gt_masks")
        if pred.shape != gt.shape:
            raise ValueError(f"pred_masks {pred.shape} and gt_masks {gt.shape} differ")
        out = np.full(gt.shape[0], np.nan)
        for i, (p, g) in enumerate(zip(pred, gt)):
            if not g.any():
                self.num_skipped += 1
                continue
            out[i] = mask_iou(p, g)
            self.first_ious.append(float(out[i]))
        return out

    def compute(self) -> dict[str, float | int]:
        """-> {"miou": percent, single click; "noc@50", ...: mean clicks (a failure counts
        max_clicks); "nof@50", ...: segments that never reached the IoU; "num_segments" (in
        mIoU), "num_noc_segments", "num_skipped"}. Means are NaN without segments."""
        out: dict[str, float | int] = {
            "miou": 100.0 * math.fsum(self.first_ious) / len(self.first_ious)
            if self.first_ious
            else float("nan")
        }
        noc = np.asarray(self.nocs, dtype=np.int64).reshape(-1, len(self.thresholds))
        for j, t in enumerate(self.thresholds):
            key = f"{round(100 * t):d}"
            col = noc[:, j]
            out[f"noc@{key}"] = (
                float(np.minimum(col, self.max_clicks).mean()) if col.size else float("nan")
            )
            out[f"nof@{key}"] = int(np.count_nonzero(col > self.max_clicks))
        out["num_segments"] = len(self.first_ious)
        out["num_noc_segments"] = int(noc.shape[0])
        out["num_skipped"] = self.num_skipped
        return out
