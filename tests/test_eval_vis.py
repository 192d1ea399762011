"""Video instance AP: COCOeval parity on single-frame videos and a hand-computed video."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from rapsam_edge.eval import VideoInstanceAP, tube_ious, vis_ap_from_json

H, W = 24, 32
GT_CATS = [2, 5, 9, 13]  # 13 has GT but is never predicted
PRED_ONLY_CAT = 11  # predicted, no GT: dropped by both


def _rect(rng, base=None, jitter=0):
    m = np.zeros((H, W), np.uint8)
    if base is None:
        y0, x0 = int(rng.integers(0, H - 6)), int(rng.integers(0, W - 6))
        y1, x1 = int(rng.integers(y0 + 5, min(H, y0 + 14) + 1)), int(rng.integers(x0 + 5, W + 1))
    else:
        ys, xs = np.nonzero(base)
        j = rng.integers(-jitter, jitter + 1, 4)
        y0, x0 = max(0, ys.min() + j[0]), max(0, xs.min() + j[1])
        y1, x1 = max(y0 + 1, ys.max() + 1 + j[2]), max(x0 + 1, xs.max() + 1 + j[3])
    m[y0:y1, x0:x1] = 1
    return m


def _random_dataset(rng, n_images=14):
    gts, dts = [], []
    for img in range(1, n_images + 1):
        for _ in range(int(rng.integers(0, 5))):
            gts.append(
                {"video_id": img, "category_id": int(rng.choice(GT_CATS)), "mask": _rect(rng)}
            )
    for g in gts:
        for _ in range(int(rng.integers(0, 3))):
            cat = (
                g["category_id"]
                if rng.random() < 0.85
                else int(rng.choice([*GT_CATS[:3], PRED_ONLY_CAT]))
            )
            if cat == 13:  # never predicted as itself
                cat = 2
            dts.append(
                {
                    "video_id": g["video_id"],
                    "category_id": cat,
                    "mask": _rect(rng, g["mask"], int(rng.integers(0, 3))),
                    "score": 0.3 + 0.7 * float(rng.random()),
                }
            )
    for _ in range(12):  # background false positives
        cat = int(rng.choice([2, 5, 9, PRED_ONLY_CAT]))
        dts.append(
            {
                "video_id": int(rng.integers(1, n_images + 1)),
                "category_id": cat,
                "mask": _rect(rng),
                "score": 0.6 * float(rng.random()),
            }
        )
    for _ in range(13):  # one image with more than 10 detections of one category (AR10)
        dts.append(
            {"video_id": 1, "category_id": 5, "mask": _rect(rng), "score": float(rng.random())}
        )
    return gts, dts


def _cocoeval(gts, dts, n_images):
    gt = {
        "images": [{"id": i, "height": H, "width": W} for i in range(1, n_images + 1)],
        "categories": [{"id": c} for c in [*GT_CATS, PRED_ONLY_CAT]],
        "annotations": [],
    }
    for k, g in enumerate(gts, start=1):
        rle = mask_utils.encode(np.asfortranarray(g["mask"]))
        gt["annotations"].append(
            {
                "id": k,
                "image_id": g["video_id"],
                "category_id": g["category_id"],
                "segmentation": rle,
                "area": float(g["mask"].sum()),
                "iscrowd": 0,
                "bbox": list(mask_utils.toBbox(rle)),
            }
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        res = [
            {
                "image_id": d["video_id"],
                "category_id": d["category_id"],
                "score": d["score"],
                "segmentation": mask_utils.encode(np.asfortranarray(d["mask"])),
            }
            for d in dts
        ]
        coco_dt = coco_gt.loadRes(res)
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _ytvis(gts, dts, n_images):
    def rle(m):
        r = mask_utils.encode(np.asfortranarray(m))
        return {"size": r["size"], "counts": r["counts"].decode("ascii")}

    gt = {
        "videos": [{"id": i, "length": 1, "height": H, "width": W} for i in range(1, n_images + 1)],
        "categories": [{"id": c} for c in [*GT_CATS, PRED_ONLY_CAT]],
        "annotations": [
            {
                "id": k,
                "video_id": g["video_id"],
                "category_id": g["category_id"],
                "segmentations": [rle(g["mask"])],
                "iscrowd": 0,
            }
            for k, g in enumerate(gts, start=1)
        ],
    }
    pred = [
        {
            "video_id": d["video_id"],
            "category_id": d["category_id"],
            "score": d["score"],
            "segmentations": [rle(d["mask"])],
        }
        for d in dts
    ]
    return gt, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_frame_videos_match_cocoeval(seed: int):
    rng = np.random.default_rng(seed)
    gts, dts = _random_dataset(rng)
    stats = _cocoeval(gts, dts, 14)
    ours = vis_ap_from_json(*_ytvis(gts, dts, 14))
    assert ours["ap"] == pytest.approx(100 * stats[0], abs=1e-6)
    assert ours["ap50"] == pytest.approx(100 * stats[1], abs=1e-6)
    assert ours["ap75"] == pytest.approx(100 * stats[2], abs=1e-6)
    assert ours["ar1"] == pytest.approx(100 * stats[6], abs=1e-6)
    assert ours["ar10"] == pytest.approx(100 * stats[7], abs=1e-6)
    assert ours["ar100"] == pytest.approx(100 * stats[8], abs=1e-6)
    assert sorted(ours["per_category"]) == sorted({g["category_id"] for g in gts})
    assert 10 < ours["ap"] < 90  # neither trivial nor hopeless


def test_hand_computed_video():
    # 3 frames of 4 x 5; the GT is absent in frame 1
    gt = np.zeros((3, 4, 5), bool)
    gt[0, :2, :3] = True  # 6 px
    gt[2, 0, :3] = True  # 3 px
    a = np.zeros_like(gt)  # score 0.9: frame 0 exact, frame 2 covers 1 of 3
    a[0] = gt[0]
    a[2, 0, 0] = True
    b = gt.copy()  # score 0.8: everything + 1 px in frame 1, where the GT is empty
    b[1, 3, 4] = True
    ious = tube_ious([a, b], [gt])
    # sums over frames: a 7 / 9 (the mean of per-frame IoUs would be 2/3), b 9 / 10
    assert ious[:, 0].tolist() == pytest.approx([7 / 9, 9 / 10])
    # frames given as None / RLE / arrays give the same
    as_list = [gt[0], None, mask_utils.encode(np.asfortranarray(gt[2].astype(np.uint8)))]
    assert tube_ious([a, b], [as_list])[:, 0].tolist() == pytest.approx([7 / 9, 9 / 10])

    m = VideoInstanceAP()
    m.update([gt], [1], [a, b], [1, 1], [0.9, 0.8])
    r = m.compute()
    # thresholds .50-.75 (6): a is TP at rank 1 -> AP 1; .80-.90 (3): a FP, b TP -> AP .5;
    # .95: nothing -> 0. AP = (6 + 1.5) / 10
    assert r["ap"] == pytest.approx(75.0)
    assert r["ap50"] == pytest.approx(100.0) and r["ap75"] == pytest.approx(100.0)
    assert r["ar1"] == pytest.approx(60.0)  # only a: recall 1 at 6 of 10 thresholds
    assert r["ar10"] == pytest.approx(90.0)
    assert r["per_category"] == {1: pytest.approx(75.0)}


def test_crowd_gt_is_ignored_not_a_crash():
    gt = np.zeros((2, 2, 8, 8), bool)
    gt[0, :, :4, :4] = True  # normal
    gt[1, :, 4:, 4:] = True  # crowd
    m = VideoInstanceAP()
    # the higher-scored detection sits on the crowd region: neither TP nor FP
    m.update(list(gt), [3, 3], [gt[1], gt[0]], [3, 3], [0.9, 0.8], gt_iscrowd=[False, True])
    assert m.compute()["ap"] == pytest.approx(100.0)
    m = VideoInstanceAP()
    m.update([gt[1]], [3], [gt[1]], [3], [0.5], gt_iscrowd=[True])  # only crowd GT
    r = m.compute()
    assert math.isnan(r["ap"]) and r["num_categories"] == 0


def test_shape_errors():
    m = VideoInstanceAP()
    with pytest.raises(ValueError, match="same number of frames"):
        m.update([np.zeros((2, 4, 4), bool)], [1], [np.zeros((3, 4, 4), bool)], [1], [0.5])
    with pytest.raises(ValueError, match="differ in length"):
        m.update([np.zeros((2, 4, 4), bool)], [1, 2], [], [], [])


@pytest.mark.parametrize("g1_first", [True, False])
def test_detection_takes_the_best_unmatched_gt(g1_first: bool):
    def band(x0, x1):
        m = np.zeros((H, W), np.uint8)
        m[:10, x0:x1] = 1
        return m

    g1, g2 = band(0, 12), band(4, 16)  # overlapping GT of one category
    d1 = band(3, 16)  # IoU 90/160 with g1, 120/130 with g2
    gts = [
        {"video_id": 1, "category_id": 2, "mask": g1},
        {"video_id": 1, "category_id": 2, "mask": g2},
    ]
    if not g1_first:  # neither the first nor the last GT above the threshold may win
        gts.reverse()
    dts = [
        {"video_id": 1, "category_id": 2, "mask": d1, "score": 0.9},
        {"video_id": 1, "category_id": 2, "mask": g1.copy(), "score": 0.8},
    ]
    ours = vis_ap_from_json(*_ytvis(gts, dts, 1))
    # t <= .90: d1 -> g2, d2 -> g1, AP 1; t = .95: d1 FP, d2 TP -> precision .5 up to recall .5
    assert ours["ap"] == pytest.approx(100 * (9 + 51 * 0.5 / 101) / 10)
    assert ours["ap"] == pytest.approx(100 * _cocoeval(gts, dts, 1)[0], abs=1e-6)
