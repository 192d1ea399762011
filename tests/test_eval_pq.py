"""Panoptic quality: hand-computed cases and a cross-check against hotcoco's panopticapi port."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hotcoco.panoptic import pq_compute

from rapsam_edge.contract.panoptic_ids import id_to_rgb
from rapsam_edge.eval import PanopticQuality, pq_from_files

# (COCO category id, isthing): non-contiguous ids, 4 things and 3 stuff
CATS = [(1, 1), (3, 1), (7, 1), (18, 1), (92, 0), (100, 0), (130, 0)]
IS_THING = [bool(t) for _, t in CATS]


def seg(sid: int, cls: int, crowd: int = 0) -> dict[str, int]:
    return {"id": sid, "class": cls, "iscrowd": crowd}


def test_perfect_prediction_is_100():
    gt = np.zeros((8, 10), np.int32)
    gt[:4] = 5  # stuff
    gt[4:, :5] = 7  # thing
    gt[4:, 5:] = 9  # thing
    segs = [seg(5, 4), seg(7, 0), seg(9, 1)]
    pred = gt * 3  # other ids, same segments
    psegs = [seg(15, 4), seg(21, 0), seg(27, 1)]
    m = PanopticQuality(len(CATS), IS_THING)
    m.update(pred, psegs, gt, segs)
    r = m.compute()
    for k in ("pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st"):
        assert r[k] == pytest.approx(100.0), k
    assert (r["n"], r["n_th"], r["n_st"]) == (3, 2, 1)
    assert r["per_class"][2]["valid"] is False  # class never seen: not averaged


def test_false_positive_and_iou_threshold():
    gt = np.zeros((10, 10), np.int32)
    gt[:, :5] = 1  # class 0, 50 px
    gt[:2, 5:] = 2  # class 1, 10 px
    gt[2:, 5:] = 4  # class 1, 40 px
    pred = np.zeros_like(gt)
    pred[:, :5] = 1  # exact match
    pred[:1, 5:] = 2  # class 1, covers 5 of 10 px: IoU exactly 0.5 -> no match
    pred[5:, 5:] = 3  # class 2 (no GT of it) on GT 4: FP
    m = PanopticQuality(3, [True, True, False])
    m.update(pred, [seg(1, 0), seg(2, 1), seg(3, 2)], gt, [seg(1, 0), seg(2, 1), seg(4, 1)])
    r = m.compute()
    pc = r["per_class"]
    assert (pc[0]["tp"], pc[0]["fp"], pc[0]["fn"]) == (1, 0, 0)
    assert (pc[1]["tp"], pc[1]["fp"], pc[1]["fn"]) == (0, 1, 2)
    assert (pc[2]["tp"], pc[2]["fp"], pc[2]["fn"]) == (0, 1, 0)
    assert r["pq"] == pytest.approx(100 / 3)
    assert r["pq_th"] == pytest.approx(50.0)
    assert r["pq_st"] == 0.0
    assert r["sq"] == pytest.approx(100 / 3)  # SQ of a class without TP is 0 in the mean


def test_void_excluded_from_iou_and_false_positives():
    gt = np.zeros((10, 10), np.int32)
    gt[:4, :4] = 1  # 16 px, class 0; the rest is void (id 0) ...
    gt[6:, 6:] = 42  # ... and 42 is unlabeled (not in gt_segments): void too
    pred = np.zeros_like(gt)
    pred[:4, :6] = 1  # 16 px on the GT segment + 8 on void: IoU 16 / (24 + 16 - 16 - 8) = 1
    pred[6:, 6:] = 2  # entirely on unlabeled GT: ignored
    pred[8:, :4] = 3  # 8 px: 4 on void ... and 4 on a non-void GT segment below
    gt[9:, :4] = 4
    m = PanopticQuality(2, [True, False])
    m.update(pred, [seg(1, 0), seg(2, 0), seg(3, 1)], gt, [seg(1, 0), seg(4, 0)])
    pc = m.compute()["per_class"]
    assert pc[0]["tp"] == 1 and pc[0]["iou_sum"] == pytest.approx(1.0)
    assert pc[0]["fp"] == 0  # segment 2 is all void
    assert pc[0]["fn"] == 1  # GT 4 (class 0) unmatched: pred 3 is class 1
    assert pc[1]["fp"] == 1  # exactly half on void is not "more than half": counted


def test_crowd_regions():
    gt = np.zeros((10, 10), np.int32)
    gt[:, :5] = 1  # crowd of class 0
    gt[:, 5:] = 2  # crowd of class 1
    pred = np.zeros_like(gt)
    pred[:, :3] = 1  # class 0 on the class-0 crowd: ignored
    pred[:, 3:5] = 2  # class 1 on the class-0 crowd: a false positive
    pred[:, 5:] = 3  # class 1 covering its crowd completely: never a match, ignored
    m = PanopticQuality(2, [True, True])
    m.update(pred, [seg(1, 0), seg(2, 1), seg(3, 1)], gt, [seg(1, 0, 1), seg(2, 1, 1)])
    pc = m.compute()["per_class"]
    assert [(c["tp"], c["fp"], c["fn"]) for c in pc] == [(0, 0, 0), (0, 1, 0)]


def test_accumulates_over_images_and_checks_inputs():
    m = PanopticQuality(2, [True, False])
    gt = np.ones((4, 4), np.int32)
    m.update(gt.copy(), [seg(1, 0)], gt, [seg(1, 0)])
    m.update(gt.copy(), [seg(1, 1)], gt, [seg(1, 0)])  # wrong class: FN + FP
    r = m.compute()
    assert r["num_images"] == 2
    assert r["per_class"][0]["pq"] == pytest.approx(100 * 1 / (1 + 0.5))
    assert r["pq_st"] == 0.0
    with pytest.raises(ValueError, match="not in pred_segments"):
        m.update(gt * 7, [seg(1, 0)], gt, [seg(1, 0)])
    with pytest.raises(ValueError, match="not in pred_map"):
        m.update(gt, [seg(1, 0), seg(2, 0)], gt, [seg(1, 0)])
    with pytest.raises(ValueError, match="class 5"):
        m.update(gt, [seg(1, 5)], gt, [seg(1, 0)])
    m.reset()
    assert math.isnan(m.compute()["pq"])


# ----------------------------------------------------------------- random COCO panoptic folders
def _paint(rng, h, w, n, base=None, jitter=0):
    """Paint n rectangles (later ones on top); with base, jitter those rectangles."""
    m = np.zeros((h, w), np.int64)
    rects = []
    for k in range(n):
        if base is None:
            y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
            y1 = int(rng.integers(y0 + 2, min(h, y0 + 30) + 1))
            x1 = int(rng.integers(x0 + 2, min(w, x0 + 30) + 1))
        else:
            j = rng.integers(-jitter, jitter + 1, 4)
            y0 = int(np.clip(base[k][0] + j[0], 0, h - 1))
            x0 = int(np.clip(base[k][1] + j[1], 0, w - 1))
            y1 = max(y0 + 1, min(h, base[k][2] + int(j[2])))
            x1 = max(x0 + 1, min(w, base[k][3] + int(j[3])))
        rects.append((y0, x0, y1, x1))
        m[y0:y1, x0:x1] = k + 1
    return m, rects


def _random_pair(rng, h=36, w=44):
    """(pred_map, pred_segments, gt_map, gt_segments) with void, crowd, things and stuff."""
    n = int(rng.integers(3, 10))
    gt_idx, rects = _paint(rng, h, w, n)
    cls = rng.integers(0, len(CATS), n)
    crowd = np.zeros(n, bool)
    for k in rng.permutation(n)[: int(rng.integers(0, 3))]:
        if not crowd[cls == cls[k]].any():  # at most one crowd region per class, as COCO
            crowd[k] = True
    for _ in range(int(rng.integers(0, 3))):  # void patches
        y0, x0 = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        gt_idx[y0 : y0 + int(rng.integers(2, 12)), x0 : x0 + int(rng.integers(2, 12))] = 0
    pred_idx, _ = _paint(rng, h, w, n, base=rects, jitter=int(rng.integers(0, 6)))
    pcls = cls.copy()
    flip = rng.random(n) < 0.2
    pcls[flip] = rng.integers(0, len(CATS), int(flip.sum()))
    for k in np.flatnonzero(rng.random(n) < 0.15):  # dropped segments -> predicted void
        pred_idx[pred_idx == k + 1] = 0
    extra = int(rng.integers(0, 4))
    pcls = np.concatenate([pcls, rng.integers(0, len(CATS), extra)])
    for e in range(extra):
        y0, x0 = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        pred_idx[y0 : y0 + int(rng.integers(2, 15)), x0 : x0 + int(rng.integers(2, 15))] = n + e + 1

    def relabel(idx, classes, crowd_flags=None):
        present = [int(k) for k in np.unique(idx) if k > 0]
        ids = 1 + rng.choice((1 << 24) - 1, len(present), replace=False)
        out, segs = np.zeros_like(idx), []
        for k, sid in zip(present, ids):
            out[idx == k] = sid
            segs.append(
                seg(
                    int(sid),
                    int(classes[k - 1]),
                    int(crowd_flags[k - 1]) if crowd_flags is not None else 0,
                )
            )
        return out, segs

    gmap, gsegs = relabel(gt_idx, cls, crowd)
    pmap, psegs = relabel(pred_idx, pcls)
    return pmap, psegs, gmap, gsegs


def _write_coco(root: Path, pairs) -> dict[str, tuple[str, str]]:
    cats = [{"id": cid, "name": f"c{cid}", "isthing": t, "supercategory": "x"} for cid, t in CATS]
    out = {}
    for kind in ("gt", "pred"):
        folder = root / kind
        folder.mkdir()
        anns, images = [], []
        for i, (pmap, psegs, gmap, gsegs) in enumerate(pairs):
            idmap, segs = (gmap, gsegs) if kind == "gt" else (pmap, psegs)
            name = f"{i:04d}.png"
            assert cv2.imwrite(str(folder / name), id_to_rgb(idmap)[..., ::-1])  # RGB -> BGR
            info = []
            for s in segs:
                e = {"id": s["id"], "category_id": CATS[s["class"]][0]}
                if kind == "gt":
                    area = int(np.count_nonzero(idmap == s["id"]))
                    e.update(iscrowd=s["iscrowd"], area=area, bbox=[0, 0, 1, 1])
                info.append(e)
            anns.append({"image_id": i + 1, "file_name": name, "segments_info": info})
            images.append(
                {
                    "id": i + 1,
                    "file_name": f"{i:04d}.jpg",
                    "height": idmap.shape[0],
                    "width": idmap.shape[1],
                }
            )
        path = root / f"{kind}.json"
        path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
        out[kind] = (str(path), str(folder))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_hotcoco_on_random_folders(tmp_path: Path, seed: int):
    rng = np.random.default_rng(seed)
    pairs = [_random_pair(rng) for _ in range(12)]
    f = _write_coco(tmp_path, pairs)
    ref = pq_compute(f["gt"][0], f["pred"][0], gt_folder=f["gt"][1], pred_folder=f["pred"][1])
    ours = pq_from_files(f["gt"][0], f["gt"][1], f["pred"][0], f["pred"][1])
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        assert ours["n" + suffix] == ref[group]["n"]
        for key in ("pq", "sq", "rq"):
            assert ours[key + suffix] == pytest.approx(100 * ref[group][key], abs=1e-6), (
                group,
                key,
            )
    for row in ours["per_class"]:
        r = ref["per_class"][row["category_id"]]
        assert (row["tp"], row["fp"], row["fn"]) == (r["tp"], r["fp"], r["fn"])
        assert row["pq"] == pytest.approx(100 * r["pq"], abs=1e-6)
    # the in-memory accumulator gives the same as the folder reader
    m = PanopticQuality(len(CATS), IS_THING)
    for pair in pairs:
        m.update(*pair)
    assert m.compute()["pq"] == pytest.approx(ours["pq"], abs=1e-9)
    # the random data exercises every rule: matches, FPs, FNs, crowd
    total = {k: sum(r[k] for r in ours["per_class"]) for k in ("tp", "fp", "fn")}
    assert min(total.values()) > 5
    assert any(s["iscrowd"] for *_, gsegs in pairs for s in gsegs)


def test_missing_prediction_raises(tmp_path: Path):
    rng = np.random.default_rng(7)
    f = _write_coco(tmp_path, [_random_pair(rng)])
    pred = json.loads(Path(f["pred"][0]).read_text())
    pred["annotations"][0]["image_id"] = 99
    Path(f["pred"][0]).write_text(json.dumps(pred))
    with pytest.raises(ValueError, match="no prediction"):
        pq_from_files(f["gt"][0], f["gt"][1], f["pred"][0], f["pred"][1])


def test_eval_package_never_imports_torch():
    code = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "import rapsam_edge.eval\n"
        "assert 'torch' not in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_two_crowd_regions_of_one_class_follow_panopticapi(tmp_path: Path):
    """panopticapi keeps only the last crowd segment of a class per image; hotcoco agrees."""
    gt = np.zeros((10, 10), np.int64)
    gt[:, :5] = 1
    gt[:, 5:] = 2
    pred = np.zeros_like(gt)
    pred[:, :4] = 3  # on the FIRST crowd region of its class: still a false positive
    pair = (pred, [seg(3, 0)], gt, [seg(1, 0, 1), seg(2, 0, 1)])
    f = _write_coco(tmp_path, [pair])
    ref = pq_compute(f["gt"][0], f["pred"][0], gt_folder=f["gt"][1], pred_folder=f["pred"][1])
    ours = pq_from_files(f["gt"][0], f["gt"][1], f["pred"][0], f["pred"][1])["per_class"][0]
    r = ref["per_class"][CATS[0][0]]
    assert (ours["tp"], ours["fp"], ours["fn"]) == (r["tp"], r["fp"], r["fn"]) == (0, 1, 0)
