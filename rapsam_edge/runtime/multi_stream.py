"""``Segmenter.stream_many``: several cameras (or files, or iterables of frames) served by
one ``Segmenter`` in one process.

    for item in seg.stream_many([0, 1, "rtsp-or-file.mp4"]):
        if item.error is not None:        # that source failed; the others go on
            print(item.source, item.error, item.error.hint)
            continue
        show(item.source, item.frame, item.result)

Each source has its own capture thread (reading and letterboxing its next frames, a queue
of 2 as in ``stream``), its own video tracker and, with prompts, its own prompt tracker. A
step takes the frame each source has ready, without waiting for the others (a camera that
stalls delays nobody: its read timeout runs in its own thread), runs the encoder once on
the step's frames of one network shape (a batch; ``batched``), then the panoptic decoder
once on them, then per frame the fusion and the trackers, and yields one ``SourceFrame``
per frame, in source order. The fusion and trackers of a batch run in a post-processing
thread while the graphs of the next batch run (the C++ core and OpenVINO release the GIL),
so a batch's results are yielded once the next batch's graphs are done, or at once when no
frame is waiting. Each source's frames come in order, none is dropped
(``latest=False``), so each source's results are those ``stream`` gives for it alone.
``latest=True`` keeps only each source's newest frame instead (a robot's choice: bounded
latency on live cameras; older frames not yet taken are dropped, counted in
``SourceFrame.dropped``).

Batching (``batch``): "auto" batches up to all the sources' frames per call when the
graphs accept a batch (a dynamic "B" axis: the shipped bundles; ``batched.max_batch``);
an int caps the frames per call (1: one call per frame, the cameras interleaved). On this
project's 2-core CPU the OpenVINO INT8 encoder and panoptic decoder run 1.2x (batch 2) to
1.35x (batch 4) more frames per second batched than one by one, and 4 cameras in one
process 1.65x the aggregate FPS of 4 separate processes (benchmarks/results/multi_camera.md).

A source that fails (its ``SourceError`` kinds as in ``stream``, an ``InputError`` for a
bad frame of an iterable, any error its iterable raises) yields one last ``SourceFrame``
with ``error`` set and ``frame`` / ``result`` None, and the others go on
(``on_error="raise"``: the error ends the whole stream, as ``stream`` would). Errors that
are not one source's (a backend failure, prompts the tracker refuses) end the stream.
Leaving the loop returns within half a second (``sources.LEAVE_WAIT``) whatever the capture
threads do; a thread stuck in a source is left behind, never joined.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError, SourceError
from .batched import encode_many, fuse_many, max_batch, panoptic_logits
from .capture import SourceOptions, VideoSource
from .prompt_tracker import PromptTracker
from .results import PromptTrackResult
from .sources import LEAVE_WAIT, _put, check_stream_args, open_source
from .streaming import (
    _PROMPT_STAGES,
    STREAM_TASKS,
    StreamResult,
    _first_frame,
    associate,
    prompt_specs,
)
from .tracker import OnlineTracker

__all__ = ["MAX_SOURCES", "SourceFrame", "stream_many"]

#: most sources one ``stream_many`` serves
MAX_SOURCES = 64
ON_ERROR = ("report", "raise")
_POST_THREAD = True


class SourceFrame(NamedTuple):
    """One frame of one source of ``stream_many``, or that source's end by an error.

    source: the source's position in ``sources``. frame: the frame (as ``stream`` yields
    it), None with an error. result: its result (as ``stream`` yields it), None with an
    error. error: the exception that ended this source (its last item), else None.
    dropped: frames of this source dropped so far (``latest=True`` only). batch: frames
    in the encoder call that served this frame."""

    source: int
    frame: np.ndarray | None
    result: StreamResult | None
    error: Exception | None = None
    dropped: int = 0
    batch: int = 1


_DONE = object()


class _Feed:
    """One source's capture thread: reads and prepares frames into a queue of 2 (1 with
    ``latest``, replacing a frame not yet taken) and sets ``wake`` after each item."""

    def __init__(
        self, frames: Any, prepare: Any, limit: int | None, latest: bool, wake: threading.Event
    ) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=1 if latest else 2)
        self.stop = threading.Event()
        self.cancel = getattr(frames, "cancel", None)
        self.dropped = 0
        self._frames, self._prepare, self._limit = frames, prepare, limit
        self._latest, self.wake = latest, wake
        self.thread = threading.Thread(target=self._produce, name="rapsam-capture", daemon=True)
        self.thread.start()

    def _offer(self, item: object) -> bool:
        if self._latest and item is not _DONE and not isinstance(item, BaseException):
            while not self.stop.is_set():
                try:
                    self.q.put_nowait(item)
                    return True
                except queue.Full:
                    try:
                        self.q.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
            return False
        return _put(self.q, item, self.stop)

    def _produce(self) -> None:
        it = None
        try:
            it = iter(self._frames)
            n = 0
            while not self.stop.is_set() and (self._limit is None or n < self._limit):
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                n += 1
                read_ms = (time.perf_counter() - t0) * 1e3
                if not self._offer((frame, self._prepare(frame), read_ms)):
                    break
                self.wake.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._offer(exc)
        finally:
            if self.cancel is not None and it is not None:
                getattr(it, "close", lambda: None)()  # our VideoFrames: release the capture
            self._offer(_DONE)
            self.wake.set()

    def poll(self) -> Any:
        """The next item (a (frame, prepared, read ms) tuple, an exception or ``_DONE``),
        or None when none is ready."""
        try:
            return self.q.get_nowait()
        except queue.Empty:
            return None

    def leave(self) -> None:
        self.stop.set()
        if self.cancel is not None:
            self.cancel()


def _source_key(source: Any) -> Any:
    """What makes two sources the same (a camera opened twice, one file twice, one iterator
    shared): a camera index, a real path, or the object itself."""
    if isinstance(source, VideoSource):
        source = source.target
    if isinstance(source, (int, np.integer)) and not isinstance(source, (bool, np.bool_)):
        return ("camera", int(source))
    if isinstance(source, str) and source.isdigit() and not Path(source).exists():
        return ("camera", int(source))
    if isinstance(source, (str, Path)):  # a file by its real path, a URL as written
        return ("path", os.path.realpath(source)) if Path(source).exists() else ("name", source)
    return ("object", id(source))


def _per_source(value: Any, n: int, name: str, kind: Any) -> list[Any]:
    """``value`` for each of ``n`` sources: one value of type ``kind`` for all (or None),
    or a sequence of ``n`` such values (None entries allowed)."""
    if value is None or isinstance(value, kind):
        return [value] * n
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise ConfigError(
            f"{name} must be one value for every source or a list of {n} (one per source), "
            f"got {type(value).__name__} {value!r:.80}"
        )
    for i, v in enumerate(value):
        if v is not None and not isinstance(v, kind):
            raise ConfigError(f"{name}[{i}] must be a {kind.__name__} or None, got {v!r:.80}")
    return list(value)


@dataclass
class _Settings:
    sources: list[Any]
    options: list[SourceOptions | None]
    trackers: list[OnlineTracker]
    prompt_trackers: list[PromptTracker | None]
    specs: list[list[dict[str, Any]]]
    batch: int
    first: list[bool] = field(default_factory=list)


def _check_sources(sources: Any) -> list[Any]:
    if isinstance(sources, (str, bytes, Path, Mapping, np.ndarray)) or not isinstance(
        sources, Sequence
    ):
        raise ConfigError(
            f"sources must be a list of sources (camera indices, paths, VideoSources, "
            f"iterables of frames), got {type(sources).__name__}",
            hint="one source: stream_many([source]) or stream(source)",
        )
    if not 1 <= len(sources) <= MAX_SOURCES:
        raise ConfigError(f"stream_many serves 1 to {MAX_SOURCES} sources, got {len(sources)}")
    seen: dict[Any, int] = {}
    for i, source in enumerate(sources):
        if isinstance(source, np.ndarray):
            raise ConfigError(
                f"sources[{i}] is an array (a frame?), not a source",
                hint="an iterable of frames is one source: stream_many([frames, ...])",
            )
        key = _source_key(source)
        if key in seen:
            raise ConfigError(
                f"sources[{i}] and sources[{seen[key]}] are the same source ({source!r:.80})",
                hint="a camera, file or iterator can feed one stream; open it once",
            )
        seen[key] = i
    return list(sources)


def _settings(seg: Any, sources: Any, task: Any, max_frames: Any, kw: dict[str, Any]) -> _Settings:
    """The checked arguments of ``stream_many`` (its docstring)."""
    srcs = _check_sources(sources)
    n = len(srcs)
    if task not in STREAM_TASKS:
        raise ConfigError(f"task must be 'track', 'panoptic' or 'prompt', got {task!r}")
    check_stream_args("track", max_frames)
    if kw["on_error"] not in ON_ERROR:
        raise ConfigError(f"on_error must be 'report' or 'raise', got {kw['on_error']!r}")
    if not isinstance(kw["latest"], bool):
        raise ConfigError(f"latest must be a bool, got {kw['latest']!r}")
    batch = kw["batch"]
    if batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ConfigError(f"batch must be 'auto' or an int >= 1, got {batch!r}")
    bound = max_batch(seg)
    size = n if batch == "auto" else batch
    size = min(size, bound) if bound is not None else size
    options = _per_source(kw["source_options"], n, "source_options", SourceOptions)
    trackers = _per_source(kw["trackers"], n, "trackers", OnlineTracker)
    if kw["trackers"] is not None and task != "track":
        raise ConfigError(f"trackers= are the video trackers of task 'track', not {task!r}")
    if len({id(t) for t in trackers if t is not None}) < sum(t is not None for t in trackers):
        raise ConfigError("trackers must be distinct: each source has its own")
    prompts = kw["prompts"]
    if prompts is not None and (
        isinstance(prompts, (str, bytes, Mapping)) or not isinstance(prompts, Sequence)
    ):
        raise ConfigError("prompts must be a list with one entry per source (None: no prompts)")
    if prompts is not None and len(prompts) != n:
        raise ConfigError(f"prompts has {len(prompts)} entries for {n} sources (one per source)")
    specs = [prompt_specs(p) for p in (prompts or [None] * n)]
    if task == "prompt" and not all(specs):
        raise ConfigError(
            "task 'prompt' tracks prompted objects: every source needs prompts",
            hint='e.g. prompts=[{"boxes": [box0]}, {"points": [(x, y)]}]',
        )
    return _Settings(
        srcs,
        options,
        [t if t is not None else seg.new_tracker() for t in trackers],
        [seg.prompt_tracker() if s else None for s in specs],
        specs,
        max(1, size),
        [True] * n,
    )


def _infer(seg: Any, task: str, items: list[tuple[int, Any, Any, float]]) -> tuple[list, Any]:
    """The graphs of one batch (frames of one network shape): the encoder, then the
    panoptic decoder (not for task "prompt"): (embeddings, (decoder outputs, ms) or None)."""
    embs = encode_many(seg, [prepared for _, _, prepared, _ in items])
    return embs, panoptic_logits(seg, embs) if task != "prompt" else None


def _finish(
    seg: Any,
    task: str,
    st: _Settings,
    batch: tuple[list[tuple[int, Any, Any, float]], list, Any],
    dropped: list[int],
) -> list[SourceFrame]:
    """One batch's fusion and trackers (in source order of its frames): its
    ``SourceFrame``s. Runs in the post-processing thread, one batch after another."""
    items, embs, logits = batch
    pans = fuse_many(seg, embs, *logits) if logits is not None else [None] * len(items)
    out = []
    for (i, frame, _, read_ms), emb, pan in zip(items, embs, pans):
        result: StreamResult | None = pan
        if task == "track" and pan is not None:
            result = associate(pan, st.trackers[i], time.perf_counter())
        pt = st.prompt_trackers[i]
        if pt is not None:
            first, st.first[i] = st.first[i], False
            pres = _first_frame(pt, emb, st.specs[i]) if first else pt.step(emb, rescale=True)
            if result is None:
                result = pres
            elif not isinstance(result, PromptTrackResult):
                result.prompts = pres
                result.timings.update(
                    {f"prompt_{k}": pres.timings[k] for k in _PROMPT_STAGES if k in pres.timings}
                )
        assert result is not None  # _settings: task "prompt" has prompt trackers
        result.timings = {"read": read_ms, **result.timings}
        out.append(SourceFrame(i, frame, result, None, dropped[i], len(items)))
    return out


def _gather(feeds: dict[int, _Feed], wake: threading.Event) -> list[tuple[int, Any]]:
    """Wait until at least one source has an item, then take one item of each source that
    has one ready (no waiting for the others)."""
    while True:
        wake.clear()
        ready = [(i, item) for i, f in feeds.items() if (item := f.poll()) is not None]
        if ready:
            return ready
        wake.wait(0.05)


def _take(
    feeds: list[_Feed | None], live: dict[int, _Feed], wake: threading.Event, on_error: str
) -> tuple[list[tuple[int, Any, Any, float]], list[SourceFrame]]:
    """One step's input: (frames ready, one per source at most; ``SourceFrame``s of the
    sources that failed). Ended sources leave ``live``."""
    frames: list[tuple[int, Any, Any, float]] = []
    errors: list[SourceFrame] = []
    for i, item in _gather(live, wake):
        if item is _DONE:
            del live[i]
        elif isinstance(item, BaseException):
            live.pop(i).leave()
            if on_error == "raise" or not isinstance(item, Exception):
                raise item
            errors.append(SourceFrame(i, None, None, item, dropped_of(feeds, i)))
        else:
            frames.append((i, item[0], item[1], item[2]))
    return frames, errors


def _steps(
    seg: Any,
    task: str,
    st: _Settings,
    feeds: list[_Feed | None],
    wake: threading.Event,
    on_error: str,
    post: ThreadPoolExecutor,
) -> Iterator[SourceFrame]:
    """The steps of ``stream_many`` over the sources' feeds (None: failed to open), which
    set ``wake`` after each item. The graphs of a batch run here while the ``post`` thread
    fuses and tracks the batch before it (the C++ core and OpenVINO release the GIL)."""
    live = {i: f for i, f in enumerate(feeds) if f is not None}
    pending: Future | None = None
    while live:
        if pending is not None and all(f.q.empty() for f in live.values()):
            yield from pending.result()  # nothing to overlap it with: never hold it back
            pending = None
        frames, errors = _take(feeds, live, wake, on_error)
        if errors and pending is not None:  # a source's error comes after its frames
            yield from pending.result()
            pending = None
        yield from errors
        dropped = [0 if f is None else f.dropped for f in feeds]
        groups: dict[tuple, list] = {}
        for entry in frames:
            groups.setdefault(entry[2].image.shape, []).append(entry)
        for group in groups.values():
            for k in range(0, len(group), st.batch):
                items = group[k : k + st.batch]
                batch = (items, *_infer(seg, task, items))
                if pending is not None:
                    yield from pending.result()
                if _POST_THREAD:
                    pending = post.submit(_finish, seg, task, st, batch, dropped)
                else:
                    yield from _finish(seg, task, st, batch, dropped)
                    pending = None
    if pending is not None:
        yield from pending.result()


def dropped_of(feeds: list[_Feed | None], i: int) -> int:
    feed = feeds[i]
    return 0 if feed is None else feed.dropped


def _open(
    seg: Any, st: _Settings, max_frames: int | None, latest: bool, on_error: str
) -> tuple[list[_Feed | None], list[SourceFrame], threading.Event]:
    """Open every source and start its capture thread: (feeds, a ``SourceFrame`` per source
    that cannot be opened, whose feed is None, the event the feeds set)."""
    wake = threading.Event()
    feeds: list[_Feed | None] = []
    errors: list[SourceFrame] = []
    try:
        for i, (source, options) in enumerate(zip(st.sources, st.options)):
            try:
                frames, order = open_source(source, seg.color_order, options)
            except SourceError as exc:
                if on_error == "raise":
                    raise
                feeds.append(None)
                errors.append(SourceFrame(i, None, None, exc))
                continue
            prepare = functools.partial(seg.prepare, color_order=order)
            feeds.append(_Feed(frames, prepare, max_frames, latest, wake))
    except BaseException:
        _leave(feeds)
        raise
    return feeds, errors, wake


def _leave(feeds: list[_Feed | None]) -> None:
    """Stop every capture thread; wait for them at most ``LEAVE_WAIT`` s in all (never for
    one stuck in its source)."""
    started = [f for f in feeds if f is not None]
    for feed in started:
        feed.leave()
    deadline = time.monotonic() + LEAVE_WAIT
    for feed in started:
        while feed.thread.is_alive() and time.monotonic() < deadline:
            feed.thread.join(timeout=0.02)


def stream_many(
    seg: Any, sources: Any, *, task: str, max_frames: int | None, **kw: Any
) -> Iterator[SourceFrame]:
    """``Segmenter.stream_many`` (its docstring and this module's give the arguments).
    ``kw``: source_options, trackers, prompts, batch, latest, on_error."""
    st = _settings(seg, sources, task, max_frames, kw)
    seg.last_stream_trackers = st.trackers
    feeds, errors, wake = _open(seg, st, max_frames, kw["latest"], kw["on_error"])
    post = ThreadPoolExecutor(1, thread_name_prefix="rapsam-post")
    try:
        yield from errors
        yield from _steps(seg, task, st, feeds, wake, kw["on_error"], post)
    finally:
        post.shutdown(wait=False, cancel_futures=True)
        _leave(feeds)
