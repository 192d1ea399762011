"""Prompt sampling (points inside targets, jittered boxes) and the evaluation click."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rapsam_edge.data.prompts import click_point, sample_prompts
from rapsam_edge.data.scenes import generate_scene
from rapsam_edge.data.segments import segment_stats


def test_prompts_lie_inside_their_targets():
    scene = generate_scene(2, size=(96, 128))
    ids = scene.ids
    p = sample_prompts(ids, np.random.default_rng(0), num_prompts=40, box_jitter=0.1)
    k = 40
    assert p.points.shape == (k, 2) and p.points.dtype == np.int32
    assert p.boxes.shape == (k, 4) and p.masks.shape == (k, 96, 128)
    stats = segment_stats(ids)
    assert set(p.segment_ids.tolist()) == set(stats)  # K >= #segments: all get prompts
    for (x, y), sid, mask, box in zip(p.points, p.segment_ids, p.masks, p.boxes):
        assert ids[y, x] == sid != 0 and mask[y, x]
        assert np.array_equal(mask, ids == sid)
        bx, by, bw, bh = stats[int(sid)][1]
        assert 0 <= box[0] < box[2] <= 128 and 0 <= box[1] < box[3] <= 96
        # each edge moved by at most 10 % of the side
        ref = np.array([bx, by, bx + bw, by + bh], np.float32)
        tol = 0.1 * np.array([bw, bh, bw, bh]) + 1e-3
        assert np.all(np.abs(box - ref) <= tol)
    assert 0 < p.use_box.sum() < k


def test_prompts_are_deterministic_and_cover_stuff():
    ids = generate_scene(5, size=(64, 64)).ids
    a = sample_prompts(ids, np.random.default_rng(3), num_prompts=30)
    b = sample_prompts(ids, np.random.default_rng(3), num_prompts=30)
    c = sample_prompts(ids, np.random.default_rng(4), num_prompts=30)
    for f in ("points", "boxes", "use_box", "segment_ids", "masks"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.points, c.points)
    assert sample_prompts(np.zeros((8, 8), np.int32), np.random.default_rng(0)).points.shape == (
        0,
        2,
    )


def test_points_are_uniform_within_a_segment():
    ids = np.zeros((20, 20), np.int32)
    ids[:, :10] = 1
    ids[:, 10:] = 2
    p = sample_prompts(ids, np.random.default_rng(1), num_prompts=2000)
    assert abs((p.segment_ids == 1).mean() - 0.5) < 0.01  # cycled permutations: balanced
    xs = p.points[p.segment_ids == 1, 0]
    assert xs.min() == 0 and xs.max() == 9 and abs(xs.mean() - 4.5) < 0.5


def test_click_point_is_the_distance_transform_maximum():
    mask = np.zeros((40, 60), bool)
    mask[5:35, 5:25] = True  # 30 x 20 rectangle: centre column 14/15
    mask[10:20, 25:55] = True  # thin arm
    x, y = click_point(mask)
    assert mask[y, x]
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    assert dist[y, x] == dist.max()
    assert 14 <= x <= 15 and 14 <= y <= 25
    # the image border counts as background: a mask touching it is clicked away from it
    edge = np.zeros((10, 30), bool)
    edge[:, :12] = True
    ex, ey = click_point(edge)
    assert 4 <= ex <= 6 and 4 <= ey <= 5
    with pytest.raises(ValueError):
        click_point(np.zeros((4, 4), bool))


def test_click_points_inside_generated_segments():
    scene = generate_scene(9, size=(96, 96))
    for s in scene.segments:
        m = scene.ids == s.id
        x, y = click_point(m)
        assert m[y, x]
