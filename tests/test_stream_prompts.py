"""``Segmenter.stream`` with prompts (``runtime.streaming``): the same masks as a
``PromptTracker`` stepped by hand, one encoder pass per frame for both trackers, objects
added / removed while the stream runs (from another thread too: the tracker's lock), a
camera that comes back at another resolution, and the typed errors of the whole kind
(stream settings, prompts, ids, frames)."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from rapsam_edge.assets import sample_clip
from rapsam_edge.contract.graphs import ENCODER, PANOPTIC_DECODER
from rapsam_edge.errors import ConfigError, InputError
from rapsam_edge.runtime import capture
from rapsam_edge.runtime.capture import SourceOptions, VideoSource
from rapsam_edge.runtime.prompt_tracker import PromptTracker, PromptTrackerConfig
from rapsam_edge.runtime.results import PromptTrackResult, TrackResult
from rapsam_edge.runtime.segmenter import Segmenter

cv2 = pytest.importorskip("cv2")

RING = 4  # the clip's thing (a ring that moves and grows)
N = 8  # frames of the clip used here


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(sample_clip()))
    frames = []
    while len(frames) < N:
        ok, frame = cap.read()
        assert ok
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Segmenter:
    with Segmenter(shipped_bundle, backend="ort-cpu", color_order="BGR") as s:
        yield s


@pytest.fixture(scope="module")
def rings(seg, clip) -> list[np.ndarray]:
    """The ring's panoptic segment on each frame (the reference mask)."""
    out = []
    for frame in clip:
        pan = seg.panoptic(frame)
        (i,) = pan.segments["id"][pan.segments["class"] == RING]
        out.append(pan.panoptic_map == i)
    return out


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _click(mask: np.ndarray) -> tuple[int, int]:
    from rapsam_edge.apps.draw import interior_point

    return interior_point(mask)


def _same(a: PromptTrackResult, b: PromptTrackResult) -> None:
    assert a.frame_index == b.frame_index and a.ids == b.ids
    for x, y in zip(a.objects, b.objects):
        assert x.state == y.state and x.box.tolist() == y.box.tolist()
        assert x.score == y.score and x.similarity == y.similarity
        np.testing.assert_array_equal(x.mask, y.mask)


# ------------------------------------------------------------------ the stream's results
def test_stream_prompts_equal_a_tracker_stepped_by_hand(seg, clip, rings):
    """One object per entry (a click, a box): ids 1, 2 on every frame, masks exactly those
    of a PromptTracker stepped by hand on the same frames (step the first frame, add on it,
    step the rest), and the objects follow the ring."""
    click, box = _click(rings[0]), _box(rings[0])
    prompts = [{"points": [click]}, {"boxes": [box]}]
    got = [r for _, r in seg.stream(iter(clip), task="prompt", prompts=prompts)]
    assert len(got) == N and all(isinstance(r, PromptTrackResult) for r in got)

    pt = seg.prompt_tracker()
    want = [pt.step(clip[0])]
    want[0].objects += pt.add_tracks(None, points=[click]) + pt.add_tracks(None, boxes=[box])
    want += [pt.step(frame) for frame in clip[1:]]
    for t, (a, b) in enumerate(zip(got, want)):
        _same(a, b)
        assert a.ids == [1, 2] and a.frame_index == t
        assert all(o.state == "tracked" for o in a.objects), t
        assert min(_iou(o.mask, rings[t]) for o in a.objects) >= 0.6, t
    assert {"read", "prepare", "encoder", "add"} <= set(got[0].timings)
    assert {"read", "encoder", "decoder", "postprocess", "tracking"} <= set(got[1].timings)


def test_one_encoder_pass_per_frame_serves_both_trackers(seg, clip, rings, monkeypatch):
    """task "track" with prompts: N encoder runs for N frames, the video tracker's results
    as without prompts, the prompt tracker's as task "prompt" (no panoptic decoder there)."""
    calls = {ENCODER: 0, PANOPTIC_DECODER: 0}
    for graph in calls:
        run = seg.graphs[graph].run_roles

        def counted(*a, _run=run, _graph=graph, **k):
            calls[_graph] += 1
            return _run(*a, **k)

        monkeypatch.setattr(seg.graphs[graph], "run_roles", counted)
    prompts = {"boxes": [_box(rings[0])]}
    both = list(seg.stream(iter(clip), task="track", prompts=prompts))
    assert calls == {ENCODER: N, PANOPTIC_DECODER: N}
    alone = list(seg.stream(iter(clip), task="prompt", prompts=prompts))
    assert calls == {ENCODER: 2 * N, PANOPTIC_DECODER: N}
    plain = list(seg.stream(iter(clip), task="track"))
    for (_, r), (_, p), (_, q) in zip(both, alone, plain):
        assert isinstance(r, TrackResult) and r.prompts is not None and q.prompts is None
        _same(r.prompts, p)
        np.testing.assert_array_equal(r.track_map, q.track_map)
    stages = {"prompt_decoder", "prompt_postprocess", "prompt_tracking"}
    assert stages <= set(both[1][1].timings) and "prompt_add" in both[0][1].timings
    _, pan = next(seg.stream(iter(clip), task="panoptic", prompts=prompts))
    assert pan.prompts is not None and pan.prompts.ids == [1]


def test_objects_added_refined_and_removed_while_the_stream_runs(seg, clip, rings):
    pt = seg.prompt_tracker()
    seen = []
    for t, (_, res) in enumerate(seg.stream(iter(clip), task="prompt", prompt_tracker=pt)):
        seen.append((t, res.ids, [o.state for o in res.objects]))
        if t in (0, 1):
            assert res.ids == []
        if t == 1:  # on the frame yielded last
            assert pt.add(None, boxes=[_box(rings[1])]) == [1]
        if t == 2:
            rec = res.get(1)
            assert rec is not None and _iou(rec.mask, rings[2]) >= 0.7
            assert pt.refine(1, points=[_click(rings[2])]).state == "tracked"
            assert pt.add(None, points=[_click(rings[2])]) == [2]
        if t == 3:
            assert res.ids == [1, 2]
            pt.remove(1)
        if t >= 4:
            assert res.ids == [2] and res.objects[0].state == "tracked", seen
            assert _iou(res.objects[0].mask, rings[t]) >= 0.6


def test_stream_prompts_on_a_held_tracker_are_all_added_or_none(seg, clip, rings):
    pt = seg.prompt_tracker()
    bad = [{"boxes": [_box(rings[0])]}, {"points": [(5000, 10)]}]  # the 2nd lies outside
    with pytest.raises(InputError, match="inside"):
        next(seg.stream(iter(clip), task="prompt", prompts=bad, prompt_tracker=pt))
    assert pt.ids == []


def test_a_held_tracker_goes_on_across_streams_until_reset(seg, clip, rings):
    """A held tracker is the caller's: a second stream on it keeps its objects, ids and
    frame count (a reconnect of the same camera), by design; ``reset()`` starts a new video
    at frame_index 0 with no objects. Prompts alone get a new tracker per stream."""
    pt = seg.prompt_tracker()
    prompts = {"boxes": [_box(rings[0])]}
    first = [
        r for _, r in seg.stream(iter(clip[:2]), task="prompt", prompts=prompts, prompt_tracker=pt)
    ]
    again = [r for _, r in seg.stream(iter(clip[2:4]), task="prompt", prompt_tracker=pt)]
    assert [r.frame_index for r in first + again] == [0, 1, 2, 3]
    assert all(r.ids == [1] for r in first + again) and pt.ids == [1]
    assert again[-1].objects[0].state == "tracked"
    assert _iou(again[-1].objects[0].mask, rings[3]) >= 0.6
    pt.reset()
    fresh = [
        r for _, r in seg.stream(iter(clip[:2]), task="prompt", prompts=prompts, prompt_tracker=pt)
    ]
    assert [r.frame_index for r in fresh] == [0, 1] and all(r.ids == [1] for r in fresh)
    for _ in range(2):  # prompts without a held tracker: each stream starts anew
        alone = [r for _, r in seg.stream(iter(clip[:2]), task="prompt", prompts=prompts)]
        assert [r.frame_index for r in alone] == [0, 1] and alone[-1].ids == [1]


# ------------------------------------------------------------------ threads
class _Pausing:
    """A Segmenter whose prompt decoder, during ``step``, lets another thread try to add an
    object (the test's probe of the tracker's lock)."""

    def __init__(self, seg: Segmenter) -> None:
        self.seg, self.bundle, self.max_prompts = seg, seg.bundle, seg.max_prompts
        self.encoder_id = seg.encoder_id
        self.during: threading.Thread | None = None

    def set_image(self, frame):
        return self.seg.set_image(frame)

    def prompt(self, embedding=None, *, points=None, boxes=None):
        thread, self.during = self.during, None
        if thread is not None:
            thread.start()
            thread.join(timeout=0.5)
            self.finished_inside, self.thread = not thread.is_alive(), thread
        return self.seg.prompt(embedding, points=points, boxes=boxes)


def test_add_from_another_thread_waits_for_the_step(seg, clip, rings):
    proxy = _Pausing(seg)
    pt = PromptTracker(proxy)
    pt.add(clip[0], boxes=[_box(rings[0])])
    added: list[list[int]] = []
    proxy.during = threading.Thread(
        target=lambda: added.append(pt.add(None, points=[_click(rings[0])]))
    )
    res = pt.step(clip[1])  # the other thread's add runs into the lock inside this step
    assert not proxy.finished_inside and res.ids == [1]
    proxy.thread.join(timeout=30)
    assert added == [[2]] and pt.ids == [1, 2]
    assert pt.step(clip[2]).ids == [1, 2]


def test_objects_added_and_removed_from_a_thread_while_streaming(shipped_bundle):
    """A web handler's pattern: a thread adds, refines and removes objects while the stream
    steps; no step fails and every frame's ids are distinct, ascending tracker ids."""
    with Segmenter(shipped_bundle, backend="ort-cpu", input_size=32) as small:
        frame = np.zeros((24, 32, 3), np.uint8)
        frame[6:18, 8:20] = 255
        pt = small.prompt_tracker(PromptTrackerConfig(max_objects=8))
        stop, errors, made = threading.Event(), [], [0]

        def handler() -> None:
            rng = np.random.default_rng(0)
            while not stop.is_set():
                try:
                    ids = pt.ids
                    if len(ids) < 6:
                        made[0] += len(pt.add(None, boxes=[(8, 6, 20, 18)]))
                    elif rng.random() < 0.5:
                        pt.refine(ids[0], points=[(14, 12)])
                    else:
                        pt.remove(ids[int(rng.integers(len(ids)))])
                except InputError as e:  # only before the first frame: "no frame yet"
                    if "no frame yet" not in str(e):
                        errors.append(e)
                except Exception as e:  # noqa: BLE001 - reported by the assertion below
                    errors.append(e)

        worker = threading.Thread(target=handler)
        worker.start()
        try:
            frames = (frame for _ in range(300))
            for _, res in small.stream(frames, task="prompt", prompt_tracker=pt):
                assert res.ids == sorted(set(res.ids)) and len(res.ids) <= 8
        finally:
            stop.set()
            worker.join(timeout=30)
        assert errors == [] and made[0] > 6  # objects were added, and removed, meanwhile


# ------------------------------------------------------------------ frame size changes
def test_a_camera_back_at_another_resolution_keeps_its_objects(seg, clip, rings, monkeypatch):
    """A camera drops after 4 frames and reconnects at twice the resolution: the stream
    goes on, the ring keeps id 1 and is tracked at the new size (its boxes scaled);
    PromptTracker.step by hand refuses such a frame unless asked to rescale."""
    big = [cv2.resize(f, (960, 720), interpolation=cv2.INTER_LINEAR) for f in clip[4:]]

    class Camera:
        def __init__(self, frames: list[np.ndarray]) -> None:
            self.frames = list(frames)

        def isOpened(self) -> bool:
            return True

        def get(self, prop: int) -> float:
            return 0.0

        def read(self):
            return (True, self.frames.pop(0)) if self.frames else (False, None)

        def release(self) -> None:
            pass

    plan = [Camera(clip[:4]), Camera(big)]
    monkeypatch.setattr(capture, "open_capture", lambda target, kind, options: plan.pop(0))
    source = VideoSource(0, SourceOptions(reconnect_delays=(0.0, 0.0, 0.0)))
    prompts = {"boxes": [_box(rings[0])]}
    got = list(seg.stream(source, task="prompt", prompts=prompts, max_frames=N))
    assert source.reconnects == 1 and len(got) == N
    for t, (frame, res) in enumerate(got):
        assert res.frame_hw == frame.shape[:2] == ((360, 480) if t < 4 else (720, 960))
        (rec,) = res.objects
        assert rec.id == 1 and rec.state == "tracked", t
        ref = rings[t] if t < 4 else np.kron(rings[t], np.ones((2, 2), bool))
        assert _iou(rec.mask, ref) >= 0.6, t

    pt = seg.prompt_tracker()
    pt.add(clip[3], boxes=[_box(rings[3])])
    with pytest.raises(InputError, match="720 x 960 in a stream of 360 x 480"):
        pt.step(big[0])
    assert pt.step(big[0], rescale=True).objects[0].state == "tracked"


# ------------------------------------------------------------------ errors, whole kind
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "segment"}, "task must be"),
        ({"task": "prompt"}, "needs|give prompts"),
        ({"task": "prompt", "prompts": {"boxes": [(1, 1, 9, 9)]}, "tracker": "T"}, "tracker="),
        ({"task": "panoptic", "tracker": "T"}, "tracker="),
        ({"prompts": {"point": [(1, 1)]}}, "keys among"),
        ({"prompts": {}}, "non-empty"),
        ({"prompts": []}, "non-empty"),
        ({"prompts": "1,2"}, "mapping"),
        ({"prompts": [{"boxes": [(1, 1, 9, 9)]}, 5]}, r"prompts\[1\]"),
        ({"task": "prompt", "prompt_tracker": object()}, "PromptTracker"),
    ],
)
def test_stream_settings_are_config_errors(seg, clip, kwargs, match):
    if kwargs.get("tracker") == "T":
        kwargs = {**kwargs, "tracker": seg.new_tracker()}
    with pytest.raises(ConfigError, match=match):
        next(seg.stream(iter(clip), **kwargs))


BAD_PROMPTS = [
    ({"points": [(np.nan, 5)]}, "finite"),
    ({"points": [(5, np.inf)]}, "finite"),
    ({"boxes": [(0, 0, np.nan, 9)]}, "finite"),
    ({"boxes": [(0, 0, 9, np.inf)]}, "finite"),
    ({"points": [(5000, 10)]}, "inside"),
    ({"points": [(-1, 10)]}, "inside"),
    ({"boxes": [(600, 400, 700, 500)]}, "overlap"),
    ({"boxes": [(9, 0, 9, 9)]}, "x1 > x0"),
    ({"boxes": [(0, 9, 9, 2)]}, "y1 > y0"),
    ({"boxes": (1, 1, 9, 9)}, "P x 4"),
    ({"boxes": [[[1, 1, 9, 9]]]}, "P x 4"),
    ({"points": (5, 5)}, "P x 2"),
    ({"points": [(5, 5, 5)]}, "P x 2"),
    ({"points": [("5", "5")]}, "real numbers"),
    ({"points": [(5, 5)], "labels": [2]}, "1 .positive. or 0"),
    ({"points": [(5, 5)], "labels": [0.5]}, "labels must be"),
    ({"points": [(5, 5)], "labels": [[1]]}, "labels must be"),
    ({"points": [(5, 5)], "labels": [0]}, "positive"),
    ({"labels": [1]}, "without points"),
    ({"points": [], "boxes": np.zeros((0, 4))}, "needs"),
    ({"boxes": [(0, 0, 9, 9)] * 257}, "max_objects"),
]


@pytest.mark.parametrize(("prompts", "match"), BAD_PROMPTS)
def test_bad_prompts_are_input_errors_in_add_and_stream(seg, clip, prompts, match):
    pt = seg.prompt_tracker()
    with pytest.raises(InputError, match=match):
        pt.add(clip[0], **prompts)
    assert pt.ids == []
    with pytest.raises(InputError, match=match):
        next(seg.stream(iter(clip), task="prompt", prompts=prompts, prompt_tracker=pt))
    assert pt.ids == []


def test_ids_frames_and_embeddings_are_checked(seg, clip, rings):
    pt = seg.prompt_tracker()
    (oid,) = pt.add(clip[0], boxes=[_box(rings[0])])
    for bad in (2, -1, True, 1.0, "1", None):
        with pytest.raises(InputError, match="no tracked object"):
            pt.remove(bad)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="no tracked object"):
            pt.refine(bad, points=[(5, 5)])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="finite"):
        pt.refine(oid, points=[(np.nan, 5)])
    with pytest.raises(InputError, match="inside"):
        pt.refine(oid, points=[(480.5, 5)])
    with pytest.raises(InputError, match="needs a frame"):
        pt.step(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="uint8"):
        pt.step(clip[1].astype(np.float32))
    other = dataclasses.replace(seg.set_image(clip[1]), encoder="another encoder")
    with pytest.raises(InputError, match="another encoder"):
        pt.step(other)
    with pytest.raises(InputError, match="another encoder"):
        seg.prompt_tracker().step(other)  # refused also with no object to decode
    assert pt.ids == [oid] and pt.frame_index == 0  # nothing above changed the tracker
