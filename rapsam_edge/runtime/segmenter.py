"""``Segmenter``: the user API of the runtime. Loads a bundle, runs its three graphs on a
backend and post-processes with the C++ core. Never imports torch.

    seg = Segmenter()                                   # the shipped default bundle
    pan = seg.panoptic(frame)                           # label map + segments, frame size
    emb = seg.set_image(frame)                          # encoder once ...
    res = seg.prompt(emb, points=[(x, y)], boxes=[(x0, y0, x1, y1)])   # ... cheap decodes
    for frame, tracked in seg.stream(0):                # camera 0: tracked instances
        ...

Frames are H x W x 3 uint8 in ``color_order`` ("RGB" by default; "BGR" for OpenCV frames);
``stream`` reads with OpenCV and converts by itself. Points and boxes are in frame pixels.

Threads: one Segmenter may be shared by several threads. ``panoptic`` and ``prompt`` (with
the handle ``set_image`` returned) keep no per-call state in the Segmenter; the backends are
safe to call concurrently (ONNX Runtime and OpenVINO run calls in parallel, TensorRT and
torch one at a time). ``track`` state lives in an ``OnlineTracker``: each ``stream`` has its
own; ``track(frame)`` without ``tracker=`` uses the Segmenter's default one under a lock
(frames of one video must arrive in order, so give each video its own tracker from
``new_tracker()``).
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import ops
from ..bundle import Bundle, load_bundle
from ..contract.graphs import GRAPH_NAMES
from ..contract.postprocess import POINT_BOX_HALF, SATURATED_LOGIT, PostprocessDefaults
from ..errors import (
    BackendError,
    BundleError,
    ConfigError,
    InputError,
    ManifestError,
    SourceError,
)
from .base import Backend
from .registry import SELECTION_POLICIES, canonical_name, create_backend
from .results import PanopticResult, PromptResult, TrackResult
from .tracker import Detection, OnlineTracker, TrackerConfig

__all__ = ["ImageEmbedding", "PreparedFrame", "Segmenter", "open_source"]

log = logging.getLogger(__name__)

#: largest network input side accepted for ``input_size``
MAX_INPUT_SIZE = 4096
#: default bound on prompts per ``prompt`` call (``max_prompts``)
MAX_PROMPTS = 256


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


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def _saturated(a: np.ndarray, where: str) -> np.ndarray:
    """``a`` with +/-inf replaced by +/-``SATURATED_LOGIT`` (a definite decision).

    Raises:
      BackendError: ``a`` holds NaN.
    """
    if np.isfinite(a).all():
        return a
    if np.isnan(a).any():
        raise BackendError(f"{where} holds NaN (a numerically broken graph, e.g. FP16 overflow)")
    return np.clip(a, -SATURATED_LOGIT, SATURATED_LOGIT)


def _postprocess(op: Any, logits: Sequence[tuple[np.ndarray, str]], *args: Any) -> Any:
    """``op(*logits, *args)`` on C-contiguous float32 logits. The ops already reject
    non-finite values (one scan, in the C++ core); only then are +/-inf saturated and the op
    called again, so finite frames pay no second scan; NaN is a ``BackendError`` naming the
    tensor, any other bad input the op's own ``InputError``."""
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a, _ in logits]
    try:
        return op(*arrays, *args)
    except InputError:
        return op(*(_saturated(a, where) for a, (_, where) in zip(arrays, logits)), *args)


def _threshold(name: str, value: Any, *, unit: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    if unit and not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value}")
    return value


class Segmenter:
    """Panoptic, interactive and video segmentation with one exported model."""

    def __init__(
        self,
        bundle: str | Path | Bundle | None = None,
        backend: str | Mapping[str, str] = "auto",
        *,
        device: str | None = None,
        color_order: str = "RGB",
        input_size: int | None = None,
        tracker: TrackerConfig | None = None,
        score_threshold: float | None = None,
        overlap_threshold: float | None = None,
        prompt_threshold: float | None = None,
        max_prompts: int = MAX_PROMPTS,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Arguments:
          bundle: a bundle directory, a shipped bundle's name (e.g. "edge-xs-synthetic"), a
            loaded ``Bundle``, or None for the shipped default bundle.
          backend: "auto" (a GPU backend by rank when one is usable, else the CPU backends
            timed on this bundle in pipeline order, fastest per graph), "fastest" (time every
            usable backend), a backend name (``runtime.registry.BACKENDS``), or a mapping
            graph -> backend name.
          device: the backends' device (None = each backend's default).
          color_order: "RGB" or "BGR" (OpenCV) for frames passed to the methods.
          input_size: network long side in pixels (default: the bundle's), a multiple of the
            bundle's pad divisor.
          tracker: tracking settings for ``track`` / ``stream``.
          score_threshold, overlap_threshold: panoptic fusion thresholds in [0, 1];
            prompt_threshold: prompt mask logit threshold (default: the bundle's values).
          max_prompts: most prompts one ``prompt`` call accepts.
          backend_options: options for the backends (e.g. {"intra_op_threads": 2}).
        Raises:
          ConfigError: an invalid setting (named). BundleError and subclasses: the bundle
          cannot be used. BackendUnavailable: the backend cannot run here.
        """
        if color_order not in ("RGB", "BGR"):
            raise ConfigError(f"color_order must be 'RGB' or 'BGR', got {color_order!r}")
        if tracker is not None and not isinstance(tracker, TrackerConfig):
            raise ConfigError(f"tracker must be a TrackerConfig, got {type(tracker).__name__}")
        if isinstance(max_prompts, bool) or not isinstance(max_prompts, int) or max_prompts < 1:
            raise ConfigError(f"max_prompts must be a positive int, got {max_prompts!r}")
        if backend_options is not None and not isinstance(backend_options, Mapping):
            raise ConfigError(
                f"backend_options must be a mapping, got {type(backend_options).__name__}"
            )
        if isinstance(bundle, Bundle):
            self.bundle = bundle
        elif bundle is None or isinstance(bundle, (str, Path)):
            self.bundle = load_bundle(bundle)
        else:
            raise ConfigError(
                f"bundle must be a directory, a shipped bundle's name, a Bundle or None, got {type(bundle).__name__}"
            )
        missing = [g for g in GRAPH_NAMES if g not in self.bundle.graphs]
        if missing:
            raise BundleError(
                f"bundle {self.bundle.name!r} lacks the graphs {missing} a Segmenter runs"
            )
        enc_files = sorted(self.bundle.graphs["encoder"].files.values())
        self._encoder_id = f"bundle {self.bundle.name!r}, encoder " + ", ".join(
            f"{f} sha256 {self.bundle.files.get(f, '?')[:12]}" for f in enc_files
        )
        pad = self.bundle.input.pad_divisor
        if input_size is None:
            input_size = self.bundle.input.long_side
        if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)):
            raise ConfigError(
                f"input_size must be an int, got {type(input_size).__name__} {input_size!r}"
            )
        if not 0 < input_size <= MAX_INPUT_SIZE or input_size % pad:
            raise ConfigError(
                f"input_size must be a positive multiple of {pad} up to {MAX_INPUT_SIZE}, got {input_size}"
            )
        defaults = self.bundle.postprocess
        self.postprocess = PostprocessDefaults(
            score_threshold=_threshold(
                "score_threshold",
                defaults.score_threshold if score_threshold is None else score_threshold,
                unit=True,
            ),
            overlap_threshold=_threshold(
                "overlap_threshold",
                defaults.overlap_threshold if overlap_threshold is None else overlap_threshold,
                unit=True,
            ),
            prompt_threshold=_threshold(
                "prompt_threshold",
                defaults.prompt_threshold if prompt_threshold is None else prompt_threshold,
                unit=False,
            ),
        )
        self.input_size = int(input_size)
        self.color_order = color_order
        self.max_prompts = max_prompts
        self.class_names: tuple[str, ...] = self.bundle.class_names
        self.is_thing = np.array(self.bundle.is_thing, dtype=bool)
        self.tracker_config = tracker or TrackerConfig()
        self.tracker = OnlineTracker(self.tracker_config)
        self._track_lock = threading.Lock()
        self._last: ImageEmbedding | None = None
        self.graphs, self.backend_timings = self._create_backends(
            backend, device, dict(backend_options or {})
        )
        used = [self.graphs[g].name for g in GRAPH_NAMES]
        #: one name, or "encoder=..., panoptic_decoder=..., prompt_decoder=..." when they differ
        self.backend_name = (
            used[0]
            if len(set(used)) == 1
            else ", ".join(f"{g}={n}" for g, n in zip(GRAPH_NAMES, used))
        )
        enc, pan, prm = (self.graphs[g].info for g in GRAPH_NAMES)
        self._io = {
            "image": enc.name_of("image"),
            "feats": enc.name_of("feats"),
            "pan_feats": pan.name_of("feats"),
            "cls_logits": pan.name_of("cls_logits"),
            "pan_masks": pan.name_of("mask_logits"),
            "query_embed": pan.name_of("query_embed"),
            "prm_feats": prm.name_of("feats"),
            "boxes": prm.name_of("boxes"),
            "prm_masks": prm.name_of("mask_logits"),
            "iou": prm.name_of("iou"),
        }
        self._check_feature_grid()
        log.info("Segmenter: bundle %s on backend %s", self.bundle.name, self.backend_name)

    def _check_feature_grid(self) -> None:
        """Run the encoder once on a small blank frame and check its output against the
        manifest (feature width, ``feat_stride``): a wrong stride would otherwise give
        silently misplaced masks. Also the first (allocating) run of the encoder.

        Raises:
          ManifestError: the encoder's features do not match the manifest."""
        pad = self.bundle.input.pad_divisor
        side = pad * max(1, -(-64 // pad))
        enc = self.graphs["encoder"]
        image = np.zeros((1, side, side, 3), np.uint8)
        feats = enc.run({self._io["image"]: image})[self._io["feats"]]
        stride = self.bundle.feat_stride
        spec = next(t for t in enc.info.outputs if t.name == self._io["feats"])
        width = spec.shape[1] if isinstance(spec.shape[1], int) else feats.shape[1]
        want = (1, width, side // stride, side // stride)
        if feats.shape != want:
            self.close()
            raise ManifestError(
                f"bundle {self.bundle.name!r}: the encoder maps a {side} x {side} frame to "
                f"features {feats.shape}, the manifest implies {want} (feat_stride {stride})",
                hint="re-export the bundle; a manifest must not be edited by hand",
            )

    def _create_backends(
        self, backend: Any, device: str | None, options: dict[str, Any]
    ) -> tuple[dict[str, Backend], dict[str, dict[str, float]]]:
        if isinstance(backend, Mapping):
            if set(backend) != set(GRAPH_NAMES):
                raise ConfigError(
                    f"a backend mapping needs exactly the graphs {list(GRAPH_NAMES)}, got {sorted(backend)}"
                )
            names = {g: canonical_name(backend[g]) for g in GRAPH_NAMES}
        else:
            names = dict.fromkeys(GRAPH_NAMES, canonical_name(backend))
        policies = {n for n in names.values() if n in SELECTION_POLICIES}
        if policies and len(set(names.values())) > 1:
            raise ConfigError("a backend mapping takes backend names, not 'auto' / 'fastest'")
        if policies:
            from .selection import select_backends

            sel = select_backends(
                self.bundle, GRAPH_NAMES, policy=policies.pop(), device=device, options=options
            )
            return sel.backends, sel.timings
        return {
            g: create_backend(self.bundle, g, names[g], device=device, **options)
            for g in GRAPH_NAMES
        }, {}

    # ------------------------------------------------------------------ stages
    def prepare(self, frame: np.ndarray, *, color_order: str | None = None) -> PreparedFrame:
        """Letterbox a frame to the network input (C++ core: resize + pad + RGB order).

        Arguments:
          frame: H x W x 3 uint8 in ``color_order`` (default: the Segmenter's). Accepted as
            they are, because nothing is lost: any strides (non-contiguous views are copied
            once), read-only arrays, and grey frames (H x W or H x W x 1 uint8, replicated to
            3 channels). 1 <= H, W and H * W <= ``MAX_FRAME_PIXELS`` (the result maps are at
            the frame's size).
        Raises:
          InputError: anything else: not a numpy array, 4 channels (drop alpha:
            ``frame[..., :3]``), another dtype (16-bit, float, bool: scale to uint8 first, the
            SDK does not guess a range), a batch (4 dimensions), an empty or oversized frame.
          The table of cases is docs/bad_input.md.
        """
        t0 = time.perf_counter()
        frame = _as_frame(frame)
        order = color_order or self.color_order
        image, scale, valid_hw = ops.letterbox(
            np.ascontiguousarray(frame),
            self.input_size,
            self.bundle.input.pad_divisor,
            self.bundle.input.pad_value,
            order != self.bundle.input.color_order,
        )
        return PreparedFrame(image[None], scale, tuple(valid_hw), frame.shape[:2], _ms(t0))

    def _encode(self, prepared: PreparedFrame) -> np.ndarray:
        return self.graphs["encoder"].run({self._io["image"]: prepared.image})[self._io["feats"]]

    def _valid_cells(self, prepared: PreparedFrame) -> tuple[float, float]:
        s = self.bundle.feat_stride
        return prepared.valid_hw[0] / s, prepared.valid_hw[1] / s

    def _panoptic(self, prepared: PreparedFrame) -> PanopticResult:
        io = self._io
        timings = {"prepare": prepared.prepare_ms}
        t0 = time.perf_counter()
        feats = self._encode(prepared)
        timings["encoder"] = _ms(t0)
        t0 = time.perf_counter()
        out = self.graphs["panoptic_decoder"].run({io["pan_feats"]: feats})
        timings["decoder"] = _ms(t0)
        t0 = time.perf_counter()
        label_map, segments = _postprocess(
            ops.panoptic_fuse,
            [
                (out[io["cls_logits"]][0], "panoptic_decoder cls_logits"),
                (out[io["pan_masks"]][0], "panoptic_decoder mask_logits"),
            ],
            self._valid_cells(prepared),
            prepared.frame_hw,
            self.is_thing,
            self.postprocess.score_threshold,
            self.postprocess.overlap_threshold,
        )
        embed = out[io["query_embed"]][0][segments["query"]]
        timings["postprocess"] = _ms(t0)
        return PanopticResult(label_map, segments, self.class_names, embed, timings)

    # ------------------------------------------------------------------ public API
    def panoptic(self, frame: np.ndarray) -> PanopticResult:
        """Panoptic segmentation of one frame at the frame's size (MaskFormer fusion of the
        queries, RAP-SAM's panoptic inference).

        Arguments:
          frame: H x W x 3 uint8 in ``color_order``.
        Returns:
          ``PanopticResult``: ``panoptic_map`` H x W int32, ``segments`` K records.
        Raises:
          InputError: a bad frame.
        """
        return self._panoptic(self.prepare(frame))

    def set_image(self, frame: np.ndarray) -> ImageEmbedding:
        """Run the encoder once for ``prompt`` calls on this frame.

        Arguments:
          frame: H x W x 3 uint8 in ``color_order``.
        Returns:
          the frame's ``ImageEmbedding``; pass it to ``prompt`` (safe across threads). It
          also becomes the embedding ``prompt`` uses when given none (one thread only).
        Raises:
          InputError: a bad frame.
        """
        prepared = self.prepare(frame)
        t0 = time.perf_counter()
        feats = self._encode(prepared)
        feats.flags.writeable = False
        emb = ImageEmbedding(
            prepared,
            feats,
            {"prepare": prepared.prepare_ms, "encoder": _ms(t0)},
            encoder=self._encoder_id,
        )
        self._last = emb
        return emb

    def prompt(
        self,
        embedding: ImageEmbedding | None = None,
        *,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
    ) -> PromptResult:
        """One mask per prompt (RAP-SAM's prompt branch: a point is a small box).

        Arguments:
          embedding: what ``set_image`` returned (default: the image set last).
          points: P1 x 2 (x, y) frame pixels, finite, in the frame's closed extent
            0 <= x <= W, 0 <= y <= H.
          boxes: P2 x 4 (x0, y0, x1, y1) frame pixels, finite, x1 > x0, y1 > y0, with a
            positive overlap with the frame (x0 < W, x1 > 0, y0 < H, y1 > 0; clipped to it).
          One rule for both: the prompt's area (a point is fed as a box of
          2 x POINT_BOX_HALF network pixels around it) must meet the frame's; anything
          entirely outside is refused rather than answered with a guessed mask. At most
          ``max_prompts`` (default 256) per call. Cases: docs/bad_input.md.
        Returns:
          ``PromptResult``: ``masks`` (P1 + P2) x H x W bool (points first), ``iou`` and
          ``stability`` (P1 + P2) float32.
        Raises:
          InputError: no embedding yet, an embedding of another encoder, no prompt,
            malformed, outside the frame, or more
          than ``max_prompts`` prompts.
        """
        if embedding is None:
            embedding = self._last
            if embedding is None:
                raise InputError("call set_image(frame) before prompt(), or pass its result")
        elif not isinstance(embedding, ImageEmbedding):
            raise InputError(
                f"prompt()'s first argument is the ImageEmbedding set_image returned, got "
                f"{type(embedding).__name__}; pass prompts as points=... / boxes=..."
            )
        if embedding.encoder != self._encoder_id:
            raise InputError(
                f"this embedding was made by {embedding.encoder or 'an unknown encoder'}; this "
                f"Segmenter runs {self._encoder_id}: pass a frame to its own set_image"
            )
        prepared = embedding.prepared
        prompt_boxes = self._prompt_boxes(points, boxes, prepared)
        io = self._io
        t0 = time.perf_counter()
        out = self.graphs["prompt_decoder"].run(
            {io["prm_feats"]: embedding.feats, io["boxes"]: prompt_boxes}
        )
        timings = {"decoder": _ms(t0)}
        t0 = time.perf_counter()
        masks, stability = _postprocess(
            ops.prompt_masks,
            [(out[io["prm_masks"]][0], "prompt_decoder mask_logits")],
            self._valid_cells(prepared),
            prepared.frame_hw,
            self.postprocess.prompt_threshold,
        )
        timings["postprocess"] = _ms(t0)
        return PromptResult(
            masks, np.asarray(out[io["iou"]][0], dtype=np.float32), stability, timings
        )

    def _prompt_boxes(self, points: Any, boxes: Any, prepared: PreparedFrame) -> np.ndarray:
        h, w = prepared.frame_hw
        parts = []
        for name, value, width in (("points", points, 2), ("boxes", boxes, 4)):
            if value is None:
                continue
            arr = _as_coords(name, value, width)
            if arr.size == 0 and (arr.ndim == 1 or arr.shape == (0, width)):
                continue
            if arr.ndim != 2 or arr.shape[1] != width:
                raise InputError(f"{name} must be P x {width} numbers, got shape {arr.shape}")
            bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
            if bad.size:
                raise InputError(
                    f"{name} must be finite numbers: {name}[{bad[0]}] = {arr[bad[0]].tolist()} "
                    f"holds NaN or inf ({bad.size} of {len(arr)} rows do)"
                )
            parts.append((name, arr))
        if not parts:
            raise InputError("prompt() needs at least one point or box")
        total = sum(len(a) for _, a in parts)
        if total > self.max_prompts:
            raise InputError(f"{total} prompts in one call; at most max_prompts={self.max_prompts}")
        out = []
        for name, arr in parts:
            if name == "points":
                outside = np.flatnonzero((arr < 0).any(1) | (arr[:, 0] > w) | (arr[:, 1] > h))
                if outside.size:
                    i = outside[0]
                    raise InputError(
                        f"points must lie inside the {w} x {h} frame (x in [0, {w}], y in "
                        f"[0, {h}]): points[{i}] = {arr[i].tolist()} does not "
                        f"({outside.size} of {len(arr)} points outside)"
                    )
                centre = arr * prepared.scale
                out.append(np.concatenate([centre - POINT_BOX_HALF, centre + POINT_BOX_HALF], 1))
            else:
                if (arr[:, 2] <= arr[:, 0]).any() or (arr[:, 3] <= arr[:, 1]).any():
                    raise InputError("boxes need x1 > x0 and y1 > y0")
                if (
                    (arr[:, 2] <= 0).any()
                    or (arr[:, 3] <= 0).any()
                    or (arr[:, 0] >= w).any()
                    or (arr[:, 1] >= h).any()
                ):
                    raise InputError(f"boxes must overlap the {w} x {h} frame")
                clipped = np.clip(arr, 0, [w, h, w, h])
                out.append(clipped * prepared.scale)
        return np.ascontiguousarray(np.concatenate(out)[None], dtype=np.float32)

    def new_tracker(self) -> OnlineTracker:
        """A fresh tracker with this Segmenter's settings (one per video / thread)."""
        return OnlineTracker(self.tracker_config)

    def track(self, frame: np.ndarray, *, tracker: OnlineTracker | None = None) -> TrackResult:
        """Online video instance segmentation: thing segments get stable track ids
        (RAP-SAM's query-embedding association, ``runtime.tracker``).

        Arguments:
          frame: the next H x W x 3 uint8 frame of a video.
          tracker: the video's tracker (default: the Segmenter's own, under a lock).
        Raises:
          InputError: a bad frame.
        """
        return self._track(self.prepare(frame), tracker)

    def _track(self, prepared: PreparedFrame, tracker: OnlineTracker | None) -> TrackResult:
        pan = self._panoptic(prepared)
        if tracker is None:
            with self._track_lock:
                return self._associate(pan, self.tracker)
        return self._associate(pan, tracker)

    def _associate(self, pan: PanopticResult, tracker: OnlineTracker) -> TrackResult:
        t0 = time.perf_counter()
        things = np.flatnonzero(pan.segments["is_thing"])
        segs = pan.segments[things]
        dets = [
            Detection(
                embedding=pan.query_embed[i], class_id=int(s["class"]), score=float(s["score"])
            )
            for i, s in zip(things, segs)
        ]
        ids = np.array(tracker.update(dets), dtype=np.int32)
        lut = np.zeros(int(pan.segments["id"].max(initial=0)) + 1, dtype=np.int32)
        lut[segs["id"]] = ids
        track_map = lut[pan.panoptic_map]
        keep = ids > 0
        timings = {**pan.timings, "tracking": _ms(t0)}
        return TrackResult(
            tracker.frame_index,
            track_map,
            ids[keep],
            segs["class"][keep].astype(np.int32),
            segs["score"][keep].astype(np.float32),
            pan,
            timings,
        )

    def reset_tracks(self) -> None:
        """Forget the default tracker's tracks (start of a new video)."""
        with self._track_lock:
            self.tracker.reset()

    def stream(
        self,
        source: int | str | Path | Iterable[np.ndarray],
        *,
        task: str = "track",
        max_frames: int | None = None,
        tracker: OnlineTracker | None = None,
    ) -> Iterator[tuple[np.ndarray, TrackResult | PanopticResult]]:
        """Yield (frame, result) for a camera index, a video file or an iterable of frames,
        capturing and letterboxing frame t+1 in a thread while frame t is inferred (queue of
        2: memory stays flat on endless streams).

        Each result's ``timings`` also holds ``read`` (ms to capture / decode the frame, in
        the capture thread, overlapping the previous frame's inference).

        Arguments:
          source: camera index, video path, or an iterable of H x W x 3 uint8 frames.
            Camera / file frames are BGR (OpenCV); frames from an iterable are in
            ``color_order``.
          task: "track" (TrackResult) or "panoptic" (PanopticResult).
          max_frames: stop after this many frames (no more are read).
          tracker: the stream's tracker (default: a new one, so streams do not share state).
        Raises:
          ConfigError: bad task / max_frames. SourceError: the source cannot be opened.
        """
        if task not in ("track", "panoptic"):
            raise ConfigError(f"task must be 'track' or 'panoptic', got {task!r}")
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 0
        ):
            raise ConfigError(f"max_frames must be a non-negative int or None, got {max_frames!r}")
        frames, order = open_source(source, self.color_order)
        if max_frames is not None:
            frames = itertools.islice(frames, max_frames)
        stream_tracker = tracker if tracker is not None else self.new_tracker()
        #: the tracker of the stream running last (the demo reports its track count)
        self.last_stream_tracker = stream_tracker
        q: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        done = object()

        def produce() -> None:
            try:
                it = iter(frames)
                while not stop.is_set():
                    t0 = time.perf_counter()
                    try:
                        frame = next(it)
                    except StopIteration:
                        break
                    read_ms = _ms(t0)
                    q.put((frame, self.prepare(frame, color_order=order), read_ms))
            except BaseException as exc:  # surfaced in the consumer
                q.put(exc)
            finally:
                q.put(done)

        worker = threading.Thread(target=produce, name="rapsam-capture", daemon=True)
        worker.start()
        try:
            while (item := q.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                frame, prepared, read_ms = item
                if task == "track":
                    result = self._track(prepared, stream_tracker)
                else:
                    result = self._panoptic(prepared)
                result.timings = {"read": read_ms, **result.timings}
                yield frame, result
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)

    # ------------------------------------------------------------------ life cycle
    def settle(self, timeout: float | None = None) -> bool:
        """Wait for the backends' background work: OpenVINO compiles a static copy of a graph
        for an input shape it has seen repeatedly (``static_shapes="auto"``, the CPU
        default), in a thread, and uses it from then on. Timing code calls this after its
        warm-up so that it measures the steady state.

        Arguments:
          timeout: seconds to wait per graph (None: until done).
        Returns:
          True when no background work is left.
        """
        return all([backend.settle(timeout) for backend in self.graphs.values()])

    def close(self) -> None:
        """Release the backends (later calls raise ``BackendError``)."""
        for backend in self.graphs.values():
            backend.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Segmenter(bundle={self.bundle.name!r}, backend={self.backend_name!r})"


#: largest frame accepted (pixels): the label map, track map and prompt masks come back at
#: the frame's size (8192 x 8192 = 67 M pixels; a 268 MB int32 map)
MAX_FRAME_PIXELS = 8192 * 8192


def _as_coords(name: str, value: Any, width: int) -> np.ndarray:
    """Prompt coordinates as float64: only real numbers (numpy integer or float dtypes, Python
    ints and floats). Strings (even "5"), bools, complex numbers, objects and ints beyond
    float range raise, so that no input is reinterpreted silently.

    Raises:
      InputError: anything else.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise InputError(f"{name} must be real numbers, P x {width}: {e}") from e
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"{name} must be real numbers (int or float), P x {width}; got dtype {arr.dtype}"
        )
    return arr.astype(np.float64)


def _as_frame(frame: Any) -> np.ndarray:
    """The frame rule of ``Segmenter.prepare`` (see its docstring): H x W x 3 uint8 out."""
    if not isinstance(frame, np.ndarray):
        raise InputError(
            f"frame must be a numpy array (H x W x 3 uint8), got {type(frame).__name__}"
        )
    if frame.dtype != np.uint8:
        raise InputError(
            f"frame must be uint8, got {frame.dtype} (scale to 0..255 and convert first; the "
            "SDK does not guess the range of 16-bit or float images)"
        )
    if frame.ndim in (2, 3) and min(frame.shape[:2]) < 1:
        raise InputError(f"frame is empty: shape {frame.shape}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        grey = frame.reshape(frame.shape[:2])
        frame = np.repeat(grey[:, :, None], 3, axis=2)  # grey: lossless to 3 channels
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = " (RGBA: pass frame[..., :3])" if frame.ndim == 3 and frame.shape[2] == 4 else ""
        raise InputError(f"frame must be H x W x 3 (or grey H x W), got shape {frame.shape}{hint}")
    h, w = frame.shape[:2]
    if h * w > MAX_FRAME_PIXELS:
        raise InputError(
            f"frame of {h} x {w} = {h * w} pixels is larger than MAX_FRAME_PIXELS "
            f"({MAX_FRAME_PIXELS}); resize it first"
        )
    return frame


def open_source(source: Any, color_order: str) -> tuple[Iterable[np.ndarray], str]:
    """(frames, their colour order) for a camera index, a video path or an iterable of
    frames. Camera / file frames are BGR H x W x 3 uint8, read lazily and released when the
    iterator ends or is closed; an iterable passes through in ``color_order``.

    Raises:
      SourceError: a missing file, a camera or file OpenCV cannot open, or another type.
    """
    if isinstance(source, bool):
        raise SourceError(f"source must be a camera index, a video path or frames, got {source!r}")
    if isinstance(source, (int, str, Path)):
        import cv2

        if (
            isinstance(source, (str, Path))
            and not str(source).isdigit()
            and not Path(source).exists()
        ):
            raise SourceError(f"video source {str(source)!r} does not exist")
        cap = cv2.VideoCapture(int(source) if isinstance(source, int) else str(source))
        if not cap.isOpened():
            raise SourceError(f"cannot open video source {source!r}")

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
    if not isinstance(source, Iterable):
        raise SourceError(
            f"source must be a camera index, a video path or an iterable of frames, got {type(source).__name__}"
        )
    return source, color_order
