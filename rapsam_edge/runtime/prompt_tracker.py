"""Click-to-track: objects given once by a box or clicks follow the video (no torch, no
new graph).

    pt = seg.prompt_tracker()                       # its own state; one per video
    pt.step(frame0)                                 # or pt.add(frame0, ...) directly
    ids = pt.add(None, boxes=[(x0, y0, x1, y1)])    # on the frame stepped last
    for frame in frames:
        res = pt.step(frame)                        # res.objects: id, mask, box, score, state

Method: memory-free re-prompting. A promptable segmenter is prompted on each frame from
the previous frame's mask, as in Track-Anything's refinement step (the propagated mask
turned into box and point prompts for SAM; Yang et al., arXiv:2304.11968) and SAM-PT (SAM
re-prompted from tracked points; Rajic et al., arXiv:2307.01197), here without their
propagation networks (XMem, point trackers), as SAM 2's memory attention (Ravi et al.,
arXiv:2408.00714) or Cutie / XMem would need a new graph and are too heavy for this CPU. Per frame:

1. one encoder pass (``Segmenter.set_image``), whatever the number of objects;
2. every object has two candidate prompts: the box of its last mask, enlarged by
   ``margin`` of its size a side (0: the box itself), and the prompt whose mask it last
   accepted (at first the given box, or the box a single click is decoded as); while it
   is not seen, also its last box enlarged by ``search_margin``. All go to ONE
   ``prompt_decoder`` call (split at ``max_prompts``; RAP-SAM's prompt branch takes boxes
   only, a click being the small box of ``POINT_BOX_HALF`` around it). The second
   candidate is a fixed point: the decoder is sensitive to the exact box, and a mask's
   own box, prompted again, can give a mask spilling far past a slow object;
3. each candidate is verified by the decoder's predicted IoU (``score`` >= ``min_score``)
   and area (>= ``min_area``), and the passing one whose appearance (the encoder features
   average-pooled inside the mask, no extra graph) is most similar to the object's memory
   (a moving average of that appearance, started from the prompt) is kept when that cosine
   similarity is >= ``min_similarity``;
4. states: "tracked" while a candidate is kept: memory updated, the reported box is the
   mask's box and the next prompt box that box cut to the last one grown by ``max_growth``
   of its size a side (a mask spilling past its object would otherwise widen the next
   prompt, frame after frame: box creep); "occluded" when none is (empty mask, last box
   kept); "lost" after ``max_occluded`` failed frames in a row. An occluded or lost object
   returns under its own id when a candidate passes (sample clip: a true object scores
   0.98 to 1.0, a blank frame <= 0.41, the widened box alone spilling on the background 0.73).

Measured with ``rapsam-edge eval --task vos`` (edge-s-synthetic; make-data val seed 101, 16
videos x 12 frames, tuned there; oracle 0.760): jf_box | jf_click
- first version (margin 0.1, one candidate): 0.548 | 0.551; margin 0 | 0.2 | the box
  eroded 5 % a side: 0.593 | 0.584, 0.521 | 0.514, 0.600 | 0.607
- candidates margin 0 and 0.1 (or 0.5), by similarity or IoU x similarity: 0.586-0.589;
  margin 0.1 + growth cap 0.1: 0.599 | 0.603; a constant-velocity shift: no gain
- margin 0 + growth cap 0.05 | 0.1 | 0.2: 0.643 | 0.653, 0.636 | 0.648, 0.630 | 0.640
- + the accepted prompt as a candidate: 0.722 | 0.661 (growth cap 0 to 0.2, margin 0.05,
  momentum 0.5 / 1, search_margin 0.25 / 1: within 0.003); + a single click's box as its
  first prompt: 0.722 | 0.678 (jf_box 0.95 x oracle, jf_click 0.89 x). No gain: the last
  mask's interior point as a third candidate (0.714 | 0.671), a click's mask re-prompted
  by its box on the first frame (click 0.606).
Held out (seed 202, measured once; oracle 0.764): 0.603 | 0.554 -> 0.730 | 0.656 (0.96 x,
0.86 x). Cost: decode + verify of 3 objects at 640 x 480, 2.22 -> 2.35 ms per frame.

The panoptic decoder's ``query_embed`` could verify identity too, but costs a second decoder
run (3.4 ms against 1.9 ms for the prompt decoder with 3 boxes; 640 x 480, default bundle)
and names only segments of a known class: the mask-pooled features serve for free.

Objects made from clicks: the positive clicks are decoded as prompts of their own; the
first mask is their masks' union less the negative clicks' masks (``refine`` the same, on
the frame stepped last). State is bounded: per object two boxes, a D-vector memory and
counters, and the last frame's embedding (for ``add`` / ``refine``).

Threads: every method takes the tracker's lock, so objects may be added, refined and
removed from another thread (a web handler) while a stream steps; each call sees the frame
stepped last. Encoder passes run outside the lock (``step`` / ``add`` given a frame).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .. import ops
from ..bundle import Bundle
from ..errors import ConfigError, InputError
from .inputs import as_coords, check_embedding
from .prompt_parts import (
    cells,
    clamp_growth,
    click_box,
    clicks,
    combine,
    mask_box,
    no_bools,
    pool,
    rescaled,
)
from .prompt_tracker_config import PromptTrackerConfig
from .results import ImageEmbedding, PromptResult, PromptTrack, PromptTrackResult

__all__ = ["STATES", "PromptTracker", "PromptTrackerConfig", "Prompter"]

#: the states an object can be in
STATES = ("tracked", "occluded", "lost")


_FIELDS = ("masks", "iou", "stability")
Frame = np.ndarray | ImageEmbedding | None


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class Prompter(Protocol):
    """What a ``PromptTracker`` uses of its ``Segmenter`` (named here, not imported: the
    Segmenter imports this module)."""

    bundle: Bundle
    max_prompts: int

    @property
    def encoder_id(self) -> str: ...

    def set_image(self, frame: np.ndarray) -> ImageEmbedding: ...

    def prompt(
        self, embedding: ImageEmbedding | None = None, *, points: Any = None, boxes: Any = None
    ) -> PromptResult: ...


@dataclass
class _Object:
    """One object's bounded state."""

    box: np.ndarray  # 4 float64, frame pixels, exclusive max
    memory: np.ndarray  # D float32, unit norm
    prompt: np.ndarray  # 4 float64: the prompt box whose mask was accepted last
    state: str = "tracked"
    missed: int = 0


class PromptTracker:
    """Objects prompted by boxes or clicks, tracked with one encoder pass and one
    prompt-decoder call per frame (the module doc gives the method). One tracker per video,
    frames in order; its methods may be called from several threads (one lock)."""

    def __init__(self, segmenter: Prompter, config: PromptTrackerConfig | None = None) -> None:
        config = PromptTrackerConfig() if config is None else config
        if not isinstance(config, PromptTrackerConfig):
            raise ConfigError(
                f"config must be a PromptTrackerConfig, got {type(config).__name__}",
                hint="pass runtime.prompt_tracker.PromptTrackerConfig(...) or None",
            )
        limit = segmenter.max_prompts
        if config.max_objects is not None and config.max_objects > limit:
            raise ConfigError(
                f"PromptTrackerConfig.max_objects={config.max_objects} exceeds the "
                f"Segmenter's max_prompts={limit} (all objects go to one decoder call)",
                hint="raise Segmenter(max_prompts=...) or lower max_objects",
            )
        self.seg = segmenter
        self.config = config
        self.max_objects = limit if config.max_objects is None else config.max_objects
        self._objects: dict[int, _Object] = {}
        self._next_id = 1
        self._emb: ImageEmbedding | None = None
        self._lock = threading.RLock()
        #: frames stepped so far (the index of the next frame)
        self.frame_index = 0

    # ------------------------------------------------------------------ public API
    @property
    def ids(self) -> list[int]:
        """The ids of the objects being tracked, in the order they were added."""
        with self._lock:
            return list(self._objects)

    def state(self, obj_id: int) -> str:
        """The state of one object ("tracked", "occluded" or "lost")."""
        with self._lock:
            return self._get(obj_id).state

    def reset(self) -> None:
        """Forget every object and the last frame (start of a new video); ids restart at 1."""
        with self._lock:
            self._objects.clear()
            self._next_id = 1
            self._emb = None
            self.frame_index = 0

    def remove(self, obj_id: int) -> None:
        """Stop tracking ``obj_id``.

        Raises:
          InputError: no such object."""
        with self._lock:
            self._get(obj_id)
            # a new dict, not ``del``: a dict's table never shrinks on deletion alone
            self._objects = {k: v for k, v in self._objects.items() if k != obj_id}

    def add(
        self,
        frame: Frame,
        *,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> list[int]:
        """Start tracking new objects on a frame: one object per box, and one object for the
        clicks (positive label 1, negative 0; at least one positive).

        Arguments:
          frame: a frame (H x W x 3 uint8 in the Segmenter's ``color_order``; it becomes the
            current frame, one encoder pass), an ``ImageEmbedding`` from this Segmenter's
            ``set_image``, or None for the frame stepped last.
          points, labels, boxes: frame pixels (the rules of ``Segmenter.prompt``).
        Returns:
          the new ids, the clicks' object first, then one per box.
        Raises:
          InputError: no frame yet (None), a frame of another size than the stream's, an
            embedding of another encoder, malformed prompts or labels (NaN / inf, wrong
            shapes, labels not 0 / 1, boxes with x1 <= x0), prompts outside the frame, no
            prompt, more than ``max_objects`` objects in all.
        """
        return [t.id for t in self.add_tracks(frame, points=points, labels=labels, boxes=boxes)]

    def add_tracks(
        self,
        frame: Frame,
        *,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> list[PromptTrack]:
        """``add``, returning each new object's record on that frame (its first mask, box,
        the decoder's predicted IoU as score, similarity 1, "tracked") instead of its id:
        what a stream shows on the frame the objects were given on. Same arguments and
        errors as ``add``; a failed call leaves the tracker as it was."""
        emb = self._encode(frame)
        pts, lab = clicks(points, labels, required=False)
        n_box, given = 0, np.zeros((0, 4))
        if boxes is not None and np.size(boxes):
            arr = as_coords("boxes", boxes, 4)
            if arr.ndim != 2 or arr.shape[1] != 4:
                raise InputError(f"boxes must be P x 4 numbers, got shape {arr.shape}")
            no_bools("boxes", boxes)
            n_box, given = len(arr), arr
        n_new = (1 if pts is not None else 0) + n_box
        if n_new == 0:
            raise InputError("add() needs boxes=... or points=... (with labels=...)")
        with self._lock:
            emb = self._current(emb, rescale=False)
            if len(self._objects) + n_new > self.max_objects:
                raise InputError(
                    f"{len(self._objects)} objects tracked + {n_new} new exceeds max_objects="
                    f"{self.max_objects}; remove() some first"
                )
            res = self.seg.prompt(emb, points=pts, boxes=given if n_box else None)
            masks, scores = list(res.masks), list(res.iou.tolist())
            if pts is not None and lab is not None:
                k = len(pts)
                masks = [combine(res.masks[:k], lab), *masks[k:]]
                scores = [float(res.iou[:k][lab == 1].mean()), *scores[k:]]
            new = []  # all made before any is kept: a failed add leaves the tracker as it was
            h, w = emb.frame_hw
            prompts = [click_box(emb, pts)] * (len(masks) - n_box)
            prompts += list(np.clip(given, 0, [w, h, w, h]))  # a box: its object's 1st prompt
            for mask, prompt in zip(masks, prompts):
                obj = _Object(np.zeros(4), np.zeros(1, np.float32), np.zeros(4))
                self._reset_object(obj, emb, mask, prompt)
                new.append(obj)
            ids = list(range(self._next_id, self._next_id + len(new)))
            self._objects.update(zip(ids, new))
            self._next_id += len(new)
            self._emb = emb
        return [
            PromptTrack(i, m, o.box.astype(np.int32), s, 1.0, o.state)
            for i, m, o, s in zip(ids, masks, new, scores)
        ]

    def refine(
        self,
        obj_id: int,
        *,
        points: Sequence[Sequence[float]] | np.ndarray,
        labels: Sequence[int] | np.ndarray | None = None,
    ) -> PromptTrack:
        """Correct a drifting object with new clicks on the frame stepped last: its mask
        becomes the union of the positive clicks' masks less the negative ones', its memory
        restarts from that mask, and it is "tracked".

        Returns:
          the object's corrected record on the current frame.
        Raises:
          InputError: unknown id, no frame yet, malformed clicks, no positive click, clicks
            outside the frame.
        """
        pts, lab = clicks(points, labels, required=True)
        assert pts is not None and lab is not None
        with self._lock:
            obj = self._get(obj_id)
            emb = self._current(None, rescale=False)
            res = self.seg.prompt(emb, points=pts)
            mask = combine(res.masks, lab)
            self._reset_object(obj, emb, mask, click_box(emb, pts))
            score = float(res.iou[lab == 1].mean())
            return PromptTrack(int(obj_id), mask, obj.box.astype(np.int32), score, 1.0, obj.state)

    def step(
        self, frame: np.ndarray | ImageEmbedding, *, rescale: bool = False
    ) -> PromptTrackResult:
        """Track every object into the next frame of the video.

        Arguments:
          frame: H x W x 3 uint8 in the Segmenter's ``color_order``, the size of the
            stream's earlier frames; or its ``ImageEmbedding`` from this Segmenter (no
            second encoder pass when the caller has one: ``Segmenter.stream``).
          rescale: a frame of another size than the last one is the same view at another
            resolution (a camera reconnected in another mode): every object's boxes are
            scaled to it (kept >= 1 pixel a side) and the objects are verified by their
            appearance as on any frame (one not found turns occluded, then lost, under its
            id). Only a size with both sides >= ``RESCALE_MIN_SIDE`` and the aspect ratio
            within ``RESCALE_MAX_ASPECT`` of the last frame's counts as the same view
            (``runtime.prompt_parts``). False: InputError. Must be a bool.
        Returns:
          ``PromptTrackResult``: one ``PromptTrack`` per object (in ``ids`` order) and
          timings (ms): prepare, encoder, decoder, postprocess, tracking.
        Raises:
          InputError: a bad frame, an embedding of another encoder, ``rescale`` not a
            bool, or, while objects are tracked, a frame of another size than the stream's
            (``rescale`` False) or of a size that is no resolution change of the same view
            (``rescale`` True); a refused frame leaves the tracker as it was.
        """
        if frame is None:
            raise InputError("step() needs a frame or an ImageEmbedding, got None")
        if not isinstance(rescale, (bool, np.bool_)):
            raise InputError(f"rescale must be True or False, got {rescale!r}")
        emb = self._encode(frame)
        with self._lock:
            emb = self._current(emb, rescale=rescale)
            self._emb = emb
            timings = dict(emb.timings)
            index = self.frame_index
            self.frame_index += 1
            if not self._objects:
                return PromptTrackResult(index, [], emb.frame_hw, timings)
            boxes, owner = self._search_boxes(emb.frame_hw)
            res = self._decode(emb, boxes)
            timings.update(res.timings)
            t0 = time.perf_counter()
            grid = self._cells(emb)
            boxes_out = np.asarray(ops.masks_to_boxes(res.masks), np.float64).reshape(-1, 4)
            out = []
            for k, (oid, obj) in enumerate(self._objects.items()):
                cand = np.flatnonzero(owner == k)
                out.append(self._verify(oid, obj, res, (boxes, boxes_out), cand, emb, grid))
            timings["tracking"] = _ms(t0)
            return PromptTrackResult(index, out, emb.frame_hw, timings)

    # ------------------------------------------------------------------ internals
    def _get(self, obj_id: Any) -> _Object:
        is_id = isinstance(obj_id, (int, np.integer)) and not isinstance(obj_id, bool)
        obj = self._objects.get(int(obj_id)) if is_id else None
        if obj is None:
            raise InputError(f"no tracked object with id {obj_id!r}; tracked ids: {self.ids}")
        return obj

    def _encode(self, frame: Any) -> ImageEmbedding | None:
        """A frame's embedding (its encoder pass, outside the lock), a given embedding
        checked to come from this Segmenter's encoder, or None (the frame stepped last)."""
        if frame is None:
            return None
        if isinstance(frame, ImageEmbedding):
            return check_embedding(frame, None, self.seg.encoder_id, self.seg.bundle.feat_stride)
        return self.seg.set_image(frame)

    def _current(self, emb: ImageEmbedding | None, *, rescale: bool) -> ImageEmbedding:
        """The frame a call works on (under the lock): ``emb``, or the frame stepped last
        when None; a frame of another size than the last one is refused while objects are
        tracked, or (``rescale``) their boxes are scaled to it."""
        if emb is None:
            if self._emb is None:
                raise InputError(
                    "no frame yet: pass a frame (or an ImageEmbedding) to add(), or step() "
                    "one first"
                )
            return self._emb
        if self._emb is not None and self._objects and emb.frame_hw != self._emb.frame_hw:
            (h, w), (nh, nw) = self._emb.frame_hw, emb.frame_hw
            if not rescale:
                raise InputError(
                    f"frame of {nh} x {nw} in a stream of {h} x {w} frames: the tracked "
                    "objects' boxes belong to that size; reset() for a new video (or "
                    "step(frame, rescale=True) for the same view at another resolution)"
                )
            objs = list(self._objects.values())  # checked before any box is changed
            boxes = rescaled((h, w), (nh, nw), [o.box for o in objs] + [o.prompt for o in objs])
            for k, obj in enumerate(objs):
                obj.box, obj.prompt = boxes[k], boxes[len(objs) + k]
        return emb

    def _reset_object(
        self, obj: _Object, emb: ImageEmbedding, mask: np.ndarray, prompt: Any = None
    ) -> None:
        """(Re)start ``obj`` from ``mask`` on ``emb``: box, memory, state "tracked", and
        ``prompt`` (None: the mask's box) as the prompt of its accepted mask."""
        box = mask_box(mask)
        if box is None:
            raise InputError(
                "the prompt gives an empty mask on this frame: nothing to track (prompt "
                "inside the object, or give a box)"
            )
        obj.box = box
        obj.prompt = box.copy() if prompt is None else np.asarray(prompt, np.float64)
        obj.memory = pool(emb, mask, self._cells(emb))
        obj.state, obj.missed = "tracked", 0

    def _search_boxes(self, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The frame's prompts, all objects in one decoder call: per object its last box
        enlarged by ``margin`` (and by ``search_margin`` while occluded / lost) and its last
        accepted prompt. Returns (Q x 4 boxes, Q owning object indices)."""
        h, w = hw
        boxes, owner = [], []
        for k, obj in enumerate(self._objects.values()):
            x0, y0, x1, y1 = obj.box
            margins = [self.config.margin]
            if obj.state != "tracked":
                margins.append(self.config.search_margin)
            for m in margins:
                dx, dy = m * (x1 - x0), m * (y1 - y0)
                boxes.append(np.clip([x0 - dx, y0 - dy, x1 + dx, y1 + dy], 0, [w, h, w, h]))
                owner.append(k)
            if not np.array_equal(obj.prompt, boxes[-1]):
                boxes.append(obj.prompt)
                owner.append(k)
        return np.array(boxes), np.array(owner)

    def _decode(self, emb: ImageEmbedding, boxes: np.ndarray) -> PromptResult:
        """``Segmenter.prompt`` on ``boxes``, in calls of at most ``max_prompts`` boxes (an
        object may have up to three candidates)."""
        step = self.seg.max_prompts
        if len(boxes) <= step:
            return self.seg.prompt(emb, boxes=boxes)
        parts = [
            self.seg.prompt(emb, boxes=boxes[i : i + step]) for i in range(0, len(boxes), step)
        ]
        timings: dict[str, float] = {}
        for part in parts:
            for key, ms in part.timings.items():
                timings[key] = timings.get(key, 0.0) + ms
        masks, iou, stab = (np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS)
        return PromptResult(masks, iou, stab, timings)

    def _cells(self, emb: ImageEmbedding) -> tuple[np.ndarray, np.ndarray]:
        """Frame-pixel (rows, cols) of the centres of the feature cells inside the frame."""
        return cells(emb, self.seg.bundle.feat_stride)

    def _verify(
        self,
        oid: int,
        obj: _Object,
        res: PromptResult,
        prompts_boxes: tuple[np.ndarray, np.ndarray],
        cand: np.ndarray,
        emb: ImageEmbedding,
        grid: tuple[np.ndarray, np.ndarray],
    ) -> PromptTrack:
        """Pick the object's best candidate among ``res``'s masks ``cand`` (highest
        similarity among those with enough area and score; ``prompts_boxes``: each mask's
        prompt and box) and move its state machine (the module doc, step 3 and 4)."""
        cfg = self.config
        prompts, boxes = prompts_boxes
        best: tuple[float, int, np.ndarray, np.ndarray] | None = None
        for i in cand:
            mask, (x0, y0, x1, y1) = res.masks[i], boxes[i].astype(np.int64)
            if x1 <= x0 or res.iou[i] < cfg.min_score:
                continue
            if cfg.min_area > 1 and mask[y0:y1, x0:x1].sum() < cfg.min_area:
                continue
            feat = pool(emb, mask, grid)
            sim = float(feat @ obj.memory)
            if best is None or sim > best[0]:
                best = (sim, int(i), boxes[i], feat)
        if best is not None and best[0] >= cfg.min_similarity:
            sim, i, box, feat = best  # the mask's box is reported; the next prompt is cut
            if obj.state == "tracked":  # against box creep: grow at most max_growth a side
                obj.box = clamp_growth(box, obj.box, cfg.max_growth)
            else:
                obj.box = box
            obj.prompt, obj.state, obj.missed = prompts[i], "tracked", 0
            mem = cfg.momentum * obj.memory + (1 - cfg.momentum) * feat
            obj.memory = mem / max(float(np.linalg.norm(mem)), 1e-12)
            return PromptTrack(
                oid, res.masks[i], box.astype(np.int32), float(res.iou[i]), sim, "tracked"
            )
        obj.missed += 1
        obj.state = "lost" if obj.missed >= cfg.max_occluded else "occluded"
        sim = -1.0 if best is None else best[0]
        empty = np.zeros(emb.frame_hw, dtype=bool)
        score = float(res.iou[cand].max())
        return PromptTrack(oid, empty, obj.box.astype(np.int32), score, sim, obj.state)
