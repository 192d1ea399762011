"""A frame the tracker refuses leaves it exactly as it was: frame index, tracks started, live
tracks (ids, embeddings, class scores, hits, missed), and the ids later frames get. Checked
on a tracker with live tracks, for both cores (the compiled core's tracker and its numpy
twin, as ``RAPSAM_EDGE_OPS=cpp`` / ``numpy`` pick them), at every layer a caller reaches:
``runtime.tracker.OnlineTracker`` (Detection records), ``ops.make_tracker`` (arrays) and
the compiled core's own binding (``_core.OnlineTracker``, what the C++ runtime runs)."""

from __future__ import annotations

import numpy as np
import pytest

from rapsam_edge import ops
from rapsam_edge.errors import InputError
from rapsam_edge.runtime.tracker import Detection, OnlineTracker, TrackerConfig

D = 8
RNG = np.random.default_rng(0)
GOOD = RNG.normal(size=(3, D)).astype(np.float32)
CLASSES = np.array([1, 2, 3], np.int32)
SCORES = np.full(3, 0.9, np.float32)
CORES = ["cpp", "numpy"]


def _det(**kw) -> Detection:
    fields = {"embedding": GOOD[0], "class_id": 1, "score": 0.9, **kw}
    return Detection(**fields)


def _good() -> list[Detection]:
    return [Detection(e, int(c), float(s)) for e, c, s in zip(GOOD, CLASSES, SCORES)]


def _with_nan(row: int, col: int) -> np.ndarray:
    e = GOOD[row].copy()
    e[col] = np.nan
    return e


#: id -> one frame of Detection records the runtime tracker must refuse
BAD_DETECTIONS = {
    "embedding_nan": [_good()[0], _det(embedding=_with_nan(1, 2))],
    "embedding_inf": [_det(embedding=np.full(D, np.inf))],
    "embedding_-inf": [_good()[0], _good()[1], _det(embedding=-np.full(D, np.inf))],
    "embedding_beyond_float32": [_det(embedding=GOOD[0].astype(np.float64) * 1e300)],
    "embedding_none": [_det(embedding=None)],
    "embedding_str": [_det(embedding="abcdefgh")],
    "embedding_2d": [_det(embedding=GOOD[:2])],
    "embedding_empty": [_det(embedding=np.zeros(0, np.float32))],
    "embedding_complex": [_det(embedding=GOOD[0].astype(np.complex64))],
    "embedding_bool": [_det(embedding=GOOD[0] > 0)],
    "embedding_object": [_det(embedding=np.array([object()] * D))],
    "embedding_ragged_list": [_det(embedding=[[1.0, 2.0], [3.0]])],
    "embeddings_of_different_lengths": [_good()[0], _det(embedding=GOOD[1, :4])],
    "embedding_dim_differs_from_tracks": [_det(embedding=GOOD[0, :4])],
    "class_float": [_det(class_id=1.5)],
    "class_negative": [_det(class_id=-1)],
    "class_bool": [_det(class_id=True)],
    "class_str": [_det(class_id="3")],
    "class_beyond_int32": [_det(class_id=2**40)],
    "class_none": [_det(class_id=None)],
    "score_nan": [_det(score=float("nan"))],
    "score_inf": [_det(score=float("inf"))],
    "score_above_1": [_det(score=5.0)],
    "score_negative": [_det(score=-0.5)],
    "score_str": [_det(score="0.9")],
    "score_bool": [_det(score=True)],
    "score_none": [_det(score=None)],
    "not_a_detection": [_good()[0], (GOOD[1], 1, 0.9)],
    "detections_none": None,
    "detections_one_detection": _det(),
    "detections_array": GOOD,
}

_NAN_EMB = GOOD.copy()
_NAN_EMB[1, 2] = np.nan
_INF_EMB = GOOD.copy()
_INF_EMB[0, 0] = np.inf
#: id -> (embeddings, classes, scores) arrays both array layers must refuse
BAD_ARRAYS = {
    "embeddings_nan": (_NAN_EMB, CLASSES, SCORES),
    "embeddings_inf": (_INF_EMB, CLASSES, SCORES),
    "embeddings_beyond_float32": (GOOD.astype(np.float64) * 1e300, CLASSES, SCORES),
    "embeddings_dim_differs_from_tracks": (GOOD[:, :4], CLASSES, SCORES),
    "embeddings_1d": (GOOD[0], CLASSES[:1], SCORES[:1]),
    "embeddings_3d": (GOOD[None], CLASSES, SCORES),
    "embeddings_no_columns": (np.zeros((3, 0), np.float32), CLASSES, SCORES),
    "embeddings_str": (np.array([["a"] * D] * 3), CLASSES, SCORES),
    "embeddings_complex": (GOOD.astype(np.complex64), CLASSES, SCORES),
    "embeddings_bool": (GOOD > 0, CLASSES, SCORES),
    "classes_short": (GOOD, CLASSES[:2], SCORES),
    "classes_long": (GOOD[:2], CLASSES, SCORES[:2]),
    "classes_2d": (GOOD, CLASSES[None], SCORES),
    "classes_float": (GOOD, CLASSES.astype(np.float32) + 0.5, SCORES),
    "classes_bool": (GOOD, np.ones(3, bool), SCORES),
    "classes_negative": (GOOD, np.array([1, -1, 3]), SCORES),
    "classes_beyond_int32": (GOOD, np.array([1, 2, 2**40]), SCORES),
    "scores_long": (GOOD, CLASSES, np.full(4, 0.9, np.float32)),
    "scores_nan": (GOOD, CLASSES, np.array([0.9, np.nan, 0.9], np.float32)),
    "scores_inf": (GOOD, CLASSES, np.array([0.9, np.inf, 0.9], np.float32)),
    "scores_above_1": (GOOD, CLASSES, np.array([0.9, 5.0, 0.9], np.float32)),
    "scores_negative": (GOOD, CLASSES, np.array([0.9, -0.5, 0.9], np.float32)),
    "scores_str": (GOOD, CLASSES, np.array(["a", "b", "c"])),
}


def _state(tracker) -> tuple:
    """Everything a tracker holds, comparable (Track objects or the cores' dicts)."""
    tracks = []
    for t in tracker.tracks:
        t = t if isinstance(t, dict) else vars(t)
        emb = np.asarray(t["embedding"], np.float64).tobytes()
        tracks.append(
            (t["track_id"], emb, tuple(t["class_scores"].items()), t["hits"], t["missed"])
        )
    return (int(tracker.frame_index), int(tracker.tracks_started), tuple(tracks))


def _in_core(core: str, make):
    before = ops.implementation()
    ops.use(core)
    try:
        return make()
    finally:
        ops.use(before)


def _refuses_and_keeps_state(tracker, reference, update, bad, good):
    """``update(tracker, bad)`` raises InputError and changes nothing: the state is as
    before, and the next good frame gives what ``reference`` (which never saw ``bad``)
    gives."""
    before = _state(tracker)
    assert before == _state(reference) and before[2], "no live tracks to protect"
    with pytest.raises(InputError):
        update(tracker, bad)
    assert _state(tracker) == before
    assert list(update(tracker, good)) == list(update(reference, good))
    assert _state(tracker) == _state(reference)


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("case", BAD_DETECTIONS)
def test_runtime_tracker_refuses_a_bad_frame_whole(core, case):
    def warmed():
        t = _in_core(core, lambda: OnlineTracker(TrackerConfig()))
        for _ in range(2):
            t.update(_good())
        return t

    def update(t, dets):
        return t.update(dets)

    _refuses_and_keeps_state(warmed(), warmed(), update, BAD_DETECTIONS[case], _good())


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("case", BAD_ARRAYS)
def test_ops_tracker_refuses_a_bad_frame_whole(core, case):
    def warmed():
        t = _in_core(core, lambda: ops.make_tracker(0.5, 0.3, 0.5, 5, 0.8))
        for _ in range(2):
            t.update(GOOD, CLASSES, SCORES)
        return t

    def update(t, args):
        return t.update(*args)

    good = (GOOD, CLASSES, SCORES)
    _refuses_and_keeps_state(warmed(), warmed(), update, BAD_ARRAYS[case], good)


@pytest.mark.parametrize("case", BAD_ARRAYS)
def test_core_binding_refuses_a_bad_frame_whole(case):
    """The compiled core's tracker checks a frame itself (the C++ runtime calls it with no
    Python in front): kinds in the binding, values in ``OnlineTracker::check``, before the
    frame counter moves."""
    core = pytest.importorskip("rapsam_edge._core")

    def warmed():
        t = core.OnlineTracker()
        for _ in range(2):
            t.update(GOOD, CLASSES, SCORES)
        return t

    def update(t, args):
        return t.update(*(np.asarray(a) for a in args))

    good = (GOOD, CLASSES, SCORES)
    with np.errstate(over="ignore"):  # float64 1e300 -> float32 inf in the binding's cast
        _refuses_and_keeps_state(warmed(), warmed(), update, BAD_ARRAYS[case], good)


@pytest.mark.parametrize("core", CORES)
def test_range_ends_are_accepted(core):
    """The ends of the ranges (class 0, scores 0 and 1) are detections, not errors."""
    tracker = _in_core(core, lambda: OnlineTracker(TrackerConfig()))
    ids = tracker.update([_det(class_id=0, score=0.0), _det(embedding=GOOD[1], score=1.0)])
    assert ids == [0, 1]  # score 0 is below the birth score; score 1 starts a track
    assert tracker.update([]) == [] and tracker.frame_index == 1
