"""Online tracker: stable ids, survival through short occlusions, death, births."""

from __future__ import annotations

import numpy as np
import pytest

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


@pytest.mark.parametrize("seed", range(6))
def test_cpp_tracker_twin_gives_the_same_track_ids(seed):
    """The C++ runtime's tracker (_core.OnlineTracker) and its numpy twin (what
    runtime.tracker.OnlineTracker runs with the numpy ops) agree frame for frame on a
    synthetic video: objects that drift, vanish, reappear and change class, with noisy
    embeddings and scores around the birth threshold."""
    from rapsam_edge import _core, ops
    from rapsam_edge.runtime.tracker import Detection, OnlineTracker, TrackerConfig

    rng = np.random.default_rng(seed)
    cfg = TrackerConfig(max_missed=3 + seed % 3)
    before = ops.implementation()
    ops.use("numpy")
    try:
        py = OnlineTracker(cfg)  # made while the numpy twins are in use: the numpy tracker
    finally:
        ops.use(before)
    assert type(py._impl.impl) is ops._tracker.OnlineTracker
    cpp = _core.OnlineTracker(
        cfg.match_threshold,
        cfg.class_change_penalty,
        cfg.birth_score,
        cfg.max_missed,
        cfg.momentum,
    )
    objects = rng.standard_normal((8, 16)).astype(np.float32)
    classes = rng.integers(0, 5, 8).astype(np.int32)
    for _ in range(80):
        objects += 0.15 * rng.standard_normal(objects.shape).astype(np.float32)
        visible = np.flatnonzero(rng.random(8) < 0.7)
        rng.shuffle(visible)
        emb = (objects[visible] + 0.3 * rng.standard_normal((len(visible), 16))).astype(np.float32)
        cls = classes[visible].copy()
        flip = rng.random(len(cls)) < 0.1
        cls[flip] = rng.integers(0, 5, int(flip.sum()))
        score = rng.uniform(0.3, 1.0, len(visible)).astype(np.float32)
        want = py.update(
            [
                Detection(embedding=e, class_id=int(c), score=float(s))
                for e, c, s in zip(emb, cls, score)
            ]
        )
        got = cpp.update(emb.reshape(len(visible), 16), cls, score)
        assert list(got) == want
        assert cpp.live_tracks == len(py.tracks)
    assert cpp.tracks_started == py.tracks_started >= 8


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("match_threshold", float("nan")),
        ("match_threshold", 1.01),
        ("momentum", 5.0),
        ("momentum", float("inf")),
        ("momentum", -0.5),
        ("class_change_penalty", -3.0),
        ("class_change_penalty", float("nan")),
        ("birth_score", "x"),
        ("birth_score", 1.5),
        ("max_missed", -1),
        ("max_missed", 2.5),
        ("max_missed", True),
    ],
)
def test_tracker_config_rejects_a_bad_setting_at_construction(field, value):
    """TrackerConfig checks its settings with the ops' rule (ops.make_tracker): a bad one is
    a ConfigError naming the field, at the constructor, not at the first track()."""
    from rapsam_edge.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^TrackerConfig\.{field} ") as info:
        TrackerConfig(**{field: value})
    assert info.value.hint and "\n" not in info.value.hint


def test_tracker_config_accepts_the_ranges_ends():
    for kw in (
        {"match_threshold": -1.0, "momentum": 0.0, "birth_score": 0.0, "max_missed": 0},
        {"match_threshold": 1, "momentum": 1, "birth_score": 1, "class_change_penalty": 0},
        {"max_missed": np.int64(7), "momentum": np.float32(0.5)},
    ):
        tracker = OnlineTracker(TrackerConfig(**kw))
        assert tracker.update([]) == []
