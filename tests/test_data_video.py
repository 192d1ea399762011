"""Synthetic videos: determinism, static background, consistent instance ids."""

from __future__ import annotations

import numpy as np

from rapsam_edge.data.classes import CLASSES
from rapsam_edge.data.segments import segment_stats
from rapsam_edge.data.video import VideoConfig, generate_video


def test_video_is_deterministic():
    a, b = generate_video(3, size=(96, 128), length=4), generate_video(3, size=(96, 128), length=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.ids, b.ids)
    assert a.segments == b.segments and a.classes == b.classes
    c = generate_video(4, size=(96, 128), length=4)
    assert not np.array_equal(a.images, c.images)


def test_video_segments_match_maps_and_stuff_is_static():
    v = generate_video(11, size=(120, 160), length=6)
    assert v.images.shape == (6, 120, 160, 3) and v.ids.shape == (6, 120, 160)
    stuff_ids = {sid for sid, c in v.classes.items() if not CLASSES[c].is_thing}
    for t in range(6):
        stats = segment_stats(v.ids[t])
        assert sorted(stats) == [s.id for s in v.segments[t]]
        for s in v.segments[t]:
            assert (s.area, s.bbox) == stats[s.id]
            assert s.class_id == v.classes[s.id]
        # the background is static: a stuff pixel stays the same stuff id unless covered
        if t:
            both = np.isin(v.ids[t - 1], list(stuff_ids)) & np.isin(v.ids[t], list(stuff_ids))
            assert np.array_equal(v.ids[t - 1][both], v.ids[t][both])


def test_ids_follow_slow_objects():
    """With slow motion, an object's masks in consecutive frames overlap strongly; an id
    always has the same class; ids of different objects differ."""
    cfg = VideoConfig(speed_range=(0.5, 1.5), max_growth=0.0, enter_prob=0.0)
    checked = 0
    for seed in range(4):
        v = generate_video(seed, size=(128, 128), length=5, config=cfg)
        things = [sid for sid, c in v.classes.items() if CLASSES[c].is_thing]
        assert len(things) == len(set(things)) >= cfg.min_things
        for sid in things:
            for t in range(1, 5):
                a, b = v.ids[t - 1] == sid, v.ids[t] == sid
                if a.sum() > 300 and b.sum() > 300:
                    iou = (a & b).sum() / (a | b).sum()
                    assert iou > 0.5, (seed, sid, t, iou)
                    checked += 1
    assert checked > 10


def test_objects_enter_and_leave():
    cfg = VideoConfig(speed_range=(6.0, 8.0), enter_prob=1.0, min_things=4, max_things=6)
    appear = vanish = 0
    for seed in range(6):
        v = generate_video(seed, size=(96, 96), length=16, config=cfg)
        for sid, c in v.classes.items():
            if not CLASSES[c].is_thing:
                continue
            present = [any(s.id == sid for s in f) for f in v.segments]
            appear += (not present[0]) and any(present)
            vanish += any(present) and not present[-1]
    assert appear > 0 and vanish > 0
