"""``Segmenter``: the user API of the runtime. Loads a bundle, runs its three graphs on a
backend and post-processes with the C++ core. Never imports torch.

    seg = Segmenter()                                   # the shipped default bundle
    pan = seg.panoptic(frame)                           # label map + segments, frame size
    emb = seg.set_image(frame)                          # encoder once ...
    res = seg.prompt(emb, points=[(x, y)], boxes=[(x0, y0, x1, y1)])   # ... cheap decodes
    for frame, tracked in seg.stream(0):                # camera 0: tracked instances
        ...
    for frame, res in seg.stream(0, task="prompt", prompts={"boxes": [box]}):  # click-to-track
        ...                                             # runtime.streaming gives the details

Frames are H x W x 3 uint8 in ``color_order`` ("RGB" by default; "BGR" for OpenCV frames);
``stream`` reads with OpenCV and converts by itself. Points and boxes are in frame pixels.

Threads: one Segmenter may be shared by several threads. ``panoptic`` and ``prompt`` (with
the handle ``set_image`` returned) keep no per-call state in the Segmenter; the backends are
safe to call concurrently (ONNX Runtime and OpenVINO run calls in parallel, TensorRT and
torch one at a time). ``track`` state lives in an ``OnlineTracker``: each ``stream`` (each
source of ``stream_many``) has its own; ``track(frame)`` without ``tracker=`` uses the
Segmenter's default one under a lock (give each video its own from ``new_tracker()``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import ops
from ..bundle import Bundle
from ..contract.graphs import ENCODER, PROMPT_DECODER
from ..contract.shared import STABILITY_OFFSET
from ..errors import BackendError, ManifestError
from . import multi_stream, streaming
from .base import Backend
from .batched import encode_many, panoptic_many
from .capture import SourceOptions, VideoSource
from .inputs import as_frame, check_embedding, encoder_id, prompt_decoder_boxes
from .options import MAX_PROMPTS, SegmenterOptions, load_segmenter_bundle
from .outputs import checked_outputs
from .prompt_tracker import PromptTracker, PromptTrackerConfig
from .results import ImageEmbedding, PanopticResult, PreparedFrame, PromptResult, TrackResult
from .selection import backend_name, create_backends
from .sources import open_source
from .streaming import associate
from .tracker import OnlineTracker, TrackerConfig

__all__ = [
    "ImageEmbedding",
    "PreparedFrame",
    "Segmenter",
    "open_source",
]

log = logging.getLogger(__name__)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class Segmenter:
    """Panoptic, interactive and video segmentation with one exported model."""

    #: the video tracker of the stream that ran last (the demo reports its track count)
    last_stream_tracker: OnlineTracker

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
          bundle: a bundle directory, a shipped bundle's name (``assets.shipped_bundles()``), a
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
          The settings and their checks are ``runtime.options.SegmenterOptions``.
        Raises:
          ConfigError: an invalid setting (named). BundleError and subclasses: the bundle
          cannot be used. BackendUnavailable: the backend cannot run here.
        """
        options = SegmenterOptions(
            backend=backend,
            device=device,
            color_order=color_order,
            input_size=input_size,
            tracker=TrackerConfig() if tracker is None else tracker,
            score_threshold=score_threshold,
            overlap_threshold=overlap_threshold,
            prompt_threshold=prompt_threshold,
            max_prompts=max_prompts,
            backend_options={} if backend_options is None else backend_options,
        )
        self.bundle = load_segmenter_bundle(bundle)
        self.options = options = options.resolve(self.bundle)
        self.postprocess = options.postprocess
        self.input_size = int(options.input_size or 0)
        self.color_order = options.color_order
        self.max_prompts = options.max_prompts
        self.class_names: tuple[str, ...] = self.bundle.class_names
        self.is_thing = np.array(self.bundle.is_thing, dtype=bool)
        self.tracker_config = options.tracker
        self.tracker = OnlineTracker(self.tracker_config)
        self._track_lock = threading.Lock()
        self._last: ImageEmbedding | None = None
        self._encoder_id = encoder_id(self.bundle)
        selection = create_backends(
            self.bundle, options.backend, options.device, options.backend_options
        )
        self.graphs: dict[str, Backend] = selection.backends
        self.backend_timings = selection.timings
        #: one name, or "encoder=..., panoptic_decoder=..., prompt_decoder=..." when they differ
        self.backend_name = backend_name(self.graphs)
        self._check_feature_grid()
        log.info("Segmenter: bundle %s on backend %s", self.bundle.name, self.backend_name)

    def _check_feature_grid(self) -> None:
        """Run the encoder once on a small blank frame and check its output against the
        manifest (feature width, ``feat_stride``): a wrong stride would otherwise give
        silently misplaced masks. Also the first (allocating) run of the encoder.

        Raises:
          ManifestError: the encoder's features do not match the manifest. BackendError:
            they hold NaN or infinity (the Segmenter is closed first)."""
        pad = self.bundle.input.pad_divisor
        side = pad * max(1, -(-64 // pad))
        enc = self.graphs[ENCODER]
        image = np.zeros((1, side, side, 3), np.uint8)
        try:  # a graph that gives NaN on a blank frame is refused here, at load
            feats = self._run(ENCODER, {"image": image}, check=True)["feats"]
        except BackendError:
            self.close()
            raise
        stride = self.bundle.feat_stride
        spec = next(t for t in enc.info.outputs if t.role == "feats")
        width = spec.shape[1] if isinstance(spec.shape[1], int) else feats.shape[1]
        want = (1, width, side // stride, side // stride)
        self._feat_dim = int(feats.shape[1])  # every later run must give this D
        if feats.shape != want:
            self.close()
            raise ManifestError(
                f"bundle {self.bundle.name!r}: the encoder maps a {side} x {side} frame to "
                f"features {feats.shape}, the manifest implies {want} (feat_stride {stride})",
                hint="re-export the bundle; a manifest must not be edited by hand",
            )

    # ------------------------------------------------------------------ stages
    def prepare(self, frame: np.ndarray, *, color_order: str | None = None) -> PreparedFrame:
        """Letterbox a frame to the network input (C++ core: resize + pad + RGB order).

        Arguments:
          frame: H x W x 3 uint8 in ``color_order`` (default: the Segmenter's). Accepted as
            they are, because nothing is lost: any strides (non-contiguous views are copied
            once), read-only arrays, and grey frames (H x W or H x W x 1 uint8, replicated to
            3 channels). 1 <= H, W and H * W <= ``inputs.MAX_FRAME_PIXELS`` (the result
            maps are at the frame's size). This is the one check of the frame
            (``inputs.as_frame``); the graphs run unchecked on what it makes.
        Raises:
          InputError: anything else: not a numpy array, 4 channels (drop alpha:
            ``frame[..., :3]``), another dtype (16-bit, float, bool: scale to uint8 first, the
            SDK does not guess a range), a batch (4 dimensions), an empty or oversized frame.
          The table of cases is docs/bad_input.md.
        """
        t0 = time.perf_counter()
        frame = as_frame(frame)  # the frame's one check: the kernel then runs unchecked
        order = color_order or self.color_order
        image, scale, valid_hw = ops.kernel("letterbox")(
            frame,
            (self.input_size, self.input_size),
            int(self.bundle.input.pad_divisor),
            int(self.bundle.input.pad_value),
            order != self.bundle.input.color_order,
        )
        valid = (int(valid_hw[0]), int(valid_hw[1]))
        frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
        return PreparedFrame(image[None], scale, valid, frame_hw, _ms(t0))

    def _run(
        self,
        graph: str,
        feeds: dict[str, np.ndarray],
        *,
        check: bool = False,
        dims: dict[str, int] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``graph`` (roles in, roles out) and check every output it gives before
        anything uses it (``outputs.checked_outputs``: shapes against ``dims``, logits
        saturated, the rest finite).

        Raises:
          BackendError: an output has another shape, or holds NaN (or, not a logit,
            infinity), naming the graph and the tensor."""
        out = self.graphs[graph].run_roles(feeds, check=check)
        return checked_outputs(graph, out, dims)

    def _feat_dims(self, feats: np.ndarray) -> dict[str, int]:
        """The sizes a decoder's outputs must have on features ``feats`` (B x D x h x w)."""
        return {"B": 1, "D": self._feat_dim, "h": feats.shape[2], "w": feats.shape[3]}

    def _valid_cells(self, prepared: PreparedFrame) -> tuple[float, float]:
        s = self.bundle.feat_stride
        return prepared.valid_hw[0] / s, prepared.valid_hw[1] / s

    def _embed(self, prepared: PreparedFrame) -> ImageEmbedding:
        """The encoder's pass over a frame ``prepare`` validated: its ``ImageEmbedding``
        (read-only features; timings "prepare" and "encoder"; ``batched.encode_many``)."""
        return encode_many(self, [prepared])[0]

    def _panoptic(self, emb: ImageEmbedding) -> PanopticResult:
        """panoptic decoder -> fusion on a frame's embedding (``batched.panoptic_many``)."""
        return panoptic_many(self, [emb])[0]

    # ------------------------------------------------------------------ public API
    def panoptic(self, frame: np.ndarray) -> PanopticResult:
        """Panoptic segmentation of one frame at the frame's size (MaskFormer fusion of the
        queries, RAP-SAM's panoptic inference).

        Arguments:
          frame: H x W x 3 uint8 in ``color_order``.
        Returns:
          ``PanopticResult``: ``panoptic_map`` H x W int32, ``segments`` K records.
        Raises:
          InputError: a bad frame. BackendError: a graph output holds NaN (or, not a
            logit, infinity), naming the graph and tensor (``runtime.outputs``).
        """
        return self._panoptic(self._embed(self.prepare(frame)))

    def set_image(self, frame: np.ndarray) -> ImageEmbedding:
        """Run the encoder once for ``prompt`` calls on this frame.

        Arguments:
          frame: H x W x 3 uint8 in ``color_order``.
        Returns:
          the frame's ``ImageEmbedding``; pass it to ``prompt`` (safe across threads). It
          also becomes the embedding ``prompt`` uses when given none (one thread only).
        Raises:
          InputError: a bad frame. BackendError: the encoder's ``feats`` hold NaN or
            infinity.
        """
        emb = self._embed(self.prepare(frame))
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
          BackendError: the decoder's ``mask_logits`` hold NaN or its ``iou`` NaN or
            infinity (``runtime.outputs``).
        """
        embedding = check_embedding(
            embedding, self._last, self._encoder_id, self.bundle.feat_stride
        )
        prepared = embedding.prepared
        # padded to PROMPT_COUNT_BUCKET (few decoder shapes); the first n rows are the caller's
        boxes_in, n = prompt_decoder_boxes(points, boxes, prepared, self.max_prompts)
        t0 = time.perf_counter()
        # checked: the embedding comes from the caller
        dims = {**self._feat_dims(embedding.feats), "P": boxes_in.shape[1]}
        feeds = {"feats": embedding.feats, "boxes": boxes_in}
        out = self._run(PROMPT_DECODER, feeds, check=True, dims=dims)
        timings = {"decoder": _ms(t0)}
        t0 = time.perf_counter()
        masks, stability = ops.kernel("prompt_masks")(
            out["mask_logits"][0, :n],
            self._valid_cells(prepared),
            prepared.frame_hw,
            float(self.postprocess.prompt_threshold),
            STABILITY_OFFSET,
        )
        timings["postprocess"] = _ms(t0)
        return PromptResult(masks, out["iou"][0, :n].copy(), stability, timings)

    @property
    def encoder_id(self) -> str:
        """The bundle and encoder files (with digests) that make this Segmenter's
        embeddings (``ImageEmbedding.encoder``)."""
        return self._encoder_id

    def prompt_tracker(self, config: PromptTrackerConfig | None = None) -> PromptTracker:
        """A new click / box tracker on this Segmenter (its own state; ``prompt_tracker``)."""
        return PromptTracker(self, config)

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
          InputError: a bad frame. BackendError: a graph output holds NaN (or, not a
            logit, infinity); raised before the tracker is touched, so a failed frame
            leaves it as it was.
        """
        return self._track(self._embed(self.prepare(frame)), tracker)

    def _track(self, emb: ImageEmbedding, tracker: OnlineTracker | None) -> TrackResult:
        pan = self._panoptic(emb)
        t0 = time.perf_counter()
        if tracker is None:
            with self._track_lock:
                return associate(pan, self.tracker, t0)
        return associate(pan, tracker, t0)

    def reset_tracks(self) -> None:
        """Forget the default tracker's tracks (start of a new video)."""
        with self._track_lock:
            self.tracker.reset()

    def stream(
        self,
        source: int | str | Path | VideoSource | Iterable[np.ndarray],
        *,
        task: str = "track",
        max_frames: int | None = None,
        tracker: OnlineTracker | None = None,
        source_options: SourceOptions | None = None,
        prompts: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        prompt_tracker: PromptTracker | None = None,
    ) -> Iterator[tuple[np.ndarray, Any]]:
        """Yield (frame, result) for a camera index, a video file, a named pipe, a capture
        device or an iterable of frames, capturing and letterboxing frame t+1 in a thread
        while frame t is inferred (queue of 2: memory stays flat on endless streams).

        Each result's ``timings`` also holds ``read`` (ms to capture / decode the frame, in
        the capture thread, overlapping the previous frame's inference).

        No read waits forever: opening a video source and reading its first frame must
        finish within ``source_options.open_timeout`` (default 5 s), each later frame within
        ``read_timeout`` (default 5 s). A file or pipe that ends before the frames its
        container declares is an error, not the end; a camera that drops is reconnected
        within the back-off (``reconnect_delays``, ``reconnect_total``: 5 attempts, at most
        30 s by default; pass a ``capture.VideoSource`` to read its ``reconnects`` count).
        Frames from an iterable are read as they come (no timeout); their end is the end.
        Leaving the loop (break, close(), an exception, KeyboardInterrupt) returns within
        half a second whatever the capture thread is doing.

        Click-to-track (``runtime.streaming`` gives the details): with ``prompts`` or a
        ``prompt_tracker``, each frame's one encoder pass also feeds the prompt tracker.
        Tasks "track" / "panoptic" then carry its ``PromptTrackResult`` as
        ``result.prompts`` and its stages in ``timings`` ("prompt_decoder",
        "prompt_postprocess", "prompt_tracking", on the first frame "prompt_add"); task
        "prompt" yields the ``PromptTrackResult`` alone and runs no panoptic decoder. A
        frame of another size mid-stream (a camera reconnected in another mode) keeps the
        objects: their boxes are scaled to it and each is verified by its appearance.

        Arguments:
          source: camera index, video path (file, named pipe, device), a
            ``capture.VideoSource``, or an iterable of H x W x 3 uint8 frames. Camera / file
            frames are BGR (OpenCV); frames from an iterable are in ``color_order``.
          task: "track" (TrackResult), "panoptic" (PanopticResult) or "prompt"
            (PromptTrackResult; needs ``prompts`` or ``prompt_tracker``).
          max_frames: stop after this many frames (no more are read).
          tracker: the stream's video tracker, task "track" only (default: a new one, so
            streams do not share state).
          source_options: timeouts and reconnect back-off of a video source
            (``capture.SourceOptions``; default: its defaults).
          prompts: objects to track from the first frame: ``PromptTracker.add``'s keywords
            as a mapping (points, labels, boxes; frame pixels), or a list of such mappings
            (one ``add`` each, e.g. one object per click).
          prompt_tracker: a ``PromptTracker`` of this Segmenter to step (default: a new one
            when ``prompts`` are given); objects may be added to it (``add(None, ...)``: on
            the frame yielded last), refined or removed between yields, from any thread.
        Raises:
          ConfigError: bad task / max_frames / source_options / prompts (not mappings of
            points / labels / boxes), ``tracker`` with a task other than "track", task
            "prompt" with neither ``prompts`` nor ``prompt_tracker``.
          InputError: (first frame) prompts the tracker refuses: malformed, NaN / inf,
            outside the frame, empty masks, more than its ``max_objects``.
          SourceError: the source cannot be opened; its kinds ``SourceUnavailable`` (could
            not open, or not within the open timeout), ``SourceStalled`` (no frame within a
            timeout), ``SourceTruncated`` (a file ended early), ``SourceLost`` (a camera
            dropped; reconnecting failed).
        """
        yield from streaming.stream(
            self,
            source,
            task=task,
            max_frames=max_frames,
            tracker=tracker,
            source_options=source_options,
            prompts=prompts,
            prompt_tracker=prompt_tracker,
        )

    def stream_many(
        self,
        sources: Sequence[int | str | Path | VideoSource | Iterable[np.ndarray]],
        *,
        task: str = "track",
        max_frames: int | None = None,
        source_options: SourceOptions | Sequence[SourceOptions | None] | None = None,
        trackers: Sequence[OnlineTracker | None] | None = None,
        prompts: Sequence[Any] | None = None,
        batch: int | str = "auto",
        latest: bool = False,
        on_error: str = "report",
    ) -> Iterator[multi_stream.SourceFrame]:
        """``stream`` for several sources at once, each with its own capture thread and
        trackers; a ``SourceFrame`` (source, frame, result, error, dropped, batch) per frame.
        The encoder and panoptic decoder run once per step on the ready frames (``batch``:
        "auto" or the most per call); per-source lists of ``stream``'s settings; a failing
        source yields its error and the others go on. ``runtime.multi_stream``: details.
        Raises ConfigError (no, too many or repeated sources, bad settings); else as stream."""
        yield from multi_stream.stream_many(
            self,
            sources,
            task=task,
            max_frames=max_frames,
            source_options=source_options,
            trackers=trackers,
            prompts=prompts,
            batch=batch,
            latest=latest,
            on_error=on_error,
        )

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
