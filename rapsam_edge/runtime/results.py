"""Result types of the runtime: plain dataclasses holding numpy arrays (a prepared frame, an
image embedding, panoptic / prompt / track results), plus converters to the standard
formats (COCO panoptic PNG + JSON, COCO RLE, YouTube-VIS JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .. import ops


@dataclass(frozen=True)
class PreparedFrame:
    """A letterboxed frame: ``image`` 1 x Hp x Wp x 3 uint8 RGB, ``scale`` (frame -> input),
    ``valid_hw`` of the resized frame inside the padded input, the frame's own size, and the
    time ``prepare`` took (ms)."""

    image: np.ndarray
    scale: float
    valid_hw: tuple[int, int]
    frame_hw: tuple[int, int]
    prepare_ms: float


@dataclass(frozen=True)
class ImageEmbedding:
    """What ``set_image`` returns and ``prompt`` accepts: one frame's letterbox geometry and
    its encoder features (``feats`` 1 x D x Hp/s x Wp/s float32, read-only). Immutable, so
    several threads may prompt the same embedding."""

    prepared: PreparedFrame
    feats: np.ndarray
    timings: Mapping[str, float]
    #: the bundle and encoder files that made ``feats``; ``prompt`` refuses an embedding of
    #: another encoder (same shape, other weights or precision: silently wrong masks)
    encoder: str = ""

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self.prepared.frame_hw


@dataclass
class PanopticResult:
    """``panoptic_map``: H x W int32 segment ids (0 = void) at the frame's size; ``segments``:
    K records of ``ops.SEGMENT_DTYPE`` (id, class, query, score, area, is_thing);
    ``class_names``: the bundle's class names; ``query_embed``: K x D embeddings of the
    queries that made the segments (for tracking); ``timings``: milliseconds per stage;
    ``prompts``: the prompt tracker's frame in a ``Segmenter.stream`` given prompts."""

    panoptic_map: np.ndarray
    segments: np.ndarray
    class_names: Sequence[str]
    query_embed: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    prompts: PromptTrackResult | None = None

    @cached_property
    def boxes(self) -> np.ndarray:
        """K x 4 int32 (x0, y0, x1, y1) boxes of the segments, exclusive max."""
        ids = self.segments["id"]
        if ids.size == 0:
            return np.zeros((0, 4), dtype=np.int32)
        masks = np.ascontiguousarray(self.panoptic_map[None] == ids[:, None, None])
        return ops.masks_to_boxes(masks)

    def to_coco(
        self, *, image_id: int, file_name: str, category_ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """-> (H x W x 3 uint8 RGB panoptic PNG content, COCO panoptic annotation dict).
        ``category_ids[class]`` maps train classes to the dataset's category ids (default
        class + 1)."""
        from ..contract.panoptic_ids import id_to_rgb

        boxes = self.boxes
        infos = []
        for seg, box in zip(self.segments, boxes):
            cls = int(seg["class"])
            x0, y0, x1, y1 = (int(v) for v in box)
            infos.append(
                {
                    "id": int(seg["id"]),
                    "category_id": int(category_ids[cls]) if category_ids is not None else cls + 1,
                    "area": int(seg["area"]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                    "score": float(seg["score"]),
                }
            )
        annotation = {"image_id": image_id, "file_name": file_name, "segments_info": infos}
        return id_to_rgb(self.panoptic_map), annotation


@dataclass
class PromptResult:
    """``masks``: P x H x W bool at the frame's size; ``iou``: P predicted quality (IoU head);
    ``stability``: P stability scores; ``timings`` in ms."""

    masks: np.ndarray
    iou: np.ndarray
    stability: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    def to_rle(self) -> list[dict[str, Any]]:
        """COCO compressed RLE per mask (counts as str, JSON-ready)."""
        if len(self.masks) == 0:
            return []
        rles = ops.rle_encode(np.ascontiguousarray(self.masks))
        assert isinstance(rles, list)  # a mask stack in, one RLE per mask out
        return [{"size": r["size"], "counts": r["counts"].decode("ascii")} for r in rles]


@dataclass
class TrackResult:
    """One video frame.

    Attributes:
      frame_index: index of the frame in its video (the tracker's count, from 0).
      track_map: H x W int32 track ids (0 = no tracked instance) at the frame's size.
      track_ids: T int32 ids of the tracks visible in this frame (> 0).
      track_classes: T int32 class ids of those detections.
      track_scores: T float32 class scores of those detections.
      panoptic: the frame's ``PanopticResult`` (stuff included).
      timings: milliseconds per stage (panoptic stages + "tracking").
      prompts: the prompt tracker's frame in a ``Segmenter.stream`` given prompts (its
        stages also in ``timings`` as "prompt_..."), else None.
    """

    frame_index: int
    track_map: np.ndarray
    track_ids: np.ndarray
    track_classes: np.ndarray
    track_scores: np.ndarray
    panoptic: PanopticResult
    timings: dict[str, float] = field(default_factory=dict)
    prompts: PromptTrackResult | None = None


class YtvisRecorder:
    """Collects TrackResults of one video into YouTube-VIS result entries (one per track:
    video_id, category_id, score = mean over the frames it was seen, per-frame RLE or None).

    Each frame is encoded when added (one RLE per live track); nothing of the frame's
    H x W maps is kept, so memory grows with the tracks' RLE sizes only (a few hundred bytes
    per track and frame), not with the frame size."""

    def __init__(self, video_id: int, category_ids: Sequence[int] | None = None) -> None:
        self.video_id = video_id
        self.category_ids = category_ids
        self.num_frames = 0
        # track id -> {"masks": {frame index: rle}, "scores": [...], "classes": [...]}
        self._tracks: dict[int, dict[str, Any]] = {}

    def add(self, result: TrackResult) -> None:
        """Encode one frame's tracks (``track_map`` == id) as RLE and keep only those."""
        t = self.num_frames
        self.num_frames += 1
        ids = result.track_ids.tolist()
        if not ids:
            return
        masks = np.ascontiguousarray(result.track_map[None] == result.track_ids[:, None, None])
        rles = ops.rle_encode(masks)
        assert isinstance(rles, list)  # a mask stack in, one RLE per mask out
        for tid, cls, score, rle in zip(
            ids, result.track_classes.tolist(), result.track_scores.tolist(), rles
        ):
            entry = self._tracks.setdefault(tid, {"masks": {}, "scores": [], "classes": []})
            entry["masks"][t] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            entry["scores"].append(score)
            entry["classes"].append(cls)

    def results(self) -> list[dict[str, Any]]:
        out = []
        for entry in self._tracks.values():
            cls = int(np.bincount(entry["classes"]).argmax())
            out.append(
                {
                    "video_id": self.video_id,
                    "category_id": int(self.category_ids[cls]) if self.category_ids else cls + 1,
                    "score": float(np.mean(entry["scores"])),
                    "segmentations": [entry["masks"].get(t) for t in range(self.num_frames)],
                }
            )
        return out


@dataclass
class PromptTrack:
    """One prompted object on one frame (``PromptTracker``).

    Attributes:
      id: the object's id (from ``add``).
      mask: H x W bool at the frame's size (empty unless ``state`` is "tracked").
      box: 4 int32 (x0, y0, x1, y1), exclusive max: the mask's box, or the last box seen
        while occluded / lost.
      score: the prompt decoder's predicted IoU for this frame's candidate.
      similarity: cosine similarity of the candidate's appearance to the object's memory
        (-1 when the candidate is empty).
      state: "tracked", "occluded" or "lost".
    """

    id: int
    mask: np.ndarray
    box: np.ndarray
    score: float
    similarity: float
    state: str


@dataclass
class PromptTrackResult:
    """One frame of a ``PromptTracker``: ``objects`` in the tracker's id order,
    ``frame_hw``, and ``timings`` (ms per stage)."""

    frame_index: int
    objects: list[PromptTrack]
    frame_hw: tuple[int, int]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        return [o.id for o in self.objects]

    def get(self, obj_id: int) -> PromptTrack | None:
        """The record of ``obj_id`` on this frame (None if it was not tracked here)."""
        return next((o for o in self.objects if o.id == obj_id), None)
