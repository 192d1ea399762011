"""Prompt tracker (``runtime.prompt_tracker``): a box or clicks given once follow the sample
clip; ids stay distinct; refine / remove; the state machine; typed errors; bounded state.

The reference mask of an object on each frame is the shipped default model's own panoptic
segment of the same class (the clip has one thing object, class 4, and stuff regions). Its
measured agreement with the tracked masks (edge-s-synthetic, 320 px, this CPU): the thing
object's IoU is 0.81 to 0.96 over frames 1..20, mean 0.90 (from one click at its centre:
min 0.81, mean 0.87 over frames 1..10); the large stuff region's 0.99. The thresholds
below (every frame >= 0.7, mean >= 0.85 for the thing; >= 0.8 mean from a click; >= 0.95
for the region) leave room for backend rounding (OpenVINO / ONNX Runtime) but fail on a tracker
that drifts off the object, loses it, or swaps objects (the two objects' masks overlap by
< 0.1 IoU).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rapsam_edge.assets import sample_clip
from rapsam_edge.errors import ConfigError, InputError
from rapsam_edge.runtime.prompt_tracker import PromptTrackerConfig
from rapsam_edge.runtime.segmenter import Segmenter

cv2 = pytest.importorskip("cv2")

THING, REGION = 4, 10  # the clip's thing class and a large stuff class of the default model


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(sample_clip()))
    frames = []
    while len(frames) < 21:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 21
    return frames


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Segmenter:
    with Segmenter(shipped_bundle, color_order="BGR") as s:
        yield s


@pytest.fixture(scope="module")
def refs(seg, clip) -> dict[int, list[np.ndarray]]:
    """class -> that class's panoptic segment on each frame of the clip."""
    out: dict[int, list[np.ndarray]] = {THING: [], REGION: []}
    for frame in clip:
        pan = seg.panoptic(frame)
        for cls in out:
            ids = pan.segments["id"][pan.segments["class"] == cls]
            assert ids.size == 1, f"class {cls} is one segment on every clip frame"
            out[cls].append(pan.panoptic_map == ids[0])
    return out


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_two_boxed_objects_follow_the_clip_with_distinct_ids(seg, clip, refs):
    pt = seg.prompt_tracker()
    ids = pt.add(clip[0], boxes=[_box(refs[THING][0]), _box(refs[REGION][0])])
    assert ids == [1, 2] and pt.ids == [1, 2]
    thing, region = [], []
    for t in range(1, 21):
        res = pt.step(clip[t])
        assert res.ids == ids and res.frame_index == t - 1
        a, b = res.get(1), res.get(2)
        assert a is not None and b is not None
        assert a.state == b.state == "tracked", (t, a.score, a.similarity)
        assert a.mask.shape == clip[t].shape[:2] and a.mask.dtype == bool
        assert list(a.box) == _box(a.mask)
        assert _iou(a.mask, b.mask) < 0.1  # two objects, not one mask twice
        thing.append(_iou(a.mask, refs[THING][t]))
        region.append(_iou(b.mask, refs[REGION][t]))
        assert {"encoder", "decoder", "tracking"} <= set(res.timings)
    print(f"thing IoU min {min(thing):.3f} mean {np.mean(thing):.3f}; region min {min(region):.3f}")
    assert min(thing) >= 0.7 and np.mean(thing) >= 0.85
    assert min(region) >= 0.95


def test_one_click_object_is_tracked_and_added_mid_stream(seg, clip, refs):
    pt = seg.prompt_tracker()
    assert pt.step(clip[0]).objects == []  # no object yet: still the frame's encoder pass
    ys, xs = np.nonzero(refs[THING][0])
    (oid,) = pt.add(None, points=[(xs.mean(), ys.mean())], labels=[1])  # on the stepped frame
    ious = [_iou(pt.step(clip[t]).objects[0].mask, refs[THING][t]) for t in range(1, 11)]
    print(f"click: thing IoU min {min(ious):.3f} mean {np.mean(ious):.3f}")
    assert oid == 1 and min(ious) >= 0.7 and np.mean(ious) >= 0.8
    # an object added on a later frame, by an embedding from set_image
    (second,) = pt.add(seg.set_image(clip[11]), boxes=[_box(refs[REGION][11])])
    res = pt.step(clip[12])
    assert second == 2 and res.ids == [1, 2]
    assert _iou(res.get(2).mask, refs[REGION][12]) >= 0.95


def test_refine_changes_the_mask_and_remove_forgets(seg, clip, refs):
    pt = seg.prompt_tracker()
    (oid,) = pt.add(clip[0], boxes=[_box(refs[THING][0])])
    before = pt.step(clip[1]).get(oid)
    assert before is not None and before.state == "tracked"
    ys, xs = np.nonzero(refs[REGION][1])
    i = len(xs) // 2
    fixed = pt.refine(
        oid, points=[(xs[i], ys[i]), (before.box[0] + 2, before.box[1] + 2)], labels=[1, 0]
    )
    assert _iou(fixed.mask, before.mask) < 0.1 and _iou(fixed.mask, refs[REGION][1]) >= 0.8
    after = pt.step(clip[2]).get(oid)
    assert after is not None and _iou(after.mask, refs[REGION][2]) >= 0.8  # follows the fix
    pt.remove(oid)
    assert pt.ids == [] and pt.step(clip[3]).objects == []
    with pytest.raises(InputError, match=f"id {oid}"):
        pt.remove(oid)


def test_occluded_then_lost_then_recovered_under_the_same_id(seg, clip, refs):
    pt = seg.prompt_tracker(PromptTrackerConfig(max_occluded=3))
    (oid,) = pt.add(clip[0], boxes=[_box(refs[THING][0])])
    box = list(pt.step(clip[1]).get(oid).box)
    blank = np.zeros_like(clip[0])
    states = []
    for _ in range(4):
        rec = pt.step(blank).get(oid)
        states.append(rec.state)
        assert not rec.mask.any() and list(rec.box) == box  # last box kept
    assert states == ["occluded", "occluded", "lost", "lost"]
    back = pt.step(clip[2]).get(oid)
    assert back.state == "tracked" and _iou(back.mask, refs[THING][2]) >= 0.7


def test_errors_are_typed(seg, clip, refs):
    pt = seg.prompt_tracker()
    with pytest.raises(InputError, match="no frame yet"):
        pt.add(None, boxes=[(0, 0, 10, 10)])
    with pytest.raises(InputError, match="no frame yet"):
        pt.add(None, points=[(1, 1)])
    with pytest.raises(InputError, match="id 7"):
        pt.refine(7, points=[(5, 5)])
    with pytest.raises(InputError, match="id 7"):
        pt.state(7)
    with pytest.raises(InputError, match="overlap"):
        pt.add(clip[0], boxes=[(600, 400, 700, 500)])
    with pytest.raises(InputError, match="inside"):
        pt.add(clip[0], points=[(-5, 10)])
    with pytest.raises(InputError, match="positive"):
        pt.add(clip[0], points=[(5, 5)], labels=[0])
    with pytest.raises(InputError, match="labels"):
        pt.add(clip[0], points=[(5, 5)], labels=[1, 1])
    with pytest.raises(InputError, match="needs"):
        pt.add(clip[0])
    with pytest.raises(InputError, match="empty mask"):  # a click undone by its negative twin
        pt.add(clip[0], points=[(5, 5), (5, 5)], labels=[1, 0], boxes=[_box(refs[THING][0])])
    assert pt.ids == []  # failed adds leave nothing behind
    assert pt.add(clip[0], boxes=[_box(refs[THING][0])]) == [1]
    with pytest.raises(InputError, match="inside"):
        pt.refine(1, points=[(10, 400)])  # below the 360-row frame
    with pytest.raises(InputError, match="id True"):
        pt.remove(True)  # a bool is not the id 1
    with pytest.raises(InputError, match="360 x 480"):
        pt.step(clip[1][:200])
    with pytest.raises(InputError, match="360 x 480"):
        pt.add(clip[1][:, :300], boxes=[(0, 0, 10, 10)])
    small = seg.prompt_tracker(PromptTrackerConfig(max_objects=2))
    with pytest.raises(InputError, match="max_objects=2"):
        small.add(clip[0], boxes=[(0, 0, 10, 10)] * 3)
    small.add(clip[0], boxes=[(0, 0, 10, 10)] * 2)
    with pytest.raises(InputError, match="max_objects=2"):
        small.add(None, boxes=[(0, 0, 10, 10)])
    with pytest.raises(ConfigError, match="max_prompts"):
        seg.prompt_tracker(PromptTrackerConfig(max_objects=seg.max_prompts + 1))
    for bad in ({"margin": -1}, {"min_score": 2}, {"max_occluded": 0}, {"min_area": 1.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            PromptTrackerConfig(**bad)
    with pytest.raises(ConfigError):
        seg.prompt_tracker({"margin": 0.1})  # type: ignore[arg-type]
    pt.reset()
    assert pt.ids == [] and pt.step(clip[1][:200]).objects == []  # a new video, any size


def test_candidates_beyond_max_prompts_are_decoded_in_several_calls(shipped_bundle, clip, refs):
    """An object has up to three candidate prompts (its last box, the prompt of its accepted
    mask, the widened search box): with max_prompts=1 they go to several decoder calls and
    the tracker gives the masks it gives with room for all in one call."""
    box = _box(refs[THING][0])
    with Segmenter(shipped_bundle, color_order="BGR", max_prompts=1) as one:
        wide = Segmenter(shipped_bundle, color_order="BGR")
        pts = [one.prompt_tracker(), wide.prompt_tracker()]
        for pt in pts:
            assert pt.add(clip[0], boxes=[box]) == [1]
        for t in range(1, 6):
            a, b = (pt.step(clip[t]).objects[0] for pt in pts)
            assert len(pts[0]._search_boxes(clip[t].shape[:2])[0]) >= 2  # more than 1 prompt
            assert a.state == b.state == "tracked" and a.box.tolist() == b.box.tolist()
            assert _iou(a.mask, b.mask) >= 0.99 and _iou(a.mask, refs[THING][t]) >= 0.7
        wide.close()


def _state_size(pt) -> tuple:
    objs = pt._objects
    return (
        len(objs),
        tuple(o.box.nbytes + o.memory.nbytes + o.prompt.nbytes for o in objs.values()),
        sys.getsizeof(objs),
        tuple(sorted(vars(pt))),
        pt._emb.feats.nbytes,
    )


def test_state_is_bounded_over_10000_frames(shipped_bundle):
    """Nothing grows with the frame count: the state's sizes after 10,000 steps (tracked,
    occluded, lost, recovered, refined, removed and re-added objects) equal those after
    the first hundred."""
    with Segmenter(shipped_bundle, backend="ort-cpu", input_size=32) as seg:
        pt = seg.prompt_tracker(PromptTrackerConfig(max_occluded=2))
        frame = np.zeros((24, 32, 3), np.uint8)
        frame[6:18, 8:20] = 255
        blank = np.zeros_like(frame)
        pt.add(frame, boxes=[(8, 6, 20, 18), (0, 0, 32, 24)])
        sizes, states = [], set()
        for t in range(10_000):
            res = pt.step(blank if t % 50 in (1, 2, 3) else frame)
            states.update(o.state for o in res.objects)
            if t % 1000 == 500:
                pt.refine(pt.ids[0], points=[(14, 12)])
                pt.remove(pt.ids[-1])
                pt.add(None, boxes=[(0, 0, 32, 24)])
            if t in (100, 9_999):
                sizes.append(_state_size(pt))
        assert pt.frame_index == 10_000
        assert sizes[0] == sizes[1]
        assert states == {"tracked", "occluded", "lost"}


@pytest.mark.parametrize(
    "hw",
    [(1, 1), (5000, 1), (1, 480), (31, 40), (360, 31), (360, 1000), (720, 480), (100, 300)],
)
def test_rescale_refuses_a_size_that_is_no_resolution_change_of_the_view(seg, clip, refs, hw):
    """step(rescale=True) takes a frame of another size as the same view at another
    resolution only with both sides >= RESCALE_MIN_SIDE and the aspect ratio within
    RESCALE_MAX_ASPECT of the last frame's; anything else is an InputError that leaves the
    tracker as it was (its boxes not scaled, the frame not counted)."""
    pt = seg.prompt_tracker()
    pt.add(clip[0], boxes=[_box(refs[THING][0])])
    before = pt.step(clip[1])
    with pytest.raises(InputError, match=rf"frame of {hw[0]} x {hw[1]} \(H x W\) after 360 x"):
        pt.step(np.zeros((*hw, 3), np.uint8), rescale=True)
    after = pt.step(clip[2])  # the same size as before: tracked on, boxes untouched
    assert after.frame_index == before.frame_index + 1 and after.frame_hw == (360, 480)
    assert after.objects[0].state == "tracked"
    assert _iou(after.objects[0].mask, refs[THING][2]) > 0.5


@pytest.mark.parametrize("wh", [(640, 480), (240, 180), (640, 360), (360, 360)])
def test_rescale_scales_the_boxes_to_a_new_mode_of_the_same_view(seg, clip, refs, wh):
    """4:3 at another resolution, a 16:9 or 1:1 mode (aspect within 1.5x): boxes scaled,
    every reported box non-empty inside the new frame."""
    pt = seg.prompt_tracker()
    pt.add(clip[0], boxes=[_box(refs[THING][0])])
    res = pt.step(cv2.resize(clip[1], wh, interpolation=cv2.INTER_AREA), rescale=True)
    assert res.frame_hw == (wh[1], wh[0])
    (obj,) = res.objects
    x0, y0, x1, y1 = (int(v) for v in obj.box)
    assert 0 <= x0 < x1 <= wh[0] and 0 <= y0 < y1 <= wh[1], obj.box


def test_a_tiny_box_scaled_down_keeps_one_pixel_and_a_valid_report(seg, clip):
    """A 2-pixel box scaled by 1/8 would round to an empty box (no prompt: the object gone,
    or reported 'tracked' at [0, 0, 0, 0]); it is kept >= 1 pixel a side, inside the frame,
    also at the frame's edge."""
    from rapsam_edge.runtime.prompt_parts import rescaled

    got = rescaled((2880, 3840), (360, 480), [np.array([100.0, 100, 102, 102])])[0]
    assert got[2] - got[0] >= 1 and got[3] - got[1] >= 1 and int(got[2]) > int(got[0])
    edge = rescaled((2880, 3840), (360, 480), [np.array([3838.0, 2878, 3840, 2880])])[0]
    assert edge[2] <= 480 and edge[3] <= 360 and edge[2] - edge[0] >= 1, edge
    pt = seg.prompt_tracker()
    big = cv2.resize(clip[0], (1920, 1440), interpolation=cv2.INTER_LINEAR)
    pt.add(big, boxes=[(900, 700, 1100, 900)])
    res = pt.step(cv2.resize(clip[1], (240, 180), interpolation=cv2.INTER_AREA), rescale=True)
    (obj,) = res.objects
    x0, y0, x1, y1 = (int(v) for v in obj.box)
    assert x1 > x0 and y1 > y0, obj.box  # whatever the state, never an empty box


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points": [(100, 200)], "labels": [True]}, "labels must be ints"),
        ({"points": [(100, 200)], "labels": np.array([True])}, "labels must be ints"),
        (
            {"points": [(100, 200), (50, 50)], "labels": [1, True]},
            "labels must be ints 0 / 1, not bools",
        ),
        ({"points": [(100, 200)], "labels": [1.0]}, "labels must be ints"),
        ({"points": [(100, 200)], "labels": ["1"]}, "labels must be ints"),
        ({"points": [(100, True)], "labels": [1]}, "points must be numbers, not bools"),
        ({"boxes": [(10, 10, True, 50)]}, "boxes must be numbers, not bools"),
        ({"boxes": [[10, 10, 50, np.True_]]}, "boxes must be numbers, not bools"),
        ({"points": [(10, 20)], "labels": [1, 1]}, r"one per point \(1 for 1 point\)"),
        ({"points": [(10, 20), (5, 5)], "labels": [1]}, r"\(2 for 2 points\)"),
    ],
)
def test_labels_are_ints_and_no_prompt_holds_a_bool(seg, clip, kwargs, match):
    """The SDK's rule for prompt numbers (``as_coords``: bools refused) holds for labels too
    and for bools mixed into a list of ints (numpy would turn them into 1 / 0)."""
    pt = seg.prompt_tracker()
    pt.step(clip[0])
    with pytest.raises(InputError, match=match):
        pt.add(None, **kwargs)
    assert pt.ids == []
    if "labels" in kwargs:  # refine's clicks: the same rule
        (oid,) = pt.add(None, points=[(100, 200)], labels=[1])
        with pytest.raises(InputError, match=match):
            pt.refine(oid, **kwargs)


@pytest.mark.parametrize("bad", ["yes", 1, 0, None, 1.0, "False"])
def test_rescale_must_be_a_bool(seg, clip, bad):
    pt = seg.prompt_tracker()
    with pytest.raises(InputError, match="rescale must be True or False"):
        pt.step(clip[0], rescale=bad)
    assert pt.frame_index == 0
    assert pt.step(clip[0], rescale=np.bool_(True)).frame_index == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((), {"foo": 1}, "unknown setting 'foo'; the settings are margin, max_growth"),
        ((), {"max_box_growth": 0.2}, "unknown setting 'max_box_growth'"),
        ((), {"min_mask_pixels": 5}, "unknown setting 'min_mask_pixels'.*min_area"),
        ((0.1,), {"margin": 0.2}, "margin given twice"),
        (tuple(range(10)), {}, "10 positional settings for 9"),
    ],
)
def test_an_unknown_config_setting_is_a_config_error_listing_the_valid_ones(args, kwargs, match):
    import dataclasses

    with pytest.raises(ConfigError, match=match):
        PromptTrackerConfig(*args, **kwargs)
    if kwargs and not args:
        with pytest.raises(ConfigError, match=match):
            dataclasses.replace(PromptTrackerConfig(), **kwargs)
    assert PromptTrackerConfig(max_growth=0.2, min_area=5).min_area == 5
