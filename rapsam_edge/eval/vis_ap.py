"""Video instance segmentation AP (YouTube-VIS protocol: COCO evaluation on mask tubes).

IoU of two instances of one video = sum over frames of |intersection| / sum over frames of
|union|; a frame where both are empty adds nothing; two empty tubes have IoU 0.

The rest is pycocotools' COCOeval (iouType "segm", area range "all"), video for image:
- per (video, category): detections sorted by score (stable), the first ``max(max_dets)``
  (100) kept, greedy matching at each IoU threshold 0.50:0.05:0.95. A detection takes the
  unmatched GT with the highest IoU >= threshold.
- per category over all videos: detections sorted by score, cumulative TP / FP, precision
  made monotone, sampled at 101 recall points.
- AP: mean over thresholds and categories that have GT. AP50 and AP75 use one threshold.
  AR1 and AR10 are the mean recall with at most 1 or 10 detections per (video, category).
- crowd GT (``iscrowd``): handled like COCO "ignore" GT. A detection matched to one is
  neither TP nor FP, and a crowd GT can take several detections. The IoU is the plain tube
  IoU (COCO uses intersection / detection area for crowd). YouTube-VIS has no crowd GT.

Masks of one instance are a sequence with one entry per frame: None (empty), a COCO RLE
dict, or an H x W bool/uint8 array. A T x H x W array works too. The tubes are read frame by
frame, so a long video is never held as a whole.

AP and AR are returned in percent (0-100); NaN when no category has GT.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np

from rapsam_edge.data.jsonfile import read_json
from rapsam_edge.data.ytvis import from_mmdet_video_layout, is_mmdet_video_layout
from rapsam_edge.errors import DatasetError
from rapsam_edge.ops import rle_decode

FrameMask = Union[None, Mapping[str, Any], np.ndarray]  # noqa: UP007 (runtime alias)
PathLike = Union[str, "os.PathLike[str]"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)

__all__ = ["IOU_THRESHOLDS", "VideoInstanceAP", "tube_ious", "vis_ap_from_json"]


def _frame(mask: FrameMask, hw: tuple[int, int] | None) -> np.ndarray | None:
    """One frame of a tube -> flat bool mask, or None when empty / absent."""
    if mask is None:
        return None
    if isinstance(mask, Mapping):
        m = rle_decode(dict(mask))
    elif isinstance(mask, np.ndarray):
        if mask.ndim != 2 or (mask.dtype != np.bool_ and mask.dtype.kind not in "iu"):
            raise ValueError("a frame mask must be an H x W bool or integer array")
        m = mask.astype(bool, copy=False)
    else:
        raise ValueError(f"a frame mask must be None, an RLE dict or an array, got {type(mask)}")
    if hw is not None and m.shape != hw:
        raise ValueError(f"frame mask has shape {m.shape}, other masks of the frame {hw}")
    return m.ravel()


def _pairwise_intersections(a: np.ndarray, b: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """A x P and B x P bool -> A x B int64 |a_i & b_j| (float32 matmul on exact chunks)."""
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.int64)
    for s in range(0, a.shape[1], chunk):
        fa = a[:, s : s + chunk].astype(np.float32)
        fb = b[:, s : s + chunk].astype(np.float32)
        out += np.rint(fa @ fb.T).astype(np.int64)
    return out


def tube_ious(dt: Sequence[Sequence[FrameMask]], gt: Sequence[Sequence[FrameMask]]) -> np.ndarray:
    """Spatio-temporal IoU: D detections and G GT instances of one video, each a per-frame
    mask sequence of the same length T -> D x G float64."""
    n_d, n_g = len(dt), len(gt)
    if n_d == 0 or n_g == 0:
        return np.zeros((n_d, n_g))
    lengths = {len(x) for x in (*dt, *gt)}
    if len(lengths) != 1:
        raise ValueError(f"all tubes of a video need the same number of frames, got {lengths}")
    inter = np.zeros((n_d, n_g), dtype=np.int64)
    union = np.zeros((n_d, n_g), dtype=np.int64)
    for t in range(lengths.pop()):
        hw: tuple[int, int] | None = None
        frames_d, frames_g = [], []
        for tubes, frames in ((dt, frames_d), (gt, frames_g)):
            for tube in tubes:
                m = tube[t]
                if m is not None and hw is None:
                    hw = _shape_of(m)
                frames.append(_frame(m, hw))
        if hw is None:
            continue  # all empty
        area_d = np.array([0 if f is None else int(np.count_nonzero(f)) for f in frames_d])
        area_g = np.array([0 if f is None else int(np.count_nonzero(f)) for f in frames_g])
        idx_d = [i for i, f in enumerate(frames_d) if f is not None]
        idx_g = [j for j, f in enumerate(frames_g) if f is not None]
        frame_inter = np.zeros((n_d, n_g), dtype=np.int64)
        if idx_d and idx_g:
            frame_inter[np.ix_(idx_d, idx_g)] = _pairwise_intersections(
                np.stack([frames_d[i] for i in idx_d]), np.stack([frames_g[j] for j in idx_g])
            )
        inter += frame_inter
        union += area_d[:, None] + area_g[None, :] - frame_inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _shape_of(mask: FrameMask) -> tuple[int, int]:
    if isinstance(mask, Mapping):
        h, w = mask["size"]
        return int(h), int(w)
    return tuple(np.shape(mask))  # type: ignore[return-value]


class VideoInstanceAP:
    """Accumulates per-(video, category) matches; ``compute()`` gives AP, AP50, AP75, AR1,
    AR10, AR100 (percent) and per-category AP. Call ``update`` once per video, in the order
    videos should be ranked on equal scores (COCOeval uses ascending video id)."""

    def __init__(
        self,
        iou_thresholds: Sequence[float] = tuple(IOU_THRESHOLDS),
        max_dets: Sequence[int] = (1, 10, 100),
    ) -> None:
        self.iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64)
        self.max_dets = tuple(int(m) for m in sorted(max_dets))
        # category -> list of (scores (D,), matched (T, D) bool, ignored (T, D) bool, n_gt)
        self._evals: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]] = {}

    def update(
        self,
        gt_masks: Sequence[Sequence[FrameMask]],
        gt_categories: Sequence[int],
        pred_masks: Sequence[Sequence[FrameMask]],
        pred_categories: Sequence[int],
        pred_scores: Sequence[float],
        gt_iscrowd: Sequence[bool] | None = None,
    ) -> None:
        """Add one video: G GT tubes and D predicted tubes (each T per-frame masks), their
        categories (any ints), D scores and optionally G crowd flags."""
        gt_cat = np.asarray(gt_categories, dtype=np.int64).reshape(-1)
        dt_cat = np.asarray(pred_categories, dtype=np.int64).reshape(-1)
        scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
        crowd = np.zeros(len(gt_cat), bool) if gt_iscrowd is None else np.asarray(gt_iscrowd, bool)
        if len(gt_masks) != gt_cat.size or crowd.size != gt_cat.size:
            raise ValueError("gt_masks, gt_categories and gt_iscrowd differ in length")
        if not len(pred_masks) == dt_cat.size == scores.size:
            raise ValueError("pred_masks, pred_categories and pred_scores differ in length")
        for cat in sorted(set(gt_cat.tolist()) | set(dt_cat.tolist())):
            g_idx = np.flatnonzero(gt_cat == cat)
            d_idx = np.flatnonzero(dt_cat == cat)
            d_idx = d_idx[np.argsort(-scores[d_idx], kind="mergesort")][: self.max_dets[-1]]
            g_ig = crowd[g_idx]
            order = np.argsort(g_ig, kind="mergesort")  # non-ignored GT first, as COCOeval
            g_idx, g_ig = g_idx[order], g_ig[order]
            ious = tube_ious([pred_masks[i] for i in d_idx], [gt_masks[j] for j in g_idx])
            matched, ignored = self._match(ious, g_ig, g_crowd=g_ig)
            self._evals.setdefault(int(cat), []).append(
                (scores[d_idx], matched, ignored, int(np.count_nonzero(~g_ig)))
            )

    def _match(
        self, ious: np.ndarray, g_ig: np.ndarray, g_crowd: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """COCOeval.evaluateImg's greedy matching; ious D x G with D in score order."""
        n_t, (n_d, n_g) = self.iou_thresholds.size, ious.shape
        gtm = np.full((n_t, n_g), -1, dtype=np.int64)
        matched = np.zeros((n_t, n_d), dtype=bool)
        ignored = np.zeros((n_t, n_d), dtype=bool)
        for ti, t in enumerate(self.iou_thresholds):
            for d in range(n_d):
                best, m = min(float(t), 1 - 1e-10), -1
                for g in range(n_g):
                    if gtm[ti, g] >= 0 and not g_crowd[g]:
                        continue
                    if m > -1 and not g_ig[m] and g_ig[g]:
                        break
                    if ious[d, g] < best:
                        continue
                    best, m = ious[d, g], g
                if m == -1:
                    continue
                ignored[ti, d] = g_ig[m]
                matched[ti, d] = True
                gtm[ti, m] = d
        return matched, ignored

    def compute(self) -> dict[str, Any]:
        """-> {"ap", "ap50", "ap75", "ar1", "ar10", "ar100": percent (the AR keys follow
        ``max_dets``), "per_category": {category: AP percent} for categories with GT,
        "num_categories"}."""
        n_t, n_r = self.iou_thresholds.size, REC_THRESHOLDS.size
        cats = sorted(self._evals)
        precision = -np.ones((n_t, n_r, len(cats), len(self.max_dets)))
        recall = -np.ones((n_t, len(cats), len(self.max_dets)))
        for k, cat in enumerate(cats):
            evals = self._evals[cat]
            n_gt = sum(e[3] for e in evals)
            if n_gt == 0:
                continue
            for mi, max_det in enumerate(self.max_dets):
                scores = np.concatenate([e[0][:max_det] for e in evals])
                order = np.argsort(-scores, kind="mergesort")
                dtm = np.concatenate([e[1][:, :max_det] for e in evals], axis=1)[:, order]
                dtig = np.concatenate([e[2][:, :max_det] for e in evals], axis=1)[:, order]
                tps = np.cumsum(dtm & ~dtig, axis=1, dtype=np.float64)
                fps = np.cumsum(~dtm & ~dtig, axis=1, dtype=np.float64)
                for ti in range(n_t):
                    tp, fp = tps[ti], fps[ti]
                    rc = tp / n_gt
                    pr = tp / (fp + tp + np.spacing(1))
                    recall[ti, k, mi] = rc[-1] if tp.size else 0.0
                    pr = np.maximum.accumulate(pr[::-1])[::-1]  # monotone from the right
                    inds = np.searchsorted(rc, REC_THRESHOLDS, side="left")
                    q = np.zeros(n_r)
                    valid = inds < pr.size
                    q[valid] = pr[inds[valid]]
                    precision[ti, :, k, mi] = q
        last = len(self.max_dets) - 1

        def mean(x: np.ndarray) -> float:
            x = x[x > -1]
            return 100.0 * float(np.mean(x)) if x.size else float("nan")

        out: dict[str, Any] = {"ap": mean(precision[:, :, :, last])}
        for t, key in ((0.5, "ap50"), (0.75, "ap75")):
            hit = np.flatnonzero(np.isclose(self.iou_thresholds, t))
            out[key] = mean(precision[hit, :, :, last]) if hit.size else float("nan")
        for mi, max_det in enumerate(self.max_dets):
            out[f"ar{max_det}"] = mean(recall[:, :, mi])
        out["per_category"] = {
            cat: mean(precision[:, :, k, last])
            for k, cat in enumerate(cats)
            if recall[0, k, last] > -1
        }
        out["num_categories"] = len(out["per_category"])
        return out


def _load(x: PathLike | Mapping[str, Any] | list[Any]) -> Any:
    return read_json(x) if isinstance(x, (str, os.PathLike)) else x


def vis_ap_from_json(
    gt: PathLike | Mapping[str, Any], pred: PathLike | Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """YouTube-VIS JSON (path or loaded) -> ``VideoInstanceAP.compute()``.

    gt: {"videos": [{"id", ...}], "annotations": [{"video_id", "category_id",
    "segmentations": [RLE or None per frame], "iscrowd"?}], "categories": [...]}.
    pred: [{"video_id", "category_id", "score", "segmentations": [...]}] (or a dict with
    "annotations"). Videos are ranked in ascending id, as COCOeval does; predictions whose
    category is not in the GT categories are dropped, as in COCOeval.
    """
    gt_name = str(gt) if isinstance(gt, (str, os.PathLike)) else "ground truth"
    pred_name = str(pred) if isinstance(pred, (str, os.PathLike)) else "predictions"
    gt_d = _load(gt)
    pred_d = _load(pred)
    try:
        if is_mmdet_video_layout(gt_d):
            gt_d = from_mmdet_video_layout(gt_d)
        cat_ids = {int(c["id"]) for c in _field(gt_d, "categories", gt_name)}
        gt_by_video: dict[int, list[Mapping[str, Any]]] = {}
        for a in _field(gt_d, "annotations", gt_name):
            gt_by_video.setdefault(int(a["video_id"]), []).append(a)
        videos = sorted(int(v["id"]) for v in _field(gt_d, "videos", gt_name))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{gt_name}: malformed YouTube-VIS ground truth ({e!r})") from e
    try:
        preds: Iterable[Mapping[str, Any]] = (
            _field(pred_d, "annotations", pred_name) if isinstance(pred_d, Mapping) else pred_d
        )
        dt_by_video: dict[int, list[Mapping[str, Any]]] = {}
        for a in preds:
            if int(a["category_id"]) in cat_ids:
                dt_by_video.setdefault(int(a["video_id"]), []).append(a)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{pred_name}: malformed YouTube-VIS results ({e!r})") from e
    metric = VideoInstanceAP()
    for vid in videos:
        g, d = gt_by_video.get(vid, []), dt_by_video.get(vid, [])
        metric.update(
            [a["segmentations"] for a in g],
            [int(a["category_id"]) for a in g],
            [a["segmentations"] for a in d],
            [int(a["category_id"]) for a in d],
            [float(a["score"]) for a in d],
            [bool(a.get("iscrowd", 0)) for a in g],
        )
    return metric.compute()


def _field(d: Mapping[str, Any], key: str, name: str) -> Any:
    if not isinstance(d, Mapping) or key not in d:
        raise DatasetError(f"{name}: no {key!r} field (a YouTube-VIS file lists {key})")
    return d[key]
