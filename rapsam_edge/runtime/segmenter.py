"""``Segmenter``: the user API of the runtime. Loads a bundle, runs its three graphs on a
backend and post-processes with the C++ core. Never imports torch.

    seg = Segmenter("models/default", backend="auto")
    pan = seg.panoptic(frame)                      # label map + segments at the frame's size
    seg.set_image(frame)                           # encoder once ...
    res = seg.prompt(points=[(x, y)], boxes=[(x0, y0, x1, y1)])   # ... cheap prompt decodes
    for result in seg.stream(0):                   # camera 0: tracked instances per frame
        ...

Frames are H x W x 3 uint8 in ``color_order`` ("RGB" by default; "BGR" for OpenCV frames);
``stream`` reads with OpenCV and converts by itself. Points and boxes are in frame pixels.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import ops
from .results import PanopticResult, PromptResult, TrackResult
from .tracker import Detection, OnlineTracker, TrackerConfig

log = logging.getLogger(__name__)

GRAPHS = ("encoder", "panoptic_decoder", "prompt_decoder")
POINT_BOX_HALF = 3.0  # a point prompt is the box [p - 3, p + 3] in network-input pixels


@dataclass(frozen=True)
class RuntimeSpec:
    """What the runtime needs to know about a model (from a bundle's manifest)."""

    input_size: int  # long side of the network input
    pad_divisor: int
    pad_value: int
    feat_stride: int
    class_names: tuple[str, ...]
    is_thing: np.ndarray  # C bools
    score_threshold: float = 0.8
    overlap_threshold: float = 0.8
    prompt_threshold: float = 0.0

    @classmethod
    def from_bundle(cls, bundle: Any) -> RuntimeSpec:
        return cls(
            input_size=bundle.input.long_side,
            pad_divisor=bundle.input.pad_divisor,
            pad_value=bundle.input.pad_value,
            feat_stride=bundle.feat_stride,
            class_names=tuple(c.name for c in bundle.classes),
            is_thing=np.array([c.is_thing for c in bundle.classes], dtype=bool),
            score_threshold=bundle.postprocess.score_threshold,
            overlap_threshold=bundle.postprocess.overlap_threshold,
            prompt_threshold=bundle.postprocess.prompt_threshold,
        )


@dataclass(frozen=True)
class PreparedFrame:
    """A letterboxed frame: ``image`` 1 x Hp x Wp x 3 uint8 RGB, ``scale`` (frame -> input),
    ``valid_hw`` of the resized frame inside the padded input, the frame's own size."""

    image: np.ndarray
    scale: float
    valid_hw: tuple[int, int]
    frame_hw: tuple[int, int]
    prepare_ms: float


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class Segmenter:
    """Panoptic, interactive and video segmentation with one exported model."""

    def __init__(
        self,
        bundle: str | Path | Any,
        backend: str | Mapping[str, str] = "auto",
        *,
        device: str | None = None,
        color_order: str = "RGB",
        input_size: int | None = None,
        tracker: TrackerConfig | None = None,
        **thresholds: float,
    ) -> None:
        """bundle: a bundle directory (or a loaded ``Bundle``); backend: "auto" (a GPU
        backend by the registry's rank when one is available, else "fastest" among the CPU
        ones), "fastest" (time every available backend on every graph at start-up and keep the
        fastest per graph), a backend name, or a mapping graph -> backend name; input_size:
        network long side (default: the bundle's); thresholds: score_threshold,
        overlap_threshold, prompt_threshold overrides."""
        from ..bundle import load_bundle
        from .registry import create_backend

        unknown = set(thresholds) - {"score_threshold", "overlap_threshold", "prompt_threshold"}
        if unknown:
            raise TypeError(f"unknown Segmenter arguments: {sorted(unknown)}")
        if color_order not in ("RGB", "BGR"):
            raise ValueError(f"color_order must be 'RGB' or 'BGR', got {color_order!r}")
        self.bundle = load_bundle(bundle) if isinstance(bundle, (str, Path)) else bundle
        spec = RuntimeSpec.from_bundle(self.bundle)
        if input_size is not None:
            if input_size <= 0 or input_size % spec.pad_divisor:
                raise ValueError(f"input_size must be a positive multiple of {spec.pad_divisor}")
            spec = replace(spec, input_size=input_size)
        self.spec = replace(spec, **thresholds)
        self.color_order = color_order
        self.tracker = OnlineTracker(tracker)
        self._image: tuple[PreparedFrame, np.ndarray] | None = None

        # one backend per graph
        self.backend_timings: dict[str, dict[str, float]] = {}
        if backend == "auto":
            backend = _auto_backend(self.bundle, device)
        if backend == "fastest":
            from .autotune import fastest_backends

            self.graphs, self.backend_timings = fastest_backends(self.bundle, device)
        else:
            names = backend if isinstance(backend, Mapping) else dict.fromkeys(GRAPHS, backend)
            if set(names) != set(GRAPHS):
                raise ValueError(f"backend mapping needs exactly the graphs {GRAPHS}")
            self.graphs = {
                g: create_backend(self.bundle, g, names[g], device=device) for g in GRAPHS
            }
        used = [self.graphs[g].name for g in GRAPHS]
        #: one name, or "encoder=..., panoptic_decoder=..., prompt_decoder=..." when they differ
        self.backend_name = (
            used[0] if len(set(used)) == 1 else ", ".join(f"{g}={n}" for g, n in zip(GRAPHS, used))
        )
        log.info("Segmenter: bundle %s on backend %s", self.bundle.name, self.backend_name)

    # ------------------------------------------------------------------ stages
    def prepare(self, frame: np.ndarray, *, color_order: str | None = None) -> PreparedFrame:
        """Letterbox a frame to the network input (C++ core: resize + pad + RGB order)."""
        t0 = time.perf_counter()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            shape = getattr(frame, "shape", None)
            raise ValueError(f"frame must be an H x W x 3 uint8 array, got shape {shape}")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8, got {frame.dtype}")
        order = color_order or self.color_order
        image, scale, valid_hw = ops.letterbox(
            np.ascontiguousarray(frame),
            self.spec.input_size,
            self.spec.pad_divisor,
            self.spec.pad_value,
            order == "BGR",
        )
        return PreparedFrame(image[None], scale, tuple(valid_hw), frame.shape[:2], _ms(t0))

    def _encode(self, prepared: PreparedFrame) -> np.ndarray:
        return self.graphs["encoder"].run({"image": prepared.image})["feats"]

    def _valid_cells(self, prepared: PreparedFrame) -> tuple[float, float]:
        s = self.spec.feat_stride
        return prepared.valid_hw[0] / s, prepared.valid_hw[1] / s

    def _panoptic(self, prepared: PreparedFrame) -> PanopticResult:
        timings = {"prepare": prepared.prepare_ms}
        t0 = time.perf_counter()
        feats = self._encode(prepared)
        timings["encoder"] = _ms(t0)
        t0 = time.perf_counter()
        out = self.graphs["panoptic_decoder"].run({"feats": feats})
        timings["decoder"] = _ms(t0)
        t0 = time.perf_counter()
        label_map, segments = ops.panoptic_fuse(
            np.ascontiguousarray(out["cls_logits"][0], dtype=np.float32),
            np.ascontiguousarray(out["mask_logits"][0], dtype=np.float32),
            self._valid_cells(prepared),
            prepared.frame_hw,
            self.spec.is_thing,
            self.spec.score_threshold,
            self.spec.overlap_threshold,
        )
        embed = out["query_embed"][0][segments["query"]]
        timings["postprocess"] = _ms(t0)
        return PanopticResult(label_map, segments, self.spec.class_names, embed, timings)

    # ------------------------------------------------------------------ public API
    def panoptic(self, frame: np.ndarray) -> PanopticResult:
        """Panoptic segmentation of one frame at the frame's size."""
        return self._panoptic(self.prepare(frame))

    def set_image(self, frame: np.ndarray) -> None:
        """Run the encoder once; following ``prompt`` calls reuse its features."""
        prepared = self.prepare(frame)
        self._image = (prepared, self._encode(prepared))

    def prompt(
        self,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> PromptResult:
        """One mask per prompt for the image given to ``set_image``: ``points`` P x 2 (x, y)
        and/or ``boxes`` P x 4 (x0, y0, x1, y1), frame pixels; points first in the output."""
        if self._image is None:
            raise RuntimeError("call set_image(frame) before prompt()")
        prepared, feats = self._image
        prompt_boxes = self._prompt_boxes(points, boxes, prepared)
        t0 = time.perf_counter()
        out = self.graphs["prompt_decoder"].run({"feats": feats, "boxes": prompt_boxes})
        timings = {"decoder": _ms(t0)}
        t0 = time.perf_counter()
        masks, stability = ops.prompt_masks(
            np.ascontiguousarray(out["mask_logits"][0], dtype=np.float32),
            self._valid_cells(prepared),
            prepared.frame_hw,
            self.spec.prompt_threshold,
        )
        timings["postprocess"] = _ms(t0)
        return PromptResult(masks, np.asarray(out["iou"][0], dtype=np.float32), stability, timings)

    @staticmethod
    def _prompt_boxes(points, boxes, prepared: PreparedFrame) -> np.ndarray:
        h, w = prepared.frame_hw
        parts = []
        if points is not None and len(points):
            pts = np.asarray(points, dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
                raise ValueError(f"points must be P x 2 finite (x, y), got shape {pts.shape}")
            if (pts < 0).any() or (pts[:, 0] > w).any() or (pts[:, 1] > h).any():
                raise ValueError(f"points must lie inside the {w} x {h} frame")
            centre = pts * prepared.scale
            parts.append(np.concatenate([centre - POINT_BOX_HALF, centre + POINT_BOX_HALF], 1))
        if boxes is not None and len(boxes):
            bx = np.asarray(boxes, dtype=np.float64)
            if bx.ndim != 2 or bx.shape[1] != 4 or not np.isfinite(bx).all():
                raise ValueError(f"boxes must be P x 4 finite (x0, y0, x1, y1), got {bx.shape}")
            if (bx[:, 2] <= bx[:, 0]).any() or (bx[:, 3] <= bx[:, 1]).any():
                raise ValueError("boxes need x1 > x0 and y1 > y0")
            parts.append(bx * prepared.scale)
        if not parts:
            raise ValueError("prompt() needs at least one point or box")
        return np.ascontiguousarray(np.concatenate(parts)[None], dtype=np.float32)

    def track(self, frame: np.ndarray) -> TrackResult:
        """Online video instance segmentation: thing segments get stable track ids."""
        return self._track(self.prepare(frame))

    def _track(self, prepared: PreparedFrame) -> TrackResult:
        pan = self._panoptic(prepared)
        t0 = time.perf_counter()
        things = np.flatnonzero(pan.segments["is_thing"])
        segs = pan.segments[things]
        dets = [
            Detection(
                embedding=pan.query_embed[i], class_id=int(s["class"]), score=float(s["score"])
            )
            for i, s in zip(things, segs)
        ]
        ids = np.array(self.tracker.update(dets), dtype=np.int32)
        lut = np.zeros(int(pan.segments["id"].max(initial=0)) + 1, dtype=np.int32)
        lut[segs["id"]] = ids
        track_map = lut[pan.panoptic_map]
        keep = ids > 0
        timings = {**pan.timings, "tracking": _ms(t0)}
        return TrackResult(
            self.tracker.frame_index,
            track_map,
            ids[keep],
            segs["class"][keep].astype(np.int32),
            segs["score"][keep].astype(np.float32),
            pan,
            timings,
        )

    def reset_tracks(self) -> None:
        """Forget all tracks (start of a new video)."""
        self.tracker.reset()

    def stream(
        self,
        source: int | str | Path | Iterable[np.ndarray],
        *,
        task: str = "track",
        max_frames: int | None = None,
    ) -> Iterator[tuple[np.ndarray, TrackResult | PanopticResult]]:
        """Yield (frame, result) for a camera index, a video file or an iterable of frames,
        capturing and letterboxing frame t+1 in a thread while frame t is inferred (queue of
        2: memory stays flat on endless streams). Camera / file frames are BGR (OpenCV);
        frames from an iterable are in ``color_order``."""
        if task not in ("track", "panoptic"):
            raise ValueError(f"task must be 'track' or 'panoptic', got {task!r}")
        frames, order = _open_source(source, self.color_order)
        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        done = object()

        def produce() -> None:
            try:
                for i, frame in enumerate(frames):
                    if stop.is_set() or (max_frames is not None and i >= max_frames):
                        break
                    q.put((frame, self.prepare(frame, color_order=order)))
            except Exception as exc:  # surfaced in the consumer
                q.put(exc)
            finally:
                q.put(done)

        worker = threading.Thread(target=produce, name="rapsam-capture", daemon=True)
        worker.start()
        if task == "track":
            self.reset_tracks()
        try:
            while (item := q.get()) is not done:
                if isinstance(item, Exception):
                    raise item
                frame, prepared = item
                infer = self._track if task == "track" else self._panoptic
                yield frame, infer(prepared)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)


def _auto_backend(bundle, device: str | None) -> str:
    """A GPU backend by rank when one is available; otherwise "fastest" over the CPU
    backends (which one wins depends on the model and the CPU; see benchmarks/)."""
    from .registry import GPU_BACKENDS, available_backends

    names = [n for n in available_backends(bundle, device=device) if n != "torch"]
    if not names:
        raise RuntimeError("no runtime backend is available for this bundle")
    gpu = [n for n in names if n in GPU_BACKENDS]
    if gpu:
        return gpu[0]
    return "fastest" if len(names) > 1 else names[0]


def _open_source(source, color_order: str) -> tuple[Iterable[np.ndarray], str]:
    if isinstance(source, (int, str, Path)):
        import cv2

        cap = cv2.VideoCapture(int(source) if isinstance(source, int) else str(source))
        if not cap.isOpened():
            raise ValueError(f"cannot open video source {source!r}")

        def read() -> Iterator[np.ndarray]:
            try:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        return
                    yield frame
            finally:
                cap.release()

        return read(), "BGR"
    return source, color_order
