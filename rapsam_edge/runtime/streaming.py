"""The loop of ``Segmenter.stream`` and the video tracker's association step: one encoder
pass per frame serves the panoptic decoder (tasks "track" / "panoptic") and the prompt
tracker (prompts given, or a ``PromptTracker`` held by the caller); task "prompt" runs no
panoptic decoder at all.

Prompts: ``prompts`` is what ``PromptTracker.add`` takes, as a mapping of its keywords
(``{"points": [(x, y)], "labels": [1], "boxes": [(x0, y0, x1, y1)]}``: one object for the
clicks, one per box), or a list of such mappings, one ``add`` each (e.g. one object per
click). They are added on the first frame, which is stepped first (a held tracker's objects
move on to it), and the new objects' first masks are part of the first frame's result. A
held tracker may get objects added (``add(None, ...)``: on the frame yielded last),
refined or removed between yields, from any thread (its lock).

A held tracker (``prompt_tracker=``) is the caller's, and a stream never resets it: its
objects, ids and ``frame_index`` go on from where the last stream (or ``step``) left them,
so a stream opened again on the same camera (a reconnect, a second ``stream`` call) keeps
its objects, and ``PromptTrackResult.frame_index`` counts the tracker's frames, not the
source's. For a new video, call ``pt.reset()`` first (or make a new tracker): its objects
would otherwise be searched for in the new video's first frame (a different-size frame is
taken as the same view rescaled, below). Prompts given by ``prompts=`` alone get a new
tracker per stream.

A frame of another size mid-stream (a camera reconnected in another mode, an iterable of
frames of mixed sizes): the panoptic tracker matches query embeddings and does not mind;
the prompt tracker scales its objects' boxes to the new size (``PromptTracker.step(...,
rescale=True)``: the same view assumed) and verifies each object by its appearance as on
any frame, so an object not found turns occluded, then lost, under its own id, and one
found again is tracked again. A size that cannot be the same view (a side under
``prompt_parts.RESCALE_MIN_SIDE`` or the aspect ratio off by more than
``RESCALE_MAX_ASPECT``) ends the stream with ``InputError`` while objects are tracked.
``PromptTracker.step`` called by hand refuses any other size (``InputError``) unless
asked to rescale.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from .prompt_tracker import PromptTracker
from .results import ImageEmbedding, PanopticResult, PromptTrackResult, TrackResult
from .sources import check_stream_args, open_source, prefetch
from .tracker import Detection, OnlineTracker

if TYPE_CHECKING:
    from .capture import SourceOptions

__all__ = [
    "PROMPT_KEYS",
    "STREAM_TASKS",
    "FrameStep",
    "StreamResult",
    "associate",
    "prompt_specs",
    "stream",
]

#: what ``Segmenter.stream`` can yield per frame
STREAM_TASKS = ("track", "panoptic", "prompt")
#: the keywords of ``PromptTracker.add`` a prompt mapping may hold
PROMPT_KEYS = frozenset({"points", "labels", "boxes"})
#: the prompt tracker's own stages, as they appear in a track / panoptic result's timings
_PROMPT_STAGES = ("decoder", "postprocess", "tracking", "add")

StreamResult = TrackResult | PanopticResult | PromptTrackResult


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def associate(pan: PanopticResult, tracker: OnlineTracker, t0: float) -> TrackResult:
    """The video tracker's step on one frame's panoptic result: its thing segments' query
    embeddings matched to ``tracker``'s tracks (``t0``: when the step began)."""
    things = np.flatnonzero(pan.segments["is_thing"])
    segs = pan.segments[things]
    embed = pan.query_embed
    assert embed is not None  # Segmenter._panoptic always sets it
    dets = [
        Detection(embedding=embed[i], class_id=int(s["class"]), score=float(s["score"]))
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


def prompt_specs(prompts: Any) -> list[dict[str, Any]]:
    """``stream``'s ``prompts`` as a list of ``PromptTracker.add`` keyword mappings (their
    values are checked by ``add``, on the first frame).

    Raises:
      ConfigError: not None, a mapping or a sequence of mappings; a key other than
        points / labels / boxes; an empty list or mapping (nothing to track)."""
    if prompts is None:
        return []
    specs = [prompts] if isinstance(prompts, Mapping) else prompts
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence) or not specs:
        raise ConfigError(
            "prompts must be a mapping of PromptTracker.add's keywords (points, labels, "
            f"boxes) or a non-empty list of them, got {type(prompts).__name__} {prompts!r:.80}",
            hint='e.g. prompts={"boxes": [(x0, y0, x1, y1)]} or [{"points": [(x, y)]}, ...]',
        )
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or not spec or set(spec) - PROMPT_KEYS:
            what = sorted(map(str, set(spec) - PROMPT_KEYS)) if isinstance(spec, Mapping) else spec
            raise ConfigError(
                f"prompts[{i}] must be a non-empty mapping with keys among points, labels, "
                f"boxes; got {what!r:.80}",
                hint="the keywords of PromptTracker.add",
            )
        out.append(dict(spec))
    return out


def _check(task: Any, tracker: Any, prompt_tracker: Any, specs: list) -> None:
    if task not in STREAM_TASKS:
        raise ConfigError(f"task must be 'track', 'panoptic' or 'prompt', got {task!r}")
    if tracker is not None and task != "track":
        raise ConfigError(
            f"tracker= is the video tracker of task 'track'; task {task!r} does not use it",
            hint="pass prompt_tracker= for the prompt tracker",
        )
    if prompt_tracker is not None and not isinstance(prompt_tracker, PromptTracker):
        raise ConfigError(
            f"prompt_tracker must be a PromptTracker, got {type(prompt_tracker).__name__}",
            hint="make one with Segmenter.prompt_tracker()",
        )
    if task == "prompt" and not specs and prompt_tracker is None:
        raise ConfigError(
            "task 'prompt' tracks prompted objects: give prompts=... or a prompt_tracker= "
            "to add objects to while the stream runs",
            hint='e.g. stream(src, task="prompt", prompts={"boxes": [(x0, y0, x1, y1)]})',
        )


def _first_frame(pt: PromptTracker, emb: ImageEmbedding, specs: list) -> PromptTrackResult:
    """The first frame: the tracker's objects stepped onto it, then the prompts added on it
    (all of them or none: a failing entry removes the objects of those before it)."""
    res = pt.step(emb, rescale=True)
    if not specs:
        return res
    t0 = time.perf_counter()
    added: list = []
    try:
        for spec in specs:
            added += pt.add_tracks(None, **spec)
    except BaseException:
        for rec in added:
            pt.remove(rec.id)
        raise
    res.objects += added
    res.timings["add"] = _ms(t0)
    return res


class FrameStep:
    """``stream``'s work on one frame, for callers that receive frames themselves (a ROS
    callback, a web handler): one encoder pass serves the task's result and the prompt
    tracker, exactly as in ``stream`` (which is this over a source).

        step = FrameStep(seg, task="track", prompt_tracker=seg.prompt_tracker())
        result = step(frame)            # TrackResult; result.prompts: PromptTrackResult
        step.prompt_tracker.add(None, boxes=[...])   # on the frame stepped last

    Arguments:
      seg: the Segmenter.
      task, tracker, prompts, prompt_tracker: as ``Segmenter.stream``'s (a prompt tracker
        is made when ``prompts`` are given without one).
    Raises (at construction):
      ConfigError: as ``stream``.
    """

    def __init__(
        self,
        seg: Any,
        *,
        task: str = "track",
        tracker: OnlineTracker | None = None,
        prompts: Any = None,
        prompt_tracker: PromptTracker | None = None,
    ) -> None:
        self.specs = prompt_specs(prompts)
        _check(task, tracker, prompt_tracker, self.specs)
        self.seg = seg
        self.task = task
        self.tracker = tracker if tracker is not None else seg.new_tracker()
        self.prompt_tracker = prompt_tracker
        if prompt_tracker is None and self.specs:
            self.prompt_tracker = seg.prompt_tracker()
        self._first = True

    def __call__(self, frame: np.ndarray | None = None, *, prepared: Any = None) -> StreamResult:
        """One frame (H x W x 3 uint8 in the Segmenter's ``color_order``), or a frame
        ``seg.prepare`` made already; -> TrackResult / PanopticResult (``.prompts`` set when
        there is a prompt tracker) or, task "prompt", a PromptTrackResult.

        Raises:
          InputError: a bad frame, prompts the tracker refuses. BackendError: a graph's
            output."""
        if prepared is None:
            prepared = self.seg.prepare(frame)
        emb = self.seg._embed(prepared)  # the frame's one encoder pass
        result: StreamResult | None = None
        if self.task == "track":
            pan = self.seg._panoptic(emb)
            result = associate(pan, self.tracker, time.perf_counter())
        elif self.task == "panoptic":
            result = self.seg._panoptic(emb)
        pt = self.prompt_tracker
        if pt is not None:
            first, self._first = self._first, False
            pres = _first_frame(pt, emb, self.specs) if first else pt.step(emb, rescale=True)
            if result is None:  # task "prompt"
                result = pres
            elif not isinstance(result, PromptTrackResult):
                result.prompts = pres
                result.timings.update(
                    {f"prompt_{k}": pres.timings[k] for k in _PROMPT_STAGES if k in pres.timings}
                )
        assert result is not None  # _check: task "prompt" has a prompt tracker
        return result


def stream(
    seg: Any,
    source: Any,
    *,
    task: str,
    max_frames: int | None,
    tracker: OnlineTracker | None,
    source_options: SourceOptions | None,
    prompts: Any,
    prompt_tracker: PromptTracker | None,
) -> Iterator[tuple[np.ndarray, StreamResult]]:
    """``Segmenter.stream`` (its docstring gives the arguments and errors; this module's
    doc the prompts). ``seg``: the Segmenter (not imported here: it imports this module)."""
    step = FrameStep(
        seg, task=task, tracker=tracker, prompts=prompts, prompt_tracker=prompt_tracker
    )
    check_stream_args("track", max_frames)
    frames, order = open_source(source, seg.color_order, source_options)
    #: the tracker of the stream running last (the demo reports its track count)
    seg.last_stream_tracker = step.tracker
    prepare = functools.partial(seg.prepare, color_order=order)
    with contextlib.closing(prefetch(frames, prepare, limit=max_frames)) as items:
        for frame, prepared, read_ms in items:
            result = step(prepared=prepared)
            result.timings = {"read": read_ms, **result.timings}
            yield frame, result
