"""Interactive metrics: click placement, single-click mIoU and NoC on synthetic predictors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapsam_edge.eval import (
    InteractiveEval,
    click_at_max_distance,
    click_session,
    first_clicks,
    next_click,
    positive_only,
)


def rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_click_at_center_and_never_on_the_border():
    x, y, d = click_at_max_distance(rect(21, 31, 5, 16, 10, 21))  # 11 x 11 square
    assert (x, y) == (15, 10) and d == pytest.approx(6.0)
    # a mask touching the left image border: the padding keeps the click off the border
    x, y, _ = click_at_max_distance(rect(20, 20, 0, 20, 0, 10))
    assert x in (4, 5) and 4 <= y <= 15
    assert click_at_max_distance(np.zeros((5, 5), bool)) is None
    # already clicked pixels are skipped
    m = rect(9, 9, 2, 7, 2, 7)
    clicked = np.zeros_like(m)
    clicked[4, 4] = True
    x, y, _ = click_at_max_distance(m, clicked)
    assert (x, y) != (4, 4) and m[y, x]


def test_perfect_predictor_needs_one_click():
    gts = np.stack([rect(32, 40, 2, 12, 3, 20), rect(32, 40, 15, 30, 5, 38)])
    calls = []

    def make(gt):
        def predict(clicks):
            calls.append(list(clicks))
            return gt.copy()

        return predict

    ev = InteractiveEval()
    for gt in gts:  # one predictor per object: it knows the answer
        ev.update(gt[None], make(gt))
    r = ev.compute()
    assert r["miou"] == 100.0
    assert all(r[f"noc@{t}"] == 1.0 for t in (50, 80, 85, 90))
    assert all(r[f"nof@{t}"] == 0 for t in (50, 80, 85, 90))
    assert r["num_segments"] == r["num_noc_segments"] == 2
    assert [len(c) for c in calls] == [1, 1] and all(c[0][2] for c in calls)


def test_bad_predictor_fails_after_max_clicks():
    gt = rect(24, 24, 4, 20, 4, 20)
    seen = []

    def predict(clicks):
        seen.append(list(clicks))
        return np.zeros((24, 24), np.uint8)

    ev = InteractiveEval(max_clicks=20)
    noc = ev.update(gt[None], predict)
    r = ev.compute()
    assert r["miou"] == 0.0
    assert noc.tolist() == [[20, 20, 20, 20]]
    assert r["noc@90"] == 20.0 and r["nof@90"] == 1 and r["nof@50"] == 1
    assert len(seen) == 20
    last = seen[-1]
    assert all(c[2] for c in last)  # all false negatives -> positive clicks
    assert len({(c[0], c[1]) for c in last}) == 20  # never the same pixel twice
    assert all(gt[c[1], c[0]] for c in last)


def test_noc_counts_clicks_of_a_growing_predictor():
    gt = rect(40, 60, 10, 30, 10, 50)  # 20 x 40

    def predict(clicks):  # reveals 10 more columns of the GT per click
        return rect(40, 60, 10, 30, 10, 10 + 10 * len(clicks))

    ious, clicks = click_session(gt, predict, max_clicks=20)
    assert ious == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(c[2] for c in clicks)
    ev = InteractiveEval()
    ev.update(gt[None], predict)
    r = ev.compute()
    assert r["miou"] == pytest.approx(25.0)
    assert (r["noc@50"], r["noc@80"], r["noc@85"], r["noc@90"]) == (2.0, 4.0, 4.0, 4.0)


def test_negative_clicks_and_the_positive_only_wrapper():
    gt = rect(40, 40, 5, 20, 5, 20)
    blob = rect(40, 40, 24, 38, 24, 38)  # a false-positive region the model adds

    def predict(clicks):  # a model that understands negative clicks
        out = gt.copy()
        if not any(not c[2] for c in clicks):
            out |= blob
        return out

    ious, clicks = click_session(gt, predict)
    assert [c[2] for c in clicks] == [True, False]
    assert blob[clicks[1][1], clicks[1][0]] and ious[-1] == 1.0

    received = []

    def predict_points(points):  # a positive-points-only model
        received.append(points.copy())
        return predict([(int(x), int(y), True) for x, y in points])

    ev = InteractiveEval(max_clicks=5)
    ev.update(gt[None], positive_only(predict_points))
    r = ev.compute()
    assert r["noc@50"] == 1.0  # IoU 225 / 421 after the first click
    assert r["noc@90"] == 5.0 and r["nof@90"] == 1  # the negative clicks never reach it
    assert all(p.shape == (1, 2) and p.dtype == np.float32 for p in received)


def test_choice_rule_distance_vs_area():
    gt = rect(30, 60, 0, 30, 0, 40)
    pred = gt.copy()
    pred[:, 0:40:2] = False  # 20 one-pixel-wide false-negative stripes: 600 px, distance 1
    pred[10:16, 48:54] = True  # a 6 x 6 false-positive square: 36 px, distance 3
    x, y, positive = next_click(gt, pred, rule="distance")
    assert positive is False and 48 <= x < 54 and 10 <= y < 16
    x, y, positive = next_click(gt, pred, rule="area")
    assert positive is True and gt[y, x] and not pred[y, x]
    assert next_click(gt, gt.copy()) is None
    with pytest.raises(ValueError):
        next_click(gt, pred, rule="nearest")


def test_precomputed_single_click_masks():
    gts = np.stack(
        [rect(20, 20, 0, 10, 0, 10), rect(20, 20, 10, 20, 10, 20), np.zeros((20, 20), bool)]
    )
    pts = first_clicks(gts)
    assert pts[0].tolist() in ([4, 4], [5, 5], [4, 5], [5, 4]) and pts[2].tolist() == [-1, -1]
    preds = np.stack([rect(20, 20, 0, 10, 0, 5), gts[1], np.zeros((20, 20), bool)])
    ev = InteractiveEval()
    ious = ev.update_masks(preds, gts)
    assert ious[:2].tolist() == [0.5, 1.0] and math.isnan(ious[2])
    r = ev.compute()
    assert r["miou"] == pytest.approx(75.0)
    assert r["num_skipped"] == 1 and r["num_noc_segments"] == 0 and math.isnan(r["noc@90"])
