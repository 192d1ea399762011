"""The prompted video object segmentation protocol (``rapsam-edge eval --task vos``): a prompt
tracker is initialised on each ground-truth object of a YouTube-VIS video and scored with the
DAVIS measures (``eval.vos``) on every later frame.

The tracker (``PromptTracker``, what ``Segmenter.prompt_tracker()`` returns):
``add(frame, points=[(x, y)], labels=[1]) -> [id]`` or ``add(frame, boxes=[(x0, y0, x1,
y1)]) -> [id]``, ``step(frame) -> result`` with ``result.objects``, each having ``.id``,
``.mask`` (H x W), ``.box``, ``.score`` and ``.state`` ("tracked", "occluded" or "lost"), and
``remove(id)``. The evaluator takes a factory of fresh trackers, so any object with these
methods can be measured, and a ``BoxPrompt`` for the oracle.

The protocol, per video (frames in file order, RGB uint8, as ``data.ytvis`` reads them):

- All GT objects of a video are tracked together by one tracker, as a user tracks several
  objects on one stream (and as the per-object cost needs): per frame, ``step(frame)`` first
  (when the tracker holds objects), then the objects whose first visible frame this is are
  added, one ``add`` call each, on this frame. An object is scored on every frame after the
  one it was added on, to the end of the video (DAVIS semi-supervised scores every frame but
  the given first one; DAVIS 2017 also leaves out each sequence's last frame, which is kept
  here, as YouTube-VOS keeps it). Frames where the object is absent are scored too
  (``eval.vos``).
- What the tracker predicts for an object on a frame: its mask when its state is "tracked";
  nothing (an empty mask) when it is "occluded" or "lost", or missing from the result.
  Masks of different objects may overlap; each object is scored on its own mask (DAVIS
  results are index maps, so they cannot overlap there).
- ``jf_box``: the prompt is the box of the object's first mask, (x0, y0, x1, y1) =
  (min column, min row, max column + 1, max row + 1) in frame pixels (pixel edges).
- ``jf_click``: one positive click at the pixel of the first mask farthest from its border
  (the ``cv2.distanceTransform`` argmax, the image outside counting as border; ties: first in
  row-major order: ``eval.prompt_iou.click_at_max_distance``), at the pixel's centre
  (x + 0.5, y + 0.5), label 1.
- ``jf_oracle_box`` (the upper bound): on every scored frame, the GT box of each object
  visible there is prompted afresh (``BoxPrompt``: for a ``Segmenter``, ``set_image`` and one
  ``prompt`` call with all the frame's boxes, ``box_prompt_of``), i.e. the mask a tracker's
  ``add`` starts from, had it the true box on every frame; no tracker state is involved, so
  the bound does not depend on what a tracker's ``step`` does on the frame it was given in
  ``add``. An object absent from the frame gets no prompt and an empty prediction.
- ID switches (``eval.vos.IdSwitches``, one definition) are counted for ``jf_box`` and
  ``jf_click`` (the oracle has no tracker, hence no ids), each object's count starting from
  the id ``add`` returned, on the object's scored frames where it is visible.
- ``wrong_object_frames`` (each mode but the oracle): scored object-frames where what is
  shown for the object (its mask; for ``panoptic_tracker`` its chosen track's) has IoU >= 0.5
  with another GT object of the video: the object's id sits on another object. The ID-switch
  rule keeps a still-valid match, so a prompted object whose mask drifts onto an object that
  is already tracked (a duplicate of that object's mask) costs its own J, not a switch; this
  count shows it. (A panoptic id map cannot hold duplicates: its masks are disjoint.)
- ``panoptic_tracker`` (the comparison, when a ``PanopticTracker`` factory is given): the
  panoptic video tracker (``Segmenter.track`` with a fresh ``new_tracker()`` per video) runs
  over every frame of the video, with no prompt; its output is the track id map. Each GT
  object's ID switches are counted with the same ``IdSwitches`` on the same frames as the
  prompt tracker's (every visible frame after the object's first visible frame), starting
  from the track matched (IoU >= 0.5) on that first frame, where the prompt tracker gets its
  prompt (none matched there: the first later match sets it, without a switch). Its J&F is
  that of one track per object, chosen without a prompt by the ground truth: the track with
  the highest IoU with the object's mask on its first visible frame (none overlapping: an
  empty prediction), its mask scored on the same frames as ``jf_box``. The panoptic tracker
  follows only segments of known thing classes; the objects of a data set whose objects are
  all of known thing classes (``make-data``'s synthetic videos) are all within its reach.
- Cost: every ``step`` of ``jf_box`` and ``jf_click`` is timed with ``k`` = the objects the
  tracker holds; ``per_object_ms`` is the least-squares slope of step time over ``k`` (ms per
  extra object), ``step_ms_by_objects`` the mean step time for each ``k``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import BackendError, DatasetError
from .prompt_iou import click_at_max_distance
from .vos import BOUNDARY_TOLERANCE, IdSwitches, VosScores, index_map_predictions, region_j

if TYPE_CHECKING:
    from ..data.ytvis import YtvisDataset

__all__ = [
    "MODES",
    "STATES",
    "BoxPrompt",
    "PanopticTracker",
    "PromptTracker",
    "box_prompt_of",
    "evaluate_vos",
    "find_ytvis_root",
    "first_box",
    "first_click",
    "open_vos_split",
    "panoptic_tracker_of",
]

MODES = ("jf_box", "jf_click", "jf_oracle_box", "panoptic_tracker")
STATES = ("tracked", "occluded", "lost")
Progress = Callable[[str, int, int], None]
#: an object's shown mask with at least this IoU with another GT object is "on" that object
WRONG_OBJECT_IOU = 0.5
#: (frame, N x 4 boxes (x0, y0, x1, y1)) -> N x H x W bool masks, one per box
BoxPrompt = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: () -> a fresh video's tracker: (frame) -> H x W int track id map (0 = no track)
PanopticTracker = Callable[[], Callable[[np.ndarray], np.ndarray]]


class PromptTracker(Protocol):
    """What the evaluator drives (module docstring)."""

    def add(self, frame: np.ndarray, **prompts: Any) -> Sequence[int]: ...

    def step(self, frame: np.ndarray) -> Any: ...

    def remove(self, object_id: int) -> None: ...


def _no_progress(_task: str, _done: int, _total: int) -> None:
    return None


def first_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The box prompt of a mask: (min col, min row, max col + 1, max row + 1)."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def first_click(mask: np.ndarray) -> tuple[float, float]:
    """The click prompt of a mask: the centre of its distance-transform argmax pixel."""
    found = click_at_max_distance(np.asarray(mask, dtype=bool))
    if found is None:
        raise ValueError("no click on an empty mask")
    return found[0] + 0.5, found[1] + 0.5


def find_ytvis_root(data: str | Path, split: str) -> Path:
    """The YouTube-VIS root under ``data``: ``data/ytvis`` (a ``make-data`` root) or ``data``
    itself, whichever has ``annotations/instances_<split>.json``.

    Raises:
      DatasetError: neither has it, or it is not a regular file (a pipe, a directory).
    """
    from ..contract.files import require_regular

    root = Path(data)
    hint = "`rapsam-edge make-data --out DIR --split SPLIT` writes DIR/ytvis/ for --task vos"
    for cand in (root / "ytvis", root):
        ann = cand / "annotations" / f"instances_{split}.json"
        if ann.exists() or ann.is_symlink():
            require_regular(ann, "YouTube-VIS annotations", DatasetError, hint=hint)
            return cand
    raise DatasetError(
        f"{str(root)!r} has no YouTube-VIS annotations for split {split!r} (looked for "
        f"ytvis/annotations/instances_{split}.json and annotations/instances_{split}.json)",
        hint=hint,
    )


@dataclass
class _Object:
    key: tuple[int, int]  # (video id, instance index)
    masks: np.ndarray  # T x H x W bool
    first: int  # first visible frame


class _Predictions:
    """One ``step`` result checked and turned into {id: what the tracker shows}."""

    def __init__(self, result: Any, shape: tuple[int, int]) -> None:
        objects = getattr(result, "objects", None)
        if objects is None:
            raise BackendError("the prompt tracker's step() returned no .objects")
        self.masks: dict[int, np.ndarray] = {}
        for obj in objects:
            if not isinstance(obj.id, int | np.integer) or isinstance(obj.id, bool):
                raise BackendError(f"prompt tracker object id {obj.id!r} is not an integer")
            oid, state = int(obj.id), str(obj.state)
            if state not in STATES:
                raise BackendError(f"prompt tracker object {oid}: state {state!r}, not {STATES}")
            if oid in self.masks:
                raise BackendError(f"prompt tracker step() returned object {oid} twice")
            mask = np.asarray(obj.mask)
            if mask.shape != shape or (mask.dtype != np.bool_ and mask.dtype.kind not in "iu"):
                raise BackendError(
                    f"prompt tracker object {oid}: a {mask.dtype} mask of shape {mask.shape} "
                    f"for a frame of {shape} (expected H x W bool)"
                )
            self.masks[oid] = (
                mask.astype(bool, copy=False) if state == "tracked" else np.zeros(shape, bool)
            )
        self.empty = np.zeros(shape, bool)

    def of(self, object_id: int) -> np.ndarray:
        return self.masks.get(object_id, self.empty)


def _add(tracker: PromptTracker, frame: np.ndarray, mode: str, mask: np.ndarray) -> int:
    if mode == "jf_click":
        ids = tracker.add(frame, points=[first_click(mask)], labels=[1])
    else:
        ids = tracker.add(frame, boxes=[first_box(mask)])
    ids = list(ids)
    if len(ids) != 1 or not isinstance(ids[0], int | np.integer) or isinstance(ids[0], bool):
        raise BackendError(f"prompt tracker add() of one prompt returned {ids!r}, not one id")
    return int(ids[0])


@dataclass
class _Run:
    scores: VosScores
    switches: dict[tuple[int, int], IdSwitches]
    steps: list[tuple[int, float]]  # (objects held, step ms)
    wrong: int = 0  # object-frames shown on another GT object


def _score(
    run: _Run,
    objects: Sequence[_Object],
    k: int,
    t: int,
    pred: np.ndarray,
    candidates: Mapping[int, np.ndarray],
) -> None:
    """One object-frame: J and F of ``pred`` (what is shown for object ``k``), its ID
    switches against ``candidates`` (every id's mask) and whether ``pred`` sits on another
    GT object (IoU >= 0.5 with it)."""
    obj = objects[k]
    run.scores.add(obj.key, obj.masks[t], pred)
    run.switches[obj.key].update(obj.masks[t], candidates)
    if pred.any() and any(
        other.masks[t].any() and region_j(other.masks[t], pred) >= WRONG_OBJECT_IOU
        for i, other in enumerate(objects)
        if i != k
    ):
        run.wrong += 1


def _track_video(
    new_tracker: Callable[[], PromptTracker],
    images: np.ndarray,
    objects: Sequence[_Object],
    mode: str,
    run: _Run,
    clock: Callable[[], float],
) -> None:
    """``jf_box`` / ``jf_click`` on one video: one tracker, objects added on first sight."""
    tracker = new_tracker()
    ids: dict[int, int] = {}  # object index -> tracker id
    shape = images.shape[1:3]
    for t, frame in enumerate(images):
        if ids:
            t0 = clock()
            result = tracker.step(frame)
            run.steps.append((len(ids), 1000.0 * (clock() - t0)))
            preds = _Predictions(result, shape)
            for k, oid in ids.items():
                _score(run, objects, k, t, preds.of(oid), preds.masks)
        for k, obj in enumerate(objects):
            if obj.first == t < len(images) - 1:  # added where a later frame scores it
                ids[k] = _add(tracker, frame, mode, obj.masks[t])
                run.switches[obj.key] = IdSwitches(ids[k])


def _oracle_video(
    box_prompt: BoxPrompt,
    images: np.ndarray,
    objects: Sequence[_Object],
    scores: VosScores,
) -> None:
    """``jf_oracle_box`` on one video: the GT boxes of each frame, prompted afresh."""
    shape = images.shape[1:3]
    empty = np.zeros(shape, bool)
    for t, frame in enumerate(images):
        scored = [obj for obj in objects if obj.first < t]
        visible = [obj for obj in scored if obj.masks[t].any()]
        masks: dict[tuple[int, int], np.ndarray] = {}
        if visible:
            boxes = np.array([first_box(obj.masks[t]) for obj in visible], dtype=np.float64)
            out = np.asarray(box_prompt(frame, boxes))
            if out.shape != (len(visible), *shape) or (
                out.dtype != np.bool_ and out.dtype.kind not in "iu"
            ):
                raise BackendError(
                    f"the box prompt returned {out.dtype} masks of shape {out.shape} for "
                    f"{len(visible)} boxes on a {shape} frame (expected N x H x W bool)"
                )
            masks = {obj.key: out[i].astype(bool, copy=False) for i, obj in enumerate(visible)}
        for obj in scored:
            scores.add(obj.key, obj.masks[t], masks.get(obj.key, empty))


def _panoptic_video(
    panoptic: PanopticTracker,
    images: np.ndarray,
    objects: Sequence[_Object],
    run: _Run,
) -> None:
    """``panoptic_tracker`` on one video (module docstring): every frame through a fresh
    tracker; per object, ID switches and the J&F of the track chosen on its first frame."""
    track = panoptic()
    shape = images.shape[1:3]
    chosen: dict[int, int] = {}  # object index -> track id scored for J&F (0: none)
    for t, frame in enumerate(images):
        tmap = np.asarray(track(frame))
        if tmap.shape != shape or tmap.dtype.kind not in "iu":
            raise BackendError(
                f"the panoptic tracker returned a {tmap.dtype} map of shape {tmap.shape} for "
                f"a {shape} frame (expected H x W integer track ids)"
            )
        for k, obj in enumerate(objects):
            gt = obj.masks[t]
            if k in chosen:
                pred = tmap == chosen[k] if chosen[k] else np.zeros_like(gt)
                _score(run, objects, k, t, pred, index_map_predictions(tmap, gt))
            elif obj.first == t < len(images) - 1:
                preds = index_map_predictions(tmap, gt)
                run.switches[obj.key] = IdSwitches(IdSwitches().match(gt, preds))
                ious = {tid: region_j(gt, m) for tid, m in preds.items()}
                chosen[k] = max(sorted(ious), key=lambda tid: ious[tid]) if ious else 0


def panoptic_tracker_of(segmenter: Any) -> PanopticTracker:
    """The comparison tracker through a ``Segmenter``: per video a ``new_tracker()``, and
    ``track(frame, tracker=...).track_map`` per frame."""

    def new_video() -> Callable[[np.ndarray], np.ndarray]:
        tracker = segmenter.new_tracker()
        return lambda frame: segmenter.track(frame, tracker=tracker).track_map

    return new_video


def box_prompt_of(segmenter: Any) -> BoxPrompt:
    """The oracle's prompt through a ``Segmenter``: one ``set_image`` and one ``prompt`` call
    with every box of the frame (the masks a tracker's ``add`` starts from)."""

    def prompt(frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return segmenter.prompt(segmenter.set_image(frame), boxes=boxes).masks

    return prompt


def _objects(video: Any) -> list[_Object]:
    out = []
    for i, inst in enumerate(video.instances):
        if inst.iscrowd:
            continue
        visible = np.flatnonzero(inst.masks.reshape(len(inst.masks), -1).any(axis=1))
        if visible.size:
            out.append(_Object((int(video.video_id), i), inst.masks, int(visible[0])))
    return out


def step_cost(steps: Iterable[tuple[int, float]]) -> dict[str, Any]:
    """(objects held, step ms) pairs -> ``per_object_ms`` (least-squares slope; None with
    fewer than two distinct object counts) and ``step_ms_by_objects`` {k: mean ms}."""
    rows = list(steps)
    by_k: dict[int, list[float]] = {}
    for k, ms in rows:
        by_k.setdefault(int(k), []).append(float(ms))
    slope = None
    if len(by_k) >= 2:
        ks = np.array([r[0] for r in rows], dtype=np.float64)
        ms_ = np.array([r[1] for r in rows], dtype=np.float64)
        dk = ks - ks.mean()
        slope = float(np.dot(dk, ms_ - ms_.mean()) / np.dot(dk, dk))
    return {
        "per_object_ms": slope,
        "step_ms_by_objects": {str(k): math.fsum(v) / len(v) for k, v in sorted(by_k.items())},
        "steps_by_objects": {str(k): len(v) for k, v in sorted(by_k.items())},
    }


def _summary(runs: dict[str, _Run], videos: int, frames: int, scored: list[int]) -> dict[str, Any]:
    """The modes' runs -> ``evaluate_vos``'s result (its docstring)."""
    out: dict[str, Any] = {}
    for mode, run in runs.items():
        s = run.scores.compute()
        out[mode] = {"j": s["j"], "f": s["f"], "jf": s["jf"]}
    with_ids = [m for m in runs if m != "jf_oracle_box"]
    for key, attr in (
        ("id_switches", "switches"),
        ("id_switch_frames", "visible"),
        ("id_switch_matched", "matched"),
    ):
        out[key] = {m: sum(getattr(c, attr) for c in runs[m].switches.values()) for m in with_ids}
    out["wrong_object_frames"] = {m: runs[m].wrong for m in with_ids}
    prompted = [m for m in runs if m in ("jf_box", "jf_click")]  # the timed steps
    out.update(step_cost(row for m in prompted for row in runs[m].steps))
    out["counts"] = {
        "videos": videos,
        "objects": scored[0],
        "frames": frames,
        "object_frames": scored[1],
    }
    return out


def open_vos_split(ytvis_root: str | Path, split: str) -> YtvisDataset:
    """The YouTube-VIS split, every field checked (``YtvisDataset``), with annotations.

    Raises:
      DatasetError: a malformed file, or no annotation (nothing to evaluate)."""
    from ..data.ytvis import YtvisDataset

    data = YtvisDataset(ytvis_root, split)
    if not data.annotated_objects():
        raise DatasetError(
            f"{data.ann_file}: no annotated objects (the annotations list is empty or absent): "
            "nothing to evaluate",
            hint="--task vos needs an annotated split (instance tracks per video)",
        )
    return data


def evaluate_vos(
    new_tracker: Callable[[], PromptTracker],
    ytvis_root: str | Path | YtvisDataset,
    split: str = "val",
    *,
    box_prompt: BoxPrompt | None = None,
    panoptic: PanopticTracker | None = None,
    max_videos: int | None = None,
    modes: Sequence[str] | None = None,
    tolerance: float = BOUNDARY_TOLERANCE,
    progress: Progress = _no_progress,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Run the protocol (module docstring) over a YouTube-VIS split.

    Arguments:
      new_tracker: returns a fresh prompt tracker (e.g. ``segmenter.prompt_tracker``).
      box_prompt: the oracle's prompt (``box_prompt_of(segmenter)``); needed for
        ``jf_oracle_box``.
      panoptic: the comparison's tracker factory (``panoptic_tracker_of(segmenter)``);
        needed for ``panoptic_tracker``.
      ytvis_root: the YouTube-VIS root (``find_ytvis_root``), or the split already opened
        (``open_vos_split``: not read again). max_videos: the first N only.
      modes: any of ``MODES``; default: the three J&F modes, and ``panoptic_tracker`` when
        ``panoptic`` is given. clock: seconds, for the step timings.
    Returns:
      {mode: {"j", "f", "jf"} in [0, 1]}, ``id_switches``,
      ``id_switch_frames`` (GT-visible frames scored) and ``id_switch_matched`` (those of
      them with a match) {mode: count} for each mode but the oracle, ``wrong_object_frames``
      {mode: object-frames whose shown mask sits on another GT object}, ``per_object_ms``,
      ``step_ms_by_objects``, ``steps_by_objects``, ``counts`` {"videos", "objects" (with
      a scored frame), "frames" (of the videos), "object_frames" (scored, each mode)}.
    Raises:
      DatasetError: the split is malformed (``YtvisDataset``), has no annotations, or no
        object of the videos evaluated has a frame to score (nothing to evaluate).
    """
    if modes is None:
        modes = MODES[:3] + (("panoptic_tracker",) if panoptic is not None else ())
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown modes {unknown}; known: {MODES}")
    if "jf_oracle_box" in modes and box_prompt is None:
        raise ValueError("jf_oracle_box needs box_prompt (e.g. box_prompt_of(segmenter))")
    if "panoptic_tracker" in modes and panoptic is None:
        raise ValueError("panoptic_tracker needs panoptic (e.g. panoptic_tracker_of(segmenter))")
    from ..data.ytvis import YtvisDataset

    if isinstance(ytvis_root, YtvisDataset):
        data = ytvis_root
    else:
        data = open_vos_split(ytvis_root, split)
    n = len(data) if max_videos is None else min(len(data), max_videos)
    runs = {m: _Run(VosScores(tolerance), {}, []) for m in modes}
    frames, scored = 0, [0, 0]  # frames of the videos; objects and object-frames scored
    for v in range(n):
        video = data[v]
        objects = _objects(video)
        length = len(video.images)
        frames += length
        scored[0] += sum(1 for obj in objects if obj.first < length - 1)
        scored[1] += sum(length - 1 - obj.first for obj in objects)
        for mode in modes:
            if mode == "jf_oracle_box":
                assert box_prompt is not None  # checked above
                _oracle_video(box_prompt, video.images, objects, runs[mode].scores)
            elif mode == "panoptic_tracker":
                assert panoptic is not None  # checked above
                _panoptic_video(panoptic, video.images, objects, runs[mode])
            else:
                _track_video(new_tracker, video.images, objects, mode, runs[mode], clock)
        progress("vos", v + 1, n)
    if not scored[0]:
        raise DatasetError(
            f"{data.ann_file}: no object to score in the first {n} videos (an object needs "
            "a visible frame before its video's last frame): nothing to evaluate",
            hint="--task vos needs objects visible on at least two frames of their video",
        )
    return _summary(runs, n, frames, scored)
