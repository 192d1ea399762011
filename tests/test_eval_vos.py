"""Prompted video object segmentation evaluation (``rapsam-edge eval --task vos``): the DAVIS
measures on hand-made masks with values worked out by hand, and the protocol driven through
fake prompt trackers on a tiny YouTube-VIS set written by the SDK's own writer: an oracle
(J&F = 1), a shifted-mask tracker (J and F computed by hand), trackers that keep a stale mask,
hide objects or swap ids, and the CLI's checks; the panoptic tracker's comparison through fake
track-map trackers, and the one ID-switch rule both trackers (and ``eval.harness``) share.

The tiny set (40 x 48 frames: the boundary tolerance is ceil(0.008 x 62.5) = 1 pixel):
video 1, 6 frames: A, rows 5..14 x cols 5+t..12+t, on every frame; B, rows 20..29 x cols
25..32, on frames 2, 3 and 5 (it leaves on frame 4 and comes back). Video 2, 6 frames: C, rows
10..19 x cols 10..17, on frames 3..5; D, rows 25..34 x cols 30..37, on frame 5 only (no later
frame: not scored). Scored frames: A 1..5, B 3..5, C 4..5 (10 object-frames).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rapsam_edge.cli import main
from rapsam_edge.data.segments import Segment
from rapsam_edge.data.ytvis import YtvisDataset, YtvisWriter
from rapsam_edge.errors import BackendError, DatasetError
from rapsam_edge.eval.vos import (
    IdSwitches,
    VosScores,
    boundary_f,
    boundary_map,
    boundary_radius,
    count_id_switches,
    index_map_predictions,
    region_j,
)
from rapsam_edge.eval.vos_protocol import (
    evaluate_vos,
    find_ytvis_root,
    first_box,
    first_click,
    panoptic_tracker_of,
)

H, W, T = 40, 48, 6


def _rect(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


# ------------------------------------------------------------------------- J: region
def test_region_j_on_hand_made_masks():
    g, p = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    g[0, :4] = True  # 4 pixels
    p[0, 1:4] = True
    p[1, :3] = True  # 6 pixels, 3 shared
    assert region_j(g, p) == pytest.approx(3 / 7)
    assert region_j(g, g) == 1.0
    empty = np.zeros((4, 4), bool)
    assert region_j(empty, empty) == 1.0  # DAVIS: both empty -> 1
    assert region_j(empty, p) == 0.0 and region_j(g, empty) == 0.0
    with pytest.raises(ValueError, match="shape"):
        region_j(g, np.zeros((4, 5), bool))


# ----------------------------------------------------------------------- F: boundary
def test_boundary_map_follows_seg2bmap():
    """A rectangle's boundary is the outline of the rectangle grown by one pixel up and left
    (half a pixel towards the origin); pixels on the last row / column compare one
    neighbour; a mask filling the frame has no boundary at all."""
    g = _rect(5, 15, 5, 13)
    want = np.zeros((H, W), bool)
    want[4:15, 4:13] = True
    want[5:14, 5:12] = False  # the outline of rows 4..14 x cols 4..12
    assert np.array_equal(boundary_map(g), want)
    assert boundary_map(g).sum() == 2 * (10 + 8)
    corner = np.zeros((4, 5), bool)
    corner[3, 4] = True  # the bottom-right pixel itself is never a boundary pixel
    assert sorted(map(tuple, np.argwhere(boundary_map(corner)))) == [(2, 3), (2, 4), (3, 3)]
    assert not boundary_map(np.ones((5, 6), bool)).any()
    assert not boundary_map(np.zeros((5, 6), bool)).any()


def test_boundary_radius_is_a_fraction_of_the_diagonal():
    assert boundary_radius((H, W)) == 1  # 0.008 x 62.5 = 0.4998 -> 1
    assert boundary_radius((480, 854)) == 8  # DAVIS 480p: 0.008 x 979.7 = 7.84 -> 8
    assert boundary_radius((H, W), tolerance=3) == 3  # >= 1: pixels
    with pytest.raises(ValueError):
        boundary_radius((H, W), tolerance=float("nan"))


def test_boundary_f_on_shifted_rectangles():
    """10 x 8 rectangle shifted right by s (outlines 2s apart in x):
    s = 1: every boundary pixel within 1 px -> F = 1 (J = 7/9);
    s = 2: of the 36 predicted boundary pixels, 8 + 8 on the top and bottom rows and 2 on the
    left column are within 1 px of the GT outline -> P = R = 18/36, F = 0.5 (J = 6/10);
    s = 2 with a 2-pixel tolerance -> F = 1."""
    g = _rect(5, 15, 5, 13)
    assert boundary_f(g, g) == 1.0
    assert boundary_f(g, _rect(5, 15, 6, 14)) == pytest.approx(1.0)
    assert region_j(g, _rect(5, 15, 6, 14)) == pytest.approx(7 / 9)
    assert boundary_f(g, _rect(5, 15, 7, 15)) == pytest.approx(0.5)
    assert region_j(g, _rect(5, 15, 7, 15)) == pytest.approx(0.6)
    assert boundary_f(g, _rect(5, 15, 7, 15), tolerance=2) == pytest.approx(1.0)


def test_boundary_f_dilates_with_a_disk_not_a_square():
    """Shifted by one pixel down and right, one boundary pixel of each mask (a corner) is
    only diagonally next to the other outline: outside a radius-1 disk -> P = R = 35/36."""
    g = _rect(5, 15, 5, 13)
    assert boundary_f(g, _rect(6, 16, 6, 14)) == pytest.approx(35 / 36)


def test_boundary_f_empty_cases():
    empty = np.zeros((H, W), bool)
    g = _rect(5, 15, 5, 13)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, g) == 0.0  # P = 0, R = 1
    assert boundary_f(g, empty) == 0.0  # P = 1, R = 0
    full = np.ones((H, W), bool)  # no boundary (seg2bmap): as an empty mask
    assert boundary_f(full, full) == 1.0 and boundary_f(full, g) == 0.0


def _slow_boundary(m: np.ndarray) -> np.ndarray:
    """The seg2bmap rule pixel by pixel, as the module docstring states it."""
    h, w = m.shape
    out = np.zeros_like(m)
    for y in range(h):
        for x in range(w):
            if y < h - 1 and x < w - 1:
                near = [(y, x + 1), (y + 1, x), (y + 1, x + 1)]
            elif y == h - 1 and x < w - 1:
                near = [(y, x + 1)]
            elif x == w - 1 and y < h - 1:
                near = [(y + 1, x)]
            else:
                near = []
            out[y, x] = any(m[p] != m[y, x] for p in near)
    return out


def _slow_f(gt: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """F from pixel distances: a boundary pixel matches when one of the other boundary's
    pixels lies within ``radius`` (Euclidean)."""
    gb, pb = np.argwhere(_slow_boundary(gt)), np.argwhere(_slow_boundary(pred))
    if len(gb) == 0 or len(pb) == 0:
        return 1.0 if len(gb) == len(pb) else 0.0

    def matched(a: np.ndarray, b: np.ndarray) -> int:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return int((d2.min(axis=1) <= radius * radius).sum())

    p, r = matched(pb, gb) / len(pb), matched(gb, pb) / len(gb)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


@pytest.mark.parametrize("seed", range(6))
def test_boundary_measures_match_a_pixel_by_pixel_reading(seed: int):
    """Random blobby masks (touching the frame's edges too), tolerances of 1 to 3 pixels."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(6, 30)), int(rng.integers(6, 30)))
    masks = []
    for _ in range(2):
        small = rng.random((shape[0] // 3 + 1, shape[1] // 3 + 1)) < 0.45
        masks.append(np.kron(small, np.ones((3, 3), bool))[: shape[0], : shape[1]])
    gt, pred = masks
    assert np.array_equal(boundary_map(gt), _slow_boundary(gt))
    for radius in (1, 2, 3):
        assert boundary_f(gt, pred, tolerance=radius) == pytest.approx(_slow_f(gt, pred, radius))


def test_scores_average_per_object_then_over_objects():
    """Object a: one frame at J = 0; object b: three frames at J = 1 -> J = 0.5 (a frame
    average would say 0.75)."""
    s = VosScores()
    g = _rect(5, 15, 5, 13)
    s.add("a", g, np.zeros((H, W), bool))
    for _ in range(3):
        s.add("b", g, g)
    out = s.compute()
    assert out["j"] == pytest.approx(0.5) and out["f"] == pytest.approx(0.5)
    assert out["jf"] == pytest.approx(0.5) and out["objects"] == 2 and out["frames"] == 4
    assert math.isnan(VosScores().compute()["jf"])


# ------------------------------------------------------------------------ ID switches
def test_id_switches_on_a_scripted_sequence():
    """The GT object (prompted as id 1) on 7 frames: matched by 1, 1, nobody (IoU 0.4),
    absent, 2 (switch), 2, 1 (switch back) -> 2 switches; 5 matched of 6 visible frames."""
    g = _rect(5, 15, 5, 13)  # 80 px
    half = _rect(5, 15, 5, 9)  # 40 px inside g: IoU 0.5 (matches)
    weak = _rect(5, 9, 5, 13)  # 32 px inside g: IoU 0.4 (does not)
    empty = np.zeros((H, W), bool)
    frames = [
        (g, {1: g, 2: empty}),
        (g, {1: half, 2: weak}),
        (g, {1: weak}),
        (empty, {1: g}),
        (g, {1: weak, 2: g}),
        (g, {2: g, 1: half}),  # 2 kept (still valid; the higher IoU too)
        (g, {1: g, 3: g}),  # tie at IoU 1: the lower id
    ]
    counter = IdSwitches(initial_id=1)
    matches = [counter.update(gt, preds) for gt, preds in frames]
    assert matches == [1, 1, None, None, 2, 2, 1]
    assert (counter.switches, counter.matched, counter.visible) == (2, 5, 6)
    assert count_id_switches([f[0] for f in frames], [f[1] for f in frames], 1) == 2
    # prompted as 7 but answered as 1 from the first frame on: one switch
    assert count_id_switches([g, g], [{1: g}, {1: g}], initial_id=7) == 1


def test_a_still_valid_match_is_kept():
    """CLEAR-MOT: the previous match stays while its IoU is >= 0.5, even when another
    (overlapping) predicted mask scores higher: that one drifted onto this object, which is
    its error, not a switch of this one. Once the previous match falls under 0.5, the best
    other one takes over (a switch)."""
    g = _rect(5, 15, 5, 13)  # 80 px
    wide = _rect(5, 15, 5, 14)  # 90 px, IoU 80/90
    half = _rect(5, 15, 5, 9)  # IoU 0.5
    weak = _rect(5, 9, 5, 13)  # IoU 0.4
    counter = IdSwitches(initial_id=2)
    assert counter.update(g, {1: g, 2: wide}) == 2  # 1 scores 1.0, but 2 is still valid
    assert counter.update(g, {1: g, 2: half}) == 2  # exactly 0.5 is still valid
    assert counter.update(g, {1: wide, 2: weak}) == 1  # 2 fell under 0.5: a switch
    assert counter.update(g, {1: half, 2: g}) == 1  # and 1 is kept in turn
    assert counter.switches == 1
    # without a previous match the highest IoU wins; absent ids are simply not kept
    assert IdSwitches().match(g, {1: wide, 2: g}) == 2
    assert IdSwitches().match(g, {1: wide, 2: g}, keep=3) == 2
    assert IdSwitches().match(g, {1: wide, 2: g}, keep=1) == 1


def test_id_switches_without_an_initial_id():
    """No id yet (a panoptic track not matched on the prompt frame): the first match sets it
    without a switch; a miss then a re-acquire under the same id is no switch; a swap to
    another id and back is two."""
    g = _rect(5, 15, 5, 13)
    empty = np.zeros((H, W), bool)
    assert count_id_switches([g, g], [{}, {4: g}]) == 0
    assert count_id_switches([g, g, g, g], [{4: g}, {}, {4: empty, 5: empty}, {4: g}]) == 0
    assert count_id_switches([g, g, g], [{4: g}, {5: g}, {4: g}]) == 2
    assert count_id_switches([g, empty, g], [{4: g}, {5: g}, {4: g}]) == 0  # absent: nothing
    counter = IdSwitches()
    assert [counter.update(g, {9: g}), counter.update(g, {3: g})] == [9, 3]
    assert (counter.switches, counter.matched, counter.visible, counter.last) == (1, 2, 2, 3)


def test_index_map_predictions_keeps_only_ids_touching_the_object():
    tmap = np.zeros((H, W), np.int32)
    tmap[5:15, 5:9] = 2
    tmap[5:15, 9:13] = 7
    tmap[30:35, 30:35] = 4  # far from the object
    g = _rect(5, 15, 5, 13)
    preds = index_map_predictions(tmap, g)
    assert sorted(preds) == [2, 7] and all(isinstance(k, int) for k in preds)
    assert np.array_equal(preds[2], tmap == 2)
    assert IdSwitches().match(g, preds) == 2  # IoU 0.5 each: the lower id


def _old_harness_id_switches(track_maps, gt_instances):
    """``eval.harness._id_switches`` as it was before it used ``eval.vos.IdSwitches``."""
    switches, frames = 0, 0
    for inst in gt_instances:
        last = None
        for t in range(len(track_maps)):
            gt = inst.masks[t]
            if not gt.any():
                continue
            frames += 1
            ids, counts = np.unique(track_maps[t][gt], return_counts=True)
            best, best_iou = None, 0.0
            for tid, inter in zip(ids.tolist(), counts.tolist()):
                if tid == 0:
                    continue
                union = gt.sum() + (track_maps[t] == tid).sum() - inter
                if inter / union >= 0.5 and inter / union > best_iou:
                    best, best_iou = tid, inter / union
            if best is None:
                continue
            if last is not None and best != last:
                switches += 1
            last = best
    return switches, frames


@pytest.mark.parametrize("seed", range(4))
def test_harness_id_switches_keep_their_meaning(seed: int):
    """The video eval's ID switches, now counted by ``IdSwitches``, equal the old rule on
    random track maps (blocks of a few ids, some frames empty, GT objects that come and go).
    On an id map the rules differ only where two disjoint tracks each have IoU exactly 0.5
    (two halves of the GT object), impossible here: track areas are multiples of 16 pixels,
    a GT object 36 (see test_the_one_case_where_the_harness_count_differs)."""
    from rapsam_edge.eval.harness import _id_switches

    rng = np.random.default_rng(seed)
    t_, h, w = 8, 12, 12
    maps = np.kron(rng.integers(0, 4, (t_, 3, 3)), np.ones((1, 4, 4), np.int64))
    maps[rng.random(t_) < 0.2] = 0
    gts = []
    for _ in range(3):
        m = np.zeros((t_, h, w), bool)
        r, c = rng.integers(0, 6, 2)
        m[:, r : r + 6, c : c + 6] = rng.random((t_, 1, 1)) < 0.8
        gts.append(SimpleNamespace(masks=m))
    got = _id_switches(maps, gts)
    assert got == _old_harness_id_switches(maps, gts)
    assert got[1] == sum(int(g.masks.any(axis=(1, 2)).sum()) for g in gts)


def test_the_one_case_where_the_harness_count_differs():
    """Two disjoint tracks, each exactly half of the GT object (IoU 0.5 each), after the
    right half was matched: the old rule took the lower id (a switch), the kept match stays."""
    from rapsam_edge.eval.harness import _id_switches

    maps = np.zeros((2, H, W), np.int32)
    maps[0, 5:15, 9:13] = 2  # frame 0: only the right half, id 2 (IoU 0.5)
    maps[1, 5:15, 5:9] = 1  # frame 1: left half id 1, right half id 2 (IoU 0.5 each)
    maps[1, 5:15, 9:13] = 2
    inst = SimpleNamespace(masks=np.stack([_rect(5, 15, 5, 13)] * 2))
    assert _old_harness_id_switches(maps, [inst]) == (1, 2)
    assert _id_switches(maps, [inst]) == (0, 2)


# ----------------------------------------------------------------- the tiny data set
#: (video, object) -> (rows, cols at frame t, frames where visible)
OBJECTS = {
    (1, "A"): ((5, 15), lambda t: (5 + t, 13 + t), range(6)),
    (1, "B"): ((20, 30), lambda t: (25, 33), (2, 3, 5)),
    (2, "C"): ((10, 20), lambda t: (10, 18), (3, 4, 5)),
    (2, "D"): ((25, 35), lambda t: (30, 38), (5,)),
}


@pytest.fixture(scope="module")
def ytvis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A make-data style root with ytvis/ written by ``YtvisWriter``."""
    root = tmp_path_factory.mktemp("vos")
    rng = np.random.default_rng(3)
    with YtvisWriter(root / "ytvis", "val") as writer:
        for video in (1, 2):
            images = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
            ids = np.zeros((T, H, W), np.int32)
            segments: list[list[Segment]] = [[] for _ in range(T)]
            objs = [(name, v) for (vid, name), v in OBJECTS.items() if vid == video]
            for sid, (_, (rows, cols, frames)) in enumerate(objs, start=1):
                for t in frames:
                    c0, c1 = cols(t)
                    ids[t, rows[0] : rows[1], c0:c1] = sid
                    area = (rows[1] - rows[0]) * (c1 - c0)
                    bbox = (c0, rows[0], c1 - c0, rows[1] - rows[0])
                    segments[t].append(Segment(sid, sid - 1, True, area, bbox))
            writer.add_video(images, ids, segments)
    return root


@dataclass
class FakeObject:
    id: int
    mask: np.ndarray
    box: tuple[float, float, float, float] | None
    score: float
    state: str


def _key(frame: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


class FakeTracker:
    """Answers from the ground truth (found by frame content). ``shift``: masks moved right by
    that many pixels; ``sticky``: an object keeps its last mask while it is absent; ``state``:
    the state of visible objects; ``swap_from``: from that frame on, the first two objects'
    answers are swapped; ``clock``: a list [seconds] advanced by (1 + 2k) ms per step."""

    def __init__(
        self,
        frames,
        log,
        *,
        shift=0,
        sticky=False,
        state="tracked",
        swap_from=None,
        clock=None,
        bad=None,
    ):
        self.frames, self.log, self.shift, self.sticky = frames, log, shift, sticky
        self.state, self.swap_from, self.clock, self.bad = state, swap_from, clock, bad
        self.objects: dict[int, list] = {}  # id -> [instance index, last mask]

    def add(self, frame, points=None, labels=None, boxes=None):
        _, t, masks = self.frames[_key(frame)]
        if boxes is not None:
            (box,) = boxes
            k = next(i for i, m in enumerate(masks) if m[t].any() and first_box(m[t]) == box)
            self.log.append(("add", t, "box", tuple(box)))
        else:
            ((x, y),) = points
            assert labels == [1] and x % 1 == 0.5 and y % 1 == 0.5  # pixel centres
            k = next(i for i, m in enumerate(masks) if m[t][int(y), int(x)])
            self.log.append(("add", t, "click", (x, y)))
        oid = len(self.objects) + 1
        self.objects[oid] = [k, masks[k][t]]
        return [oid, oid] if self.bad == "two ids" else [oid]

    def step(self, frame):
        _, t, masks = self.frames[_key(frame)]
        self.log.append(("step", t))
        if self.clock is not None:
            self.clock[0] += (1 + 2 * len(self.objects)) / 1000.0
        ids = list(self.objects)
        out = []
        for oid in ids:
            src = oid
            if (
                self.swap_from is not None
                and t >= self.swap_from
                and len(ids) > 1 >= ids.index(oid)
            ):
                src = ids[1 - ids.index(oid)]
            k, last = self.objects[src]
            mask = masks[k][t]
            if self.sticky and not mask.any():
                mask = last
            self.objects[src][1] = mask
            mask = np.roll(mask, self.shift, axis=1)  # the rectangles stay inside the frame
            state = self.state if mask.any() else "occluded"
            if self.bad == "shape":
                mask = mask[:, :-1]
            if self.bad == "float mask":
                mask = mask * 0.3
            bad_id = str(oid) if self.bad == "str id" else oid
            out.append(
                FakeObject(bad_id, mask, None, 1.0, "gone" if self.bad == "state" else state)
            )
        return type("Result", (), {"objects": out})()

    def remove(self, oid):
        del self.objects[oid]


def _frames(root: Path) -> dict:
    """frame content -> (video index, t, the GT masks of the video's instances)."""
    frames = {}
    for v, video in enumerate(YtvisDataset(root / "ytvis", "val")):
        masks = [inst.masks for inst in video.instances]
        for t, frame in enumerate(video.images):
            frames[_key(frame)] = (v, t, masks)
    return frames


def _factory(root: Path, log: list | None = None, **kw):
    frames = _frames(root)
    log = [] if log is None else log
    return lambda: FakeTracker(frames, log, **kw)


def _prompter(root: Path, shift: int = 0, bad: bool = False):
    """The oracle's box prompt from the ground truth: each box's GT mask, moved right by
    ``shift`` pixels (``bad``: one mask too few)."""
    frames = _frames(root)

    def prompt(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        _, t, masks = frames[_key(frame)]
        assert boxes.shape == (len(boxes), 4)
        out = [
            np.roll(
                next(m[t] for m in masks if m[t].any() and first_box(m[t]) == tuple(b)), shift, 1
            )
            for b in boxes
        ]
        return np.array(out[:-1] if bad else out, dtype=bool).reshape(-1, H, W)

    return prompt


def _run(root: Path, shift: int = 0, **kw):
    """All three modes: the fake tracker (``kw``) and the GT box prompt, both shifted."""
    return evaluate_vos(
        _factory(root, shift=shift, **kw),
        find_ytvis_root(root, "val"),
        "val",
        box_prompt=_prompter(root, shift),
    )


MODES = ("jf_box", "jf_click", "jf_oracle_box")


def _assert_jf(out, j, f):
    for mode in MODES:
        assert out[mode]["j"] == pytest.approx(j), mode
        assert out[mode]["f"] == pytest.approx(f), mode
        assert out[mode]["jf"] == pytest.approx((j + f) / 2), mode


def test_oracle_tracker_scores_one(ytvis: Path):
    out = _run(ytvis)
    _assert_jf(out, 1.0, 1.0)
    assert out["id_switches"] == {"jf_box": 0, "jf_click": 0}
    assert out["id_switch_frames"] == {"jf_box": 9, "jf_click": 9}  # A 5, B 2, C 2 visible
    assert out["counts"] == {"videos": 2, "objects": 3, "frames": 12, "object_frames": 10}


def test_shifted_masks_score_the_hand_computed_values(ytvis: Path):
    """Every prediction 2 px right of the truth: J = 0.6 and F = 0.5 on a visible frame
    (test_boundary_f_on_shifted_rectangles), 1 and 1 where the object is absent (B, frame 4).
    J = (0.6 + (0.6 + 1 + 0.6) / 3 + 0.6) / 3, F = (0.5 + (0.5 + 1 + 0.5) / 3 + 0.5) / 3."""
    out = _run(ytvis, shift=2)
    _assert_jf(out, (0.6 + 2.2 / 3 + 0.6) / 3, (0.5 + 2 / 3 + 0.5) / 3)
    assert out["jf_box"]["jf"] == pytest.approx(0.6)


def test_an_object_that_leaves_is_scored_while_absent(ytvis: Path):
    """A tracker that keeps showing B on frame 4, where B has left: J = F = 0 there, so B
    scores 2/3 and the set (1 + 2/3 + 1) / 3; the oracle box gives no prompt for an absent
    object and stays at 1."""
    out = _run(ytvis, sticky=True)
    for mode in ("jf_box", "jf_click"):
        assert out[mode]["j"] == pytest.approx(8 / 9) and out[mode]["f"] == pytest.approx(8 / 9)
    assert out["jf_oracle_box"]["jf"] == pytest.approx(1.0)


def test_occluded_or_lost_objects_predict_nothing(ytvis: Path):
    """State "occluded" with the right mask: nothing is shown, J = F = 0 on visible frames and
    1 on B's absent frame: (0 + 1/3 + 0) / 3. (The oracle prompts the model directly.)"""
    out = _run(ytvis, state="occluded")
    for mode in ("jf_box", "jf_click"):
        assert out[mode]["j"] == pytest.approx(1 / 9) and out[mode]["f"] == pytest.approx(1 / 9)
    assert out["jf_oracle_box"]["jf"] == pytest.approx(1.0)


def test_swapped_ids_count_id_switches(ytvis: Path):
    """From frame 4 the tracker answers A with B's mask and B with A's: A matches B's id on
    frames 4 and 5 (one switch), B matches A's id on frame 5 (one switch)."""
    out = _run(ytvis, swap_from=4)
    assert out["id_switches"] == {"jf_box": 2, "jf_click": 2}
    # on another object: B's id shows A on frames 4 and 5, A's id shows B on frame 5
    assert out["wrong_object_frames"] == {"jf_box": 3, "jf_click": 3}
    assert out["jf_box"]["j"] == pytest.approx((3 / 5 + 1 / 3 + 1) / 3)


def test_protocol_order_prompts_and_step_cost(ytvis: Path):
    """Per frame: step (if objects are held), then add the objects first seen there, one
    add each; the box is the mask's pixel-edge box, the click the centre of its
    distance-transform maximum; D (seen on the last frame only) is never added. Step times
    from the clock: (1 + 2k) ms with k objects -> 2 ms per extra object."""
    log: list = []
    clock = [0.0]
    out = evaluate_vos(
        _factory(ytvis, log, clock=clock),
        ytvis / "ytvis",
        "val",
        modes=("jf_box", "jf_click"),
        clock=lambda: clock[0],
    )
    first_video_box = log[: log.index(("step", 5)) + 1]
    assert first_video_box == [
        ("add", 0, "box", (5.0, 5.0, 13.0, 15.0)),
        ("step", 1),
        ("step", 2),
        ("add", 2, "box", (25.0, 20.0, 33.0, 30.0)),
        ("step", 3),
        ("step", 4),
        ("step", 5),
    ]
    # A: cols 5..12, rows 5..14: distance 4 first reached at row 8, col 8
    assert ("add", 0, "click", (8.5, 8.5)) in log
    assert sum(1 for e in log if e[0] == "add") == 6  # A, B, C per mode
    assert out["per_object_ms"] == pytest.approx(2.0)
    assert out["step_ms_by_objects"] == pytest.approx({"1": 3.0, "2": 5.0})
    assert out["steps_by_objects"] == {"1": 8, "2": 6}
    assert "jf_oracle_box" not in out


def test_first_prompts():
    m = _rect(5, 15, 5, 13)
    assert first_box(m) == (5.0, 5.0, 13.0, 15.0)
    assert first_click(m) == (8.5, 8.5)
    with pytest.raises(ValueError):
        first_click(np.zeros((H, W), bool))


@pytest.mark.parametrize("bad", ["shape", "float mask", "state", "str id", "two ids"])
def test_a_tracker_answering_out_of_protocol_is_a_backend_error(ytvis: Path, bad: str):
    with pytest.raises(BackendError):
        evaluate_vos(_factory(ytvis, bad=bad), ytvis / "ytvis", "val", modes=("jf_box",))


def test_the_oracle_needs_a_box_prompt_that_answers_each_box(ytvis: Path):
    root = ytvis / "ytvis"
    with pytest.raises(ValueError, match="box_prompt"):
        evaluate_vos(_factory(ytvis), root, "val")
    with pytest.raises(BackendError, match="box prompt"):
        evaluate_vos(
            _factory(ytvis),
            root,
            "val",
            modes=("jf_oracle_box",),
            box_prompt=_prompter(ytvis, bad=True),
        )


# ----------------------------------------------------- the panoptic tracker's comparison
def _panoptic(root: Path, *, swap_from=None, drop=(), renumber=None, bad=False):
    """A fake panoptic tracker: the track map of a frame from the GT, instance k of the video
    as track id 10 + k; ``swap_from``: from that frame on, instances 0 and 1 of video 0
    swap ids; ``drop``: (video, instance, frame) left out of the map; ``renumber``: (video,
    instance, from frame, new id); ``bad``: a float map."""
    frames = _frames(root)

    def new_video():
        def track(frame):
            v, t, masks = frames[_key(frame)]
            tmap = np.zeros((H, W), np.int32)
            for k, m in enumerate(masks):
                tid = 10 + k
                if swap_from is not None and v == 0 and t >= swap_from and k < 2:
                    tid = 10 + (1 - k)
                if renumber is not None and renumber[:2] == (v, k) and t >= renumber[2]:
                    tid = renumber[3]
                if (v, k, t) not in drop:
                    tmap[m[t]] = tid
            return tmap * 0.5 if bad else tmap

        return track

    return new_video


def _compare(root: Path, **kw):
    return evaluate_vos(
        _factory(root),
        root / "ytvis",
        "val",
        box_prompt=_prompter(root),
        panoptic=_panoptic(root, **kw),
    )


def test_panoptic_tracker_is_scored_on_the_same_frames(ytvis: Path):
    out = _compare(ytvis)
    assert out["panoptic_tracker"] == {"j": 1.0, "f": 1.0, "jf": 1.0}
    assert out["id_switches"] == {"jf_box": 0, "jf_click": 0, "panoptic_tracker": 0}
    frames = {"jf_box": 9, "jf_click": 9, "panoptic_tracker": 9}
    assert out["id_switch_frames"] == frames and out["id_switch_matched"] == frames
    assert out["wrong_object_frames"] == {"jf_box": 0, "jf_click": 0, "panoptic_tracker": 0}
    assert set(out) >= {"jf_box", "jf_click", "jf_oracle_box", "panoptic_tracker"}
    # the panoptic tracker's steps are not the prompt tracker's per-object cost
    assert out["steps_by_objects"] == {"1": 8, "2": 6}


def test_panoptic_tracker_swaps_count_as_the_prompt_trackers_do(ytvis: Path):
    """The same swap as test_swapped_ids_count_id_switches, in the track map: 2 switches,
    as the prompt tracker's; the J&F follows the track chosen on the first frame."""
    out = _compare(ytvis, swap_from=4)
    assert out["id_switches"]["panoptic_tracker"] == 2
    assert out["wrong_object_frames"]["panoptic_tracker"] == 3
    assert out["panoptic_tracker"]["j"] == pytest.approx((3 / 5 + 1 / 3 + 1) / 3)


def test_panoptic_tracker_miss_reacquire_and_late_first_match(ytvis: Path):
    """A missed on frame 2 and back under its id: no switch (4 of 5 frames matched); B
    unseen on its first frame (2): no id to start from, the first match (frame 3) sets it,
    no switch, and no track for its J&F (empty prediction: J = F = 1 only on frame 4, where
    B is absent); C renumbered from frame 5: one switch."""
    out = _compare(ytvis, drop={(0, 0, 2), (0, 1, 2)}, renumber=(1, 0, 5, 99))
    # video 1: A is instance 0, B instance 1; video 2: C is instance 0 (renumbered on 5)
    assert out["id_switches"]["panoptic_tracker"] == 1
    assert out["id_switch_frames"]["panoptic_tracker"] == 9
    assert out["id_switch_matched"]["panoptic_tracker"] == 8
    assert out["wrong_object_frames"]["panoptic_tracker"] == 0
    # A: frame 2 empty (J 0), others 1 -> 4/5; B: 1/3; C: frame 5 is id 99 (J 0) -> 1/2
    assert out["panoptic_tracker"]["j"] == pytest.approx((4 / 5 + 1 / 3 + 1 / 2) / 3)


def test_panoptic_tracker_checks(ytvis: Path):
    with pytest.raises(ValueError, match="panoptic"):
        evaluate_vos(_factory(ytvis), ytvis / "ytvis", "val", modes=("panoptic_tracker",))
    with pytest.raises(BackendError, match="panoptic tracker"):
        evaluate_vos(
            _factory(ytvis),
            ytvis / "ytvis",
            "val",
            modes=("panoptic_tracker",),
            panoptic=_panoptic(ytvis, bad=True),
        )


def test_panoptic_tracker_of_a_segmenter_uses_a_fresh_tracker_per_video():
    calls: list = []
    seg = SimpleNamespace(
        new_tracker=lambda: calls.append("new") or len(calls),
        track=lambda frame, tracker: SimpleNamespace(track_map=(frame, tracker)),
    )
    factory = panoptic_tracker_of(seg)
    first, second = factory(), factory()
    assert first("a") == ("a", 1) and first("b") == ("b", 1) and second("c") == ("c", 2)


# ------------------------------------------------------------------------ data paths
def test_find_ytvis_root(ytvis: Path, tmp_path: Path):
    assert find_ytvis_root(ytvis, "val") == ytvis / "ytvis"
    assert find_ytvis_root(ytvis / "ytvis", "val") == ytvis / "ytvis"
    with pytest.raises(DatasetError, match=r"instances_train\.json"):
        find_ytvis_root(ytvis, "train")
    (tmp_path / "annotations").mkdir()
    os.mkfifo(tmp_path / "annotations" / "instances_val.json")
    with pytest.raises(DatasetError, match="named pipe"):
        find_ytvis_root(tmp_path, "val")  # refused without opening it (no hang)


# -------------------------------------------------------------------------------- CLI
def _one_line_exit_2(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("rapsam-edge: error: ") and len(lines) <= 2, err
    return lines[0]


@pytest.mark.parametrize("argv", [["--task", "vos"], ["--task", "davis", "--data", "."]])
def test_cli_usage_errors(argv: list[str], capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", *argv])
    assert info.value.code == 2
    assert "error: " in capsys.readouterr().err


def test_cli_refuses_bad_paths_and_options(ytvis: Path, tmp_path: Path, monkeypatch, capsys):
    line = _one_line_exit_2(["eval", "--task", "vos", "--data", str(tmp_path)], capsys)
    assert "no YouTube-VIS annotations" in line
    missing = str(tmp_path / "nope")
    assert missing in _one_line_exit_2(["eval", "--task", "vos", "--data", missing], capsys)
    f = tmp_path / "file"
    f.write_text("")
    assert "not a directory" in _one_line_exit_2(
        ["eval", "--task", "vos", "--data", str(f)], capsys
    )
    from rapsam_edge.runtime.segmenter import Segmenter

    monkeypatch.setattr(Segmenter, "prompt_tracker", lambda self: None, raising=False)
    line = _one_line_exit_2(
        ["eval", "--task", "vos", "--data", str(ytvis), "--bundle", missing], capsys
    )
    assert missing in line
    line = _one_line_exit_2(
        ["eval", "--task", "vos", "--data", str(ytvis), "--max-images", "3"], capsys
    )
    assert "--max-images applies to --task all" in line


def test_cli_without_a_prompt_tracker_is_a_clear_error(ytvis: Path, monkeypatch, capsys):
    from rapsam_edge.runtime.segmenter import Segmenter

    monkeypatch.delattr(Segmenter, "prompt_tracker", raising=False)
    line = _one_line_exit_2(["eval", "--task", "vos", "--data", str(ytvis)], capsys)
    assert "prompt_tracker" in line


def test_cli_writes_the_json(ytvis: Path, tmp_path: Path, monkeypatch, capsys):
    """The verb end to end on the shipped bundle, its prompt tracker and prompt decoder
    replaced by the ground truth."""
    from rapsam_edge.runtime.segmenter import Segmenter

    factory, prompt = _factory(ytvis), _prompter(ytvis)
    monkeypatch.setattr(Segmenter, "prompt_tracker", lambda self: factory(), raising=False)
    # the oracle's box prompt goes through set_image + prompt: answered from the GT too
    monkeypatch.setattr(Segmenter, "set_image", lambda self, frame: frame)
    monkeypatch.setattr(
        Segmenter, "prompt", lambda self, emb, boxes=None: SimpleNamespace(masks=prompt(emb, boxes))
    )
    panoptic = _panoptic(ytvis, swap_from=4)  # the panoptic tracker: GT track maps, a swap
    monkeypatch.setattr(Segmenter, "new_tracker", lambda self: panoptic())
    monkeypatch.setattr(
        Segmenter,
        "track",
        lambda self, frame, tracker: SimpleNamespace(track_map=tracker(frame)),
    )
    out = tmp_path / "m" / "vos.json"
    argv = ["eval", "--task", "vos", "--data", str(ytvis), "--json", str(out), "--quiet"]
    assert main(argv) == 0
    headline = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    switches = {"jf_box": 0, "jf_click": 0, "panoptic_tracker": 2}
    assert headline == {
        "jf_box": 1.0,
        "jf_click": 1.0,
        "jf_oracle_box": 1.0,
        "panoptic_tracker": pytest.approx((3 / 5 + 1 / 3 + 1) / 3),
        "id_switches": switches,
        "wrong_object_frames": {"jf_box": 0, "jf_click": 0, "panoptic_tracker": 3},
    }
    metrics = json.loads(out.read_text())
    for mode in MODES:
        assert metrics[mode] == {"j": 1.0, "f": 1.0, "jf": 1.0}
    assert metrics["id_switches"] == switches
    assert metrics["id_switch_frames"]["panoptic_tracker"] == 9
    assert metrics["counts"]["videos"] == 2 and metrics["counts"]["objects"] == 3
    assert "per_object_ms" in metrics and metrics["task"] == "vos"


def test_a_duplicate_mask_is_a_wrong_object_frame_not_a_switch(ytvis: Path):
    """A prompted object whose mask jumps onto another tracked object (both ids show B's
    mask from frame 3 on): B keeps its own still-valid id (no switch; the old highest-IoU rule
    gave the tie to the lower id, A's, and counted one); A is missed (its own J) and its
    mask sits on B on frames 3 and 5 (B is absent on 4)."""
    frames = _frames(ytvis)

    class Duplicate(FakeTracker):
        def step(self, frame):
            res = super().step(frame)
            _, t, _ = frames[_key(frame)]
            if t >= 3 and len(res.objects) == 2 and _key(frame) in video0:
                res.objects[0].mask = res.objects[1].mask
                res.objects[0].state = "tracked" if res.objects[1].mask.any() else "occluded"
            return res

    video0 = {k for k, (v, _, _) in frames.items() if v == 0}
    out = evaluate_vos(lambda: Duplicate(frames, []), ytvis / "ytvis", "val", modes=("jf_box",))
    assert out["id_switches"] == {"jf_box": 0}
    assert out["wrong_object_frames"] == {"jf_box": 2}
    assert out["id_switch_matched"] == {"jf_box": 9 - 3}  # A unmatched on frames 3 to 5
