"""Online tracker: stable ids, survival through short occlusions, death, births."""

from __future__ import annotations

import numpy as np

from rapsam_edge.runtime.tracker import Detection, OnlineTracker, TrackerConfig


def _objects(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    return rng.normal(size=(n, dim))


def _frame(rng, protos, visible, noise=0.3, classes=None):
    dets = []
    for i in visible:
        emb = protos[i] + noise * rng.normal(size=protos.shape[1])
        dets.append(
            Detection(
                embedding=emb, class_id=int(classes[i]) if classes is not None else 0, score=0.9
            )
        )
    return dets


def test_ids_are_stable_under_shuffled_order():
    rng = np.random.default_rng(0)
    protos = _objects(rng, 6)
    tracker = OnlineTracker()
    first = dict(zip(range(6), tracker.update(_frame(rng, protos, range(6)))))
    assert sorted(first.values()) == [1, 2, 3, 4, 5, 6]
    for _ in range(50):
        order = rng.permutation(6)
        ids = tracker.update(_frame(rng, protos, order))
        assert [first[i] for i in order] == ids


def test_short_occlusion_keeps_id_long_absence_gives_new_id():
    rng = np.random.default_rng(1)
    protos = _objects(rng, 3)
    tracker = OnlineTracker(TrackerConfig(max_missed=5))
    ids0 = tracker.update(_frame(rng, protos, [0, 1, 2]))
    for _ in range(4):  # object 2 hidden for 4 frames: survives
        tracker.update(_frame(rng, protos, [0, 1]))
    assert tracker.update(_frame(rng, protos, [0, 1, 2]))[2] == ids0[2]
    for _ in range(7):  # hidden for 7 > 5 frames: dies
        tracker.update(_frame(rng, protos, [0, 1]))
    assert len(tracker.tracks) == 2
    new_id = tracker.update(_frame(rng, protos, [0, 1, 2]))[2]
    assert new_id not in ids0


def test_low_score_detections_do_not_start_tracks_and_dissimilar_ones_do():
    rng = np.random.default_rng(2)
    protos = _objects(rng, 2)
    tracker = OnlineTracker()
    weak = [Detection(embedding=protos[0], class_id=0, score=0.2)]
    assert tracker.update(weak) == [0]
    assert tracker.tracks == []
    ids = tracker.update(_frame(rng, protos, [0]))
    # a very different embedding is a new object, not the same track
    ids2 = tracker.update(_frame(rng, protos, [1]))
    assert ids2[0] != ids[0]


def test_class_is_the_track_majority():
    rng = np.random.default_rng(3)
    protos = _objects(rng, 1)
    tracker = OnlineTracker()
    for cls in [3, 3, 5, 3]:
        tracker.update([Detection(embedding=protos[0], class_id=cls, score=0.9)])
    assert len(tracker.tracks) == 1
    assert tracker.tracks[0].class_id == 3
