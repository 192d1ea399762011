"""Synthetic vocabulary and scene generator: table consistency, determinism, segment stats."""

from __future__ import annotations

import numpy as np
import pytest

from rapsam_edge.data import classes as C
from rapsam_edge.data.scenes import SceneConfig, generate_scene
from rapsam_edge.data.segments import segment_stats
from rapsam_edge.data.shapes import SHAPES, render_shape, shape_area


def test_class_table():
    assert C.NUM_CLASSES == 12
    assert [c.id for c in C.CLASSES] == list(range(12))
    assert [c.coco_id for c in C.CLASSES] == list(range(1, 13))
    assert [c.is_thing for c in C.CLASSES] == [True] * 8 + [False] * 4
    assert len(set(C.CLASS_NAMES)) == 12
    assert C.THING_IDS == tuple(range(8)) and C.STUFF_IDS == (8, 9, 10, 11)
    assert set(SHAPES) == set(C.THING_IDS)
    cats = C.coco_categories()
    assert [(c["id"], c["name"], c["isthing"]) for c in cats] == [
        (c.coco_id, c.name, int(c.is_thing)) for c in C.CLASSES
    ]
    assert [c["id"] for c in C.coco_categories(things_only=True)] == list(range(1, 9))


def test_shapes_are_distinct():
    masks = [
        render_shape(c, center=(31.5, 31.5), radius=24, angle=0.0, out_hw=(64, 64))
        for c in C.THING_IDS
    ]
    for i, a in enumerate(masks):
        assert a.sum() > 200
        assert abs(a.sum() - shape_area(i, radius=24, angle=0.0)) < 0.05 * a.sum()
        for b in masks[i + 1 :]:
            iou = (a & b).sum() / (a | b).sum()
            assert iou < 0.9


def test_scene_is_deterministic_and_seed_dependent():
    a, b, c = generate_scene(7), generate_scene(7), generate_scene(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.ids, b.ids)
    assert a.segments == b.segments
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(6))
def test_scene_segments_match_the_map(seed):
    cfg = SceneConfig()
    scene = generate_scene(seed, size=(160, 224), config=SceneConfig(min_area=40))
    image, ids = scene.image, scene.ids
    assert image.shape == (160, 224, 3) and image.dtype == np.uint8
    assert ids.shape == (160, 224) and ids.dtype == np.int32
    stats = segment_stats(ids)
    assert sorted(stats) == [s.id for s in scene.segments]  # every id has a segment, and back
    for s in scene.segments:
        area, bbox = stats[s.id]
        assert (s.area, s.bbox) == (area, bbox)
        assert s.area >= 40
        assert s.is_thing == C.CLASSES[s.class_id].is_thing
        m = ids == s.id
        ys, xs = np.nonzero(m)
        assert bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    stuff = [s for s in scene.segments if not s.is_thing]
    things = [s for s in scene.segments if s.is_thing]
    assert 1 <= len(stuff) <= cfg.max_stuff and len({s.class_id for s in stuff}) == len(stuff)
    assert 1 <= len(things) <= cfg.max_things


def test_scene_statistics_over_many_seeds():
    """Every class shows up, stuff fills most of the background, some things overlap."""
    seen = set()
    void = 0.0
    for seed in range(40):
        scene = generate_scene(seed, size=(96, 96), config=SceneConfig(min_area=20))
        seen |= {s.class_id for s in scene.segments}
        void += float((scene.ids == 0).mean())
    assert seen == set(range(12))
    assert void / 40 < 0.02


def test_segment_stats_with_large_ids():
    ids = np.zeros((5, 6), np.int32)
    ids[1:3, 2:5] = 70000
    ids[4, 0] = 3
    assert segment_stats(ids) == {3: (1, (0, 4, 1, 1)), 70000: (6, (2, 1, 3, 2))}
    assert segment_stats(np.zeros((3, 3), np.int32)) == {}
