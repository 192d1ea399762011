"""Panoptic quality (PQ = SQ x RQ), computed the way panopticapi's ``pq_compute`` does.

Per image, a ground-truth (GT) segment and a predicted segment of the same class match when
their IoU is above 0.5. Pixels that are void in the GT are left out of that IoU's union. Across
the whole data set, each class c collects TP, FP, FN and the sum of the matched IoUs:

    PQ_c = sum IoU / (TP + FP / 2 + FN / 2),  SQ_c = sum IoU / TP,  RQ_c = TP / (TP + FP / 2 + FN / 2)

PQ, SQ and RQ (all / things / stuff) are plain means over the classes with TP + FP + FN > 0.

Details as in panopticapi:
- void: GT id 0. A GT pixel whose id is not among ``gt_segments`` also counts as void (in
  panopticapi such a pixel is dropped from matching but is not void; COCO GT never has one).
- crowd GT (``iscrowd``): never matched and never a false negative. An unmatched prediction is
  not a false positive when more than half of its area lies on void plus the crowd region of
  its class. Like panopticapi, only the LAST crowd segment of each class in an image (in
  ``gt_segments`` order) counts as that region. COCO has at most one crowd segment per class
  in an image.
- predicted id 0 means "no segment". Every other id in the predicted map must be in
  ``pred_segments`` and every listed segment must cover at least one pixel, or ValueError
  (panopticapi raises KeyError for both).

PQ, SQ and RQ are returned in percent (0-100).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from rapsam_edge.contract.panoptic_ids import rgb_to_id
from rapsam_edge.data.jsonfile import read_json
from rapsam_edge.errors import DatasetError

Segment = Mapping[str, Any]
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PanopticQuality", "pq_from_files"]


def _check_map(x: object, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an H x W integer numpy array")
    if x.size and x.min() < 0:
        raise ValueError(f"{name} has negative segment ids")
    return x.astype(np.int64, copy=False)


def _segment_table(
    segments: Sequence[Segment], name: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments -> (ids (S,), classes (S,), iscrowd (S,) bool), checked."""
    ids, classes, crowd = [], [], []
    for seg in segments:
        sid, cls = int(seg["id"]), int(seg["class"])
        if sid <= 0:
            raise ValueError(f"{name}: segment id must be > 0 (0 is void), got {sid}")
        if not 0 <= cls < num_classes:
            raise ValueError(f"{name}: class {cls} of segment {sid} not in [0, {num_classes})")
        ids.append(sid)
        classes.append(cls)
        crowd.append(bool(seg.get("iscrowd", 0)))
    ids_arr = np.asarray(ids, dtype=np.int64)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: duplicate segment ids")
    return ids_arr, np.asarray(classes, dtype=np.int64), np.asarray(crowd, dtype=bool)


class PanopticQuality:
    """Accumulates panoptic-quality statistics over images; see the module docstring.

    ``num_classes``: number of train ids (classes are 0-based). ``is_thing``: one bool per
    class (True = thing, False = stuff).
    """

    def __init__(self, num_classes: int, is_thing: Sequence[bool]) -> None:
        if num_classes <= 0 or len(is_thing) != num_classes:
            raise ValueError("is_thing must hold one flag per class, num_classes > 0")
        self.num_classes = int(num_classes)
        self.is_thing = np.asarray([bool(t) for t in is_thing], dtype=bool)
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        self.tp = np.zeros(self.num_classes, dtype=np.int64)
        self.fp = np.zeros(self.num_classes, dtype=np.int64)
        self.fn = np.zeros(self.num_classes, dtype=np.int64)
        self.iou = np.zeros(self.num_classes, dtype=np.float64)
        self.num_images = 0

    def update(
        self,
        pred_map: np.ndarray,
        pred_segments: Sequence[Segment],
        gt_map: np.ndarray,
        gt_segments: Sequence[Segment],
    ) -> None:
        """Add one image.

        pred_map, gt_map: H x W integer segment-id maps (0 = void / no segment).
        pred_segments, gt_segments: mappings with ``id`` (> 0) and ``class`` (train id);
        GT ones may have ``iscrowd`` (default 0).
        """
        pred = _check_map(pred_map, "pred_map")
        gt = _check_map(gt_map, "gt_map")
        if pred.shape != gt.shape:
            raise ValueError(f"pred_map {pred.shape} and gt_map {gt.shape} differ in shape")
        p_ids, p_cls, _ = _segment_table(pred_segments, "pred_segments", self.num_classes)
        g_ids, g_cls, g_crowd = _segment_table(gt_segments, "gt_segments", self.num_classes)

        # compact indices: GT rows 0..G-1 are the listed segments, row G is void;
        # predicted columns 0..P-1 are the listed segments, column P is "no segment"
        n_g, n_p = g_ids.size, p_ids.size
        g_row = _index_of(gt.ravel(), g_ids, default=n_g)
        p_col = _index_of(pred.ravel(), p_ids, default=n_p)
        bad = (p_col == n_p) & (pred.ravel() != 0)
        if bad.any():
            raise ValueError(
                f"pred_map has segment id {int(pred.ravel()[bad][0])} not in pred_segments"
            )
        inter = np.bincount(g_row * (n_p + 1) + p_col, minlength=(n_g + 1) * (n_p + 1))
        inter = inter.reshape(n_g + 1, n_p + 1)[:, :n_p]  # (G+1) x P
        p_area = inter.sum(axis=0)  # P, every pixel of the predicted segment
        if n_p and (p_area == 0).any():
            missing = int(p_ids[np.flatnonzero(p_area == 0)[0]])
            raise ValueError(f"pred_segments lists segment {missing} that is not in pred_map")
        g_area = np.bincount(g_row, minlength=n_g + 1)[:n_g]
        void = inter[n_g]  # P, overlap of each predicted segment with GT void
        inter = inter[:n_g]  # G x P

        # matching: same class, non-crowd GT, IoU > 0.5 (unique by construction)
        union = p_area[None, :] + g_area[:, None] - inter - void[None, :]
        iou = np.where(inter > 0, inter / np.maximum(union, 1), 0.0)  # union >= inter
        ok = (g_cls[:, None] == p_cls[None, :]) & ~g_crowd[:, None] & (iou > 0.5)
        gi, pi = np.nonzero(ok)
        np.add.at(self.tp, g_cls[gi], 1)
        np.add.at(self.iou, g_cls[gi], iou[gi, pi])
        g_matched = np.zeros(n_g, dtype=bool)
        g_matched[gi] = True
        p_matched = np.zeros(n_p, dtype=bool)
        p_matched[pi] = True

        # false negatives: unmatched non-crowd GT
        fn = ~g_matched & ~g_crowd
        np.add.at(self.fn, g_cls[fn], 1)

        # false positives: unmatched predictions not mostly on void + crowd of their class
        crowd_row: dict[int, int] = {}
        for row in np.flatnonzero(g_crowd):
            crowd_row[int(g_cls[row])] = int(row)  # last one per class wins, as panopticapi
        for col in np.flatnonzero(~p_matched):
            cls = int(p_cls[col])
            ignored = int(void[col])
            if cls in crowd_row:
                ignored += int(inter[crowd_row[cls], col])
            if ignored / int(p_area[col]) > 0.5:
                continue
            self.fp[cls] += 1
        self.num_images += 1

    def compute(self) -> dict[str, Any]:
        """-> {"pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st": float
        percent (NaN when no class of that group appeared), "n", "n_th", "n_st": number of
        classes averaged, "num_images", "per_class": list (one per train id) of {"pq", "sq",
        "rq" (percent; 0 for a class that never appeared), "tp", "fp", "fn", "iou_sum",
        "is_thing", "valid" (TP + FP + FN > 0)}}."""
        per_class = []
        for c in range(self.num_classes):
            tp, fp, fn, iou = int(self.tp[c]), int(self.fp[c]), int(self.fn[c]), float(self.iou[c])
            valid = tp + fp + fn > 0
            denom = tp + 0.5 * fp + 0.5 * fn
            per_class.append(
                {
                    "pq": 100.0 * iou / denom if valid else 0.0,
                    "sq": 100.0 * iou / tp if tp else 0.0,
                    "rq": 100.0 * tp / denom if valid else 0.0,
                    "tp": tp,
                    "fp": fp,
                    "fn": fn,
                    "iou_sum": iou,
                    "is_thing": bool(self.is_thing[c]),
                    "valid": valid,
                }
            )
        out: dict[str, Any] = {}
        for suffix, keep in (("", None), ("_th", True), ("_st", False)):
            rows = [r for r in per_class if r["valid"] and (keep is None or r["is_thing"] == keep)]
            for key in ("pq", "sq", "rq"):
                out[key + suffix] = (
                    math.fsum(r[key] for r in rows) / len(rows) if rows else float("nan")
                )
            out["n" + suffix] = len(rows)
        out["num_images"] = self.num_images
        out["per_class"] = per_class
        return out


def _index_of(values: np.ndarray, keys: np.ndarray, default: int) -> np.ndarray:
    """For each value its position in ``keys`` (unique), or ``default`` when absent."""
    if keys.size == 0:
        return np.full(values.shape, default, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, values), 0, keys.size - 1)
    found = sorted_keys[pos] == values
    return np.where(found, order[pos], default).astype(np.int64)


def _read_id_png(path: str) -> np.ndarray:
    """COCO panoptic PNG -> H x W segment ids."""
    from ..data.imageio import decode_bgr

    # header checked (regular file, MAX_IMAGE_PIXELS) before decoding
    bgr = decode_bgr(path, "panoptic PNG", DatasetError, orient=False)
    return rgb_to_id(bgr[..., ::-1])


def pq_from_files(
    gt_json: PathLike, gt_png_dir: PathLike, pred_json: PathLike, pred_png_dir: PathLike
) -> dict[str, Any]:
    """PQ over a COCO panoptic folder pair (JSON + one PNG per image), like panopticapi's
    ``pq_compute``. Classes are the GT JSON's ``categories`` in list order (train id = index);
    ``isthing`` splits things / stuff. Every GT image needs a prediction (ValueError otherwise);
    predictions for other images are ignored. GT areas are counted from the PNGs.

    Returns ``PanopticQuality.compute()``, with ``category_id`` added to each ``per_class``
    entry and ``category_ids`` (train id -> COCO category id).
    """
    gt, pred = read_json(gt_json), read_json(pred_json)
    for name, data, keys in (
        (gt_json, gt, ("categories", "annotations")),
        (pred_json, pred, ("annotations",)),
    ):
        for key in keys:
            if not isinstance(data, Mapping) or key not in data:
                raise DatasetError(f"{name}: no {key!r} field (a COCO panoptic file lists {key})")
    try:
        return _pq(gt, pred, gt_png_dir, pred_png_dir)
    except (KeyError, TypeError) as e:
        raise DatasetError(
            f"{gt_json} / {pred_json}: malformed COCO panoptic annotations "
            f"({type(e).__name__}: {e})"
        ) from e


def _pq(gt: Any, pred: Any, gt_png_dir: PathLike, pred_png_dir: PathLike) -> dict[str, Any]:
    cats = gt["categories"]
    cat_ids = [int(c["id"]) for c in cats]
    train_id = {cid: i for i, cid in enumerate(cat_ids)}
    metric = PanopticQuality(len(cats), [bool(c.get("isthing", 0)) for c in cats])
    pred_by_image = {a["image_id"]: a for a in pred["annotations"]}

    def segments(ann: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
        out = []
        for s in ann["segments_info"]:
            if int(s["category_id"]) not in train_id:
                raise ValueError(f"{name}: unknown category_id {s['category_id']}")
            out.append(
                {
                    "id": s["id"],
                    "class": train_id[int(s["category_id"])],
                    "iscrowd": s.get("iscrowd", 0),
                }
            )
        return out

    for gt_ann in gt["annotations"]:
        image_id = gt_ann["image_id"]
        if image_id not in pred_by_image:
            raise ValueError(f"no prediction for the image with id {image_id}")
        pred_ann = pred_by_image[image_id]
        gt_map = _read_id_png(os.path.join(gt_png_dir, gt_ann["file_name"]))
        pred_map = _read_id_png(os.path.join(pred_png_dir, pred_ann["file_name"]))
        metric.update(
            pred_map, segments(pred_ann, "prediction"), gt_map, segments(gt_ann, "ground truth")
        )
    out = metric.compute()
    for row, cid in zip(out["per_class"], cat_ids):
        row["category_id"] = cid
    out["category_ids"] = cat_ids
    return out
