"""Graph outputs are checked where the runtime uses them (``runtime/outputs.py``, the rule of
the C++ runtime's ``saturate`` / ``require_finite``): every output of every graph, before
anything is computed from it or returned. Logits: +/-inf saturates, NaN is a BackendError.
Every other output (``feats``, ``query_embed``, ``iou``): NaN or infinity is a BackendError
naming the graph and the tensor. A failed ``track`` frame leaves the tracker as it was."""

from __future__ import annotations

import numpy as np
import pytest

from rapsam_edge.assets import sample_clip
from rapsam_edge.contract.graphs import GRAPH_IO
from rapsam_edge.errors import BackendError
from rapsam_edge.runtime import base
from rapsam_edge.runtime.outputs import LOGIT_ROLES, checked_outputs
from rapsam_edge.runtime.segmenter import Segmenter
from rapsam_edge.runtime.tracker import TrackerConfig

#: (graph, output role) for every output the contract defines
OUTPUTS = [(g, r) for g, io in GRAPH_IO.items() for r in io.output_roles]


def _clip(n: int) -> list[np.ndarray]:
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(sample_clip()))
    frames = []
    while len(frames) < n:
        ok, bgr = cap.read()
        assert ok
        frames.append(bgr)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def seg(shipped_bundle):
    s = Segmenter(
        shipped_bundle,
        "ort-cpu",
        color_order="BGR",
        score_threshold=0.0,
        overlap_threshold=0.0,
        tracker=TrackerConfig(birth_score=0.0),
    )
    yield s
    s.close()


def _tracker_state(tracker) -> tuple:
    return (
        tracker.frame_index,
        tracker.tracks_started,
        tuple(
            (t.track_id, t.embedding.tobytes(), tuple(t.class_scores.items()), t.hits, t.missed)
            for t in tracker.tracks
        ),
    )


def _poison(backend, role: str, value: float, rows=None):
    """Make ``backend.run_roles`` give ``value`` in output ``role`` (all of it, or the
    query rows ``rows``), as a numerically broken graph would."""
    original = backend.run_roles

    def run_roles(feeds, check=True):
        out = original(feeds, check=check)
        bad = np.array(out[role], dtype=np.float32, copy=True)
        if rows is None:
            bad[...] = value
        else:
            bad[:, rows] = value
        return {**out, role: bad}

    backend.run_roles = run_roles


def _calls(seg, frame):
    return {
        "panoptic": lambda: seg.panoptic(frame),
        "track": lambda: seg.track(frame),
        "set_image+prompt": lambda: seg.prompt(seg.set_image(frame), points=[(60, 50)]),
    }


def _uses(graph: str) -> list[str]:
    """The public calls that run ``graph``."""
    return {
        "encoder": ["panoptic", "track", "set_image+prompt"],
        "panoptic_decoder": ["panoptic", "track"],
        "prompt_decoder": ["set_image+prompt"],
    }[graph]


def test_every_contract_output_has_a_rule():
    roles = {r for _, r in OUTPUTS}
    assert LOGIT_ROLES <= roles and roles - LOGIT_ROLES == {"feats", "query_embed", "iou"}
    with pytest.raises(BackendError, match="panoptic_decoder gave no query_embed output"):
        checked_outputs(
            "panoptic_decoder",
            {"cls_logits": np.zeros((1, 2, 3)), "mask_logits": np.zeros((1, 2, 4, 4))},
        )


@pytest.mark.parametrize(("graph", "role"), OUTPUTS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_a_broken_output_is_a_backend_error_naming_graph_and_tensor(seg, graph, role, value):
    frame = _clip(1)[0]
    backend = seg.graphs[graph]
    _poison(backend, role, value)
    try:
        for call in _uses(graph):
            if role in LOGIT_ROLES and np.isinf(value):
                _calls(seg, frame)[call]()  # a saturated logit is a decision, not an error
                continue
            with pytest.raises(BackendError, match=f"^{graph} {role} holds NaN") as info:
                _calls(seg, frame)[call]()
            assert info.value.hint and "FP16" in info.value.hint
    finally:
        del backend.run_roles


def test_nan_query_embed_fails_panoptic_and_track_and_leaves_the_tracker_as_it_was(seg):
    """The issue's case: NaN in the panoptic decoder's query_embed is a BackendError naming
    the graph and tensor (not an InputError about the tracker's "cost"), from ``panoptic``
    and ``track``, before the default tracker is touched; the next good frame continues the
    video as if the bad one had never come."""
    frames = _clip(6)
    seg.reset_tracks()
    reference = seg.new_tracker()
    for f in frames[:4]:
        seg.track(f)
        seg.track(f, tracker=reference)
    assert seg.tracker.tracks_started > 0 and seg.tracker.frame_index == 3
    before = _tracker_state(seg.tracker)
    decoder = seg.graphs["panoptic_decoder"]
    for rows in (None, [0], [-1]):  # all of it, or a single query (kept or not)
        _poison(decoder, "query_embed", np.nan, rows)
        try:
            for call in ("panoptic", "track"):
                with pytest.raises(
                    BackendError, match=r"^panoptic_decoder query_embed holds NaN or infinity"
                ):
                    _calls(seg, frames[4])[call]()
                assert _tracker_state(seg.tracker) == before
        finally:
            del decoder.run_roles
    got = seg.track(frames[4])
    want = seg.track(frames[4], tracker=reference)
    assert got.frame_index == want.frame_index == 4
    assert np.array_equal(got.track_ids, want.track_ids)
    assert _tracker_state(seg.tracker) == _tracker_state(reference)
    seg.reset_tracks()


def test_stream_stops_on_a_broken_output_with_the_backend_error(seg):
    frames = _clip(3)
    decoder = seg.graphs["panoptic_decoder"]
    _poison(decoder, "query_embed", np.inf)
    try:
        with pytest.raises(BackendError, match=r"^panoptic_decoder query_embed"):
            for _ in seg.stream(iter(frames), task="track"):
                pass
    finally:
        del decoder.run_roles


def test_an_encoder_that_gives_nan_is_refused_at_load(shipped_bundle, monkeypatch):
    original = base.Backend.run_roles

    def run_roles(self, feeds, check=True):
        out = original(self, feeds, check=check)
        return {k: np.full_like(v, np.nan) for k, v in out.items()}

    monkeypatch.setattr(base.Backend, "run_roles", run_roles)
    with pytest.raises(BackendError, match=r"^encoder feats holds NaN or infinity"):
        Segmenter(shipped_bundle, "ort-cpu")


def _reshape(backend, role: str, cut):
    """Make ``backend.run_roles`` give output ``role`` as ``cut(array)`` (another shape), as a
    graph file that does not match its manifest would."""
    original = backend.run_roles

    def run_roles(feeds, check=True):
        out = original(feeds, check=check)
        return {**out, role: np.ascontiguousarray(cut(out[role]))}

    backend.run_roles = run_roles


#: (graph, role, reshaping, the expected-shape fragment the error names)
BAD_SHAPES = [
    ("encoder", "feats", lambda a: a[:, :, :-1], "h="),
    ("encoder", "feats", lambda a: a[:, :-1], "D="),
    ("panoptic_decoder", "query_embed", lambda a: a[:, :5], "N="),
    ("panoptic_decoder", "query_embed", lambda a: a[..., :-3], "D="),
    ("panoptic_decoder", "cls_logits", lambda a: a[..., :-1], "C1="),
    ("panoptic_decoder", "mask_logits", lambda a: a[:, :, :, :4], "w="),
    (
        "panoptic_decoder",
        "cls_logits",
        lambda a: a[0],
        "has shape [50, 13], expected [B=1, N=50, C1=13]",
    ),
    ("prompt_decoder", "mask_logits", lambda a: a[:, :, :4, :4], "h="),
    ("prompt_decoder", "iou", lambda a: np.concatenate([a, a], axis=1), "P="),
]


@pytest.mark.parametrize(("graph", "role", "cut", "fragment"), BAD_SHAPES)
def test_output_of_another_shape_is_a_backend_error(shipped_bundle, graph, role, cut, fragment):
    """An output whose shape disagrees with the manifest and the run (fewer query rows, a
    narrower embedding, masks off the feature grid, another rank) is a BackendError naming
    the graph and the tensor, never an IndexError, an InputError blaming the caller or
    silently wrong results (the C++ runtime's check_output does the same)."""
    frame = _clip(1)[0]
    with Segmenter(shipped_bundle, "ort-cpu", color_order="BGR") as s:
        _reshape(s.graphs[graph], role, cut)
        if graph == "prompt_decoder":
            emb = s.set_image(frame)
            call = lambda: s.prompt(emb, points=[(20, 20)])  # noqa: E731
        else:
            call = lambda: s.panoptic(frame)  # noqa: E731
        with pytest.raises(BackendError, match=f"{graph} output {role} has shape") as e:
            call()
        assert fragment in str(e.value)
        if graph == "panoptic_decoder":
            before = _tracker_state(s.tracker)
            with pytest.raises(BackendError):
                s.track(frame)
            assert _tracker_state(s.tracker) == before
