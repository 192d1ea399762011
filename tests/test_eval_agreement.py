"""Cross-precision agreement: per-mask IoU and panoptic label-map agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapsam_edge.eval import label_map_agreement, mask_agreement, mask_ious


def test_mask_ious_and_summary():
    a = np.zeros((3, 6, 6), bool)
    a[0, :3] = True  # 18 px
    a[1, :, :2] = True  # 12 px
    b = a.copy()
    b[0, 3] = True  # +6 px: IoU 18 / 24
    # mask 2 empty in both: they agree
    assert mask_ious(a, b).tolist() == pytest.approx([0.75, 1.0, 1.0])
    r = mask_agreement(a.astype(np.uint8), b, threshold=0.9)
    assert r["mean_iou"] == pytest.approx(2.75 / 3)
    assert r["min_iou"] == pytest.approx(0.75)
    assert r["frac_above"] == pytest.approx(2 / 3)
    assert r["n"] == 3
    empty = mask_agreement(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool))
    assert empty["n"] == 0 and math.isnan(empty["mean_iou"])
    with pytest.raises(ValueError):
        mask_ious(a, b[:2])
    with pytest.raises(ValueError):
        mask_ious(a.astype(np.float32), b)


def test_label_maps_agree_up_to_renumbering():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, (20, 30))
    perm = np.array([0, 17, 4, 9, 33, 2])  # void stays 0, other ids renumbered
    b = perm[a]
    r = label_map_agreement(a, b)
    assert r["pixel_agreement"] == 1.0
    assert sorted((p[0], p[1]) for p in r["pairs"]) == [(i, int(perm[i])) for i in range(1, 6)]
    assert r["mean_pair_iou"] == 1.0 and r["unpaired_a"] == [] and r["unpaired_b"] == []


def test_label_map_disagreements():
    a = np.zeros((10, 10), np.int32)
    a[:, :5] = 1
    a[:, 5:] = 2
    b = np.where(a == 1, 7, 8)
    b[0, :] = 0  # 10 px become void in b: they disagree
    b[1, :3] = 8  # 3 px of segment 1 go to segment 2's partner
    r = label_map_agreement(a, b)
    assert r["pixel_agreement"] == pytest.approx((100 - 10 - 3) / 100)
    assert {(p[0], p[1]) for p in r["pairs"]} == {(1, 7), (2, 8)}
    assert r["unpaired_a"] == [] and r["unpaired_b"] == []  # void is never "unpaired"
    # void treated as an ordinary id: the void row of b pairs with nothing in a
    r2 = label_map_agreement(a, b, void_id=None)
    assert r2["pixel_agreement"] == pytest.approx(r["pixel_agreement"])
    assert r2["unpaired_b"] == [0]
    # a segment that changed class is not paired
    r3 = label_map_agreement(a, b, classes_a={1: 0, 2: 1}, classes_b={7: 0, 8: 2})
    assert {(p[0], p[1]) for p in r3["pairs"]} == {(1, 7)}
    assert r3["pixel_agreement"] == pytest.approx((50 - 5 - 3) / 100)
    assert r3["unpaired_a"] == [2] and r3["unpaired_b"] == [8]
    # void agrees with void only
    v = label_map_agreement(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32))
    assert v["pixel_agreement"] == 1.0 and v["pairs"] == []
    with pytest.raises(ValueError):
        label_map_agreement(a, b, classes_a={1: 0})


def test_split_segment_pairs_with_the_larger_part():
    a = np.ones((4, 10), np.int32)  # one segment
    b = np.ones((4, 10), np.int32)
    b[:, 7:] = 2  # split 28 / 12
    r = label_map_agreement(a, b)
    assert r["pairs"] == [(1, 1, pytest.approx(0.7))]
    assert r["pixel_agreement"] == pytest.approx(0.7)
    assert r["unpaired_b"] == [2]
