"""The on-device FPS profiler: times a bundle through the same ``Segmenter`` code path users
run, per stage and end to end, with memory, telemetry and the environment.

Modes (one iteration each):

* ``panoptic``: ``Segmenter.panoptic(frame)``; stages prepare, encoder, decoder,
  postprocess.
* ``prompt``: ``emb = set_image(frame)`` then ``prompt(emb, points=...)`` with ``prompts``
  clicks; stages prepare, encoder (set_image), decoder (prompt decoder), postprocess.
* ``track``: ``Segmenter.track(frame, tracker=...)`` over the frames in order; the panoptic
  stages plus tracking.
* ``stream``: ``Segmenter.stream(frames)`` (capture + letterbox of frame t+1 in a thread
  while frame t is inferred); stages read, prepare, encoder, decoder, postprocess, tracking;
  ``end_to_end`` is the time the consumer waits for each result (the next frame is read and
  letterboxed meanwhile).

``end_to_end`` is the wall time of the call as the user makes it. Sequential FPS = 1000 /
mean end-to-end of panoptic / prompt / track; stream FPS = results / wall seconds of the
stream (with ``compare``, whose streams interleave, 1000 / mean end-to-end). Several targets (``compare``) run in one process,
interleaved one iteration each, so machine noise hits all alike; ratios are to the first.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, SourceError
from .stats import summarize

__all__ = ["MODES", "PRECISION_OPTIONS", "ProfileConfig", "Target", "run_profile"]

log = logging.getLogger(__name__)

MODES = ("panoptic", "prompt", "track", "stream")
#: --precision -> backend options, per backend (fp32 is every backend's default)
PRECISION_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "openvino": {
        "fp32": {"precision": "f32"},
        "fp16": {"precision": "f16"},
        "bf16": {"precision": "bf16"},
    },
    "tensorrt": {
        "fp32": {"precision": "fp32"},
        "fp16": {"precision": "fp16"},
        "int8": {"precision": "int8"},
    },
}
#: frames kept in memory for the non-stream modes when reading from a source
MAX_CACHED_FRAMES = 64


@dataclass(frozen=True)
class Target:
    """One thing to profile: a bundle (path, shipped name or None) on a backend, at a runtime
    precision (None: the config's, else the backend's default)."""

    bundle: str | None = None
    backend: str = "auto"
    precision: str | None = None

    @property
    def label(self) -> str:
        text = f"{self.backend}:{self.bundle or 'default'}"
        return f"{text}@{self.precision}" if self.precision else text


@dataclass(frozen=True)
class ProfileConfig:
    """What ``run_profile`` measures.

    Attributes:
      targets: the first is the subject; the others are compared with it (ratios to it).
      mode: one of ``MODES``.
      input_hw: synthetic frame size (H, W) in pixels when ``source`` is None: the sample
        clip's first frame resized to it.
      source: a video file, a camera index or an image file to take frames from.
      warmup, iters: untimed and timed iterations per target.
      threads: threads per graph and for the C++ core (None: ``RAPSAM_EDGE_THREADS`` or the
        cores this process may use).
      device, precision: passed to the backends (precision through ``PRECISION_OPTIONS``;
        a target's own precision wins).
      input_size: network long side (None: each bundle's own).
      prompts: clicks per ``prompt`` call (prompt mode).
      layers: also collect the backends' own per-operator times (``profile.layers``).
      top_layers: operators listed per graph with ``layers``.
      progress: show a progress bar on stderr.
    """

    targets: tuple[Target, ...] = (Target(),)
    mode: str = "panoptic"
    input_hw: tuple[int, int] = (480, 640)
    source: str | int | None = None
    warmup: int = 10
    iters: int = 100
    threads: int | None = None
    device: str | None = None
    precision: str | None = None
    input_size: int | None = None
    prompts: int = 1
    layers: bool = False
    top_layers: int = 10
    progress: bool = True

    def validate(self) -> None:
        """Raises ConfigError naming the first bad field."""
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r}: choose from {list(MODES)}")
        if not self.targets:
            raise ConfigError("nothing to profile: no target")
        for name in ("warmup", "iters", "prompts", "top_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "warmup" else 1):
                raise ConfigError(
                    f"{name} must be a {'non-negative' if name == 'warmup' else 'positive'} int, got {v!r}"
                )
        h, w = self.input_hw
        if not (16 <= h <= 8192 and 16 <= w <= 8192):
            raise ConfigError(f"input size {w}x{h}: each side must be in [16, 8192]")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a positive int, got {self.threads!r}")
        if self.precision is not None and self.precision not in ("fp32", "fp16", "bf16", "int8"):
            raise ConfigError(f"precision {self.precision!r}: choose fp32, fp16, bf16 or int8")


# ------------------------------------------------------------------ frames
def _sample_frame(hw: tuple[int, int]) -> np.ndarray:
    import cv2

    from ..assets import sample_clip

    cap = cv2.VideoCapture(str(sample_clip()))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SourceError(f"cannot read the sample clip {sample_clip()}")
    return cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def _source_frames(source: str | int) -> Iterator[np.ndarray]:
    """Frames of an image (repeated), a video file or a camera, BGR."""
    from pathlib import Path

    import cv2

    from ..runtime.segmenter import open_source

    if isinstance(source, str) and not source.isdigit() and Path(source).is_file():
        from ..contract.images import image_size, read_image_file

        with open(source, "rb") as f:  # a regular file (is_file): reading cannot block
            head = f.read(1 << 16)
        if image_size(head) is not None:  # an image: header checked before decoding
            data = read_image_file(source, "profile --source image", SourceError)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                return itertools.repeat(image)
    frames, _ = open_source(int(source) if str(source).isdigit() else source, "BGR")
    return iter(frames)


def _frames(config: ProfileConfig) -> tuple[list[np.ndarray], Callable[[], Iterator[np.ndarray]]]:
    """(frames cached for the non-stream modes, a factory of fresh frame iterators for
    stream mode)."""
    if config.source is None:
        frame = _sample_frame(config.input_hw)
        return [frame], lambda: itertools.repeat(frame)
    source = config.source
    cached = list(itertools.islice(_source_frames(source), MAX_CACHED_FRAMES))
    if not cached:
        raise SourceError(f"source {source!r} gave no frame")
    if isinstance(source, int) or source.isdigit():
        return cached, lambda: _source_frames(source)  # a camera: live frames

    def replay() -> Iterator[np.ndarray]:  # a file: read again, then loop the cache
        return itertools.chain(_source_frames(source), itertools.cycle(cached))

    return cached, replay


# ------------------------------------------------------------------ one target
class _Subject:
    """A Segmenter and the samples of one target."""

    def __init__(
        self,
        target: Target,
        config: ProfileConfig,
        frames: list[np.ndarray],
        stream_frames: Callable[[], Iterator[np.ndarray]],
    ) -> None:
        from ..runtime.segmenter import Segmenter

        options: dict[str, Any] = {}
        precision = target.precision or config.precision
        if precision is not None:
            if precision not in ("fp32", "fp16", "bf16", "int8"):
                raise ConfigError(f"precision {precision!r}: choose fp32, fp16, bf16 or int8")
            table = PRECISION_OPTIONS.get(target.backend)
            if table is None and precision != "fp32":
                raise ConfigError(
                    f"--precision {precision}: backend {target.backend!r} runs the bundle's "
                    "graphs as exported; choose openvino or tensorrt, or a quantized bundle"
                )
            if table is not None:
                if precision not in table:
                    raise ConfigError(
                        f"{target.backend} has no {precision} mode; it has {sorted(table)}"
                    )
                options = dict(table[precision])
        self.target = target
        self.seg = Segmenter(
            target.bundle,
            target.backend,
            device=config.device,
            color_order="BGR",
            input_size=config.input_size,
            backend_options=options,
        )
        self.config = config
        self.frames = frames
        self.samples: dict[str, list[float]] = {}
        self.overhead_ns = 0
        self.index = 0
        self.tracker = self.seg.new_tracker()
        self._stream: Iterator[tuple[np.ndarray, Any]] | None = None
        self._stream_frames = stream_frames
        self._last = 0.0
        self.stream_started = 0.0
        self.stream_results = 0

    def _frame(self) -> np.ndarray:
        frame = self.frames[self.index % len(self.frames)]
        self.index += 1
        return frame

    def _points(self, frame: np.ndarray) -> list[tuple[float, float]]:
        h, w = frame.shape[:2]
        k = self.config.prompts
        return [
            (w * (i + 1) / (k + 1), h * (0.3 + 0.4 * ((i * 7) % k) / max(k, 1))) for i in range(k)
        ]

    def step(self, record: bool) -> None:
        """One iteration of the mode; its timings are kept when ``record``."""
        mode = self.config.mode
        if mode == "stream":
            if self._stream is None:
                self._stream = self.seg.stream(self._stream_frames(), task="track")
                self._last = self.stream_started = time.perf_counter()
            t0 = time.perf_counter()
            _, result = next(self._stream)  # waits for the capture thread, then infers
            now = time.perf_counter()
            timings, e2e = result.timings, (now - t0) * 1e3
            self._last = now
            self.stream_results += 1
        else:
            frame = self._frame()
            t0 = time.perf_counter()
            if mode == "panoptic":
                timings = self.seg.panoptic(frame).timings
            elif mode == "track":
                timings = self.seg.track(frame, tracker=self.tracker).timings
            else:
                emb = self.seg.set_image(frame)
                res = self.seg.prompt(emb, points=self._points(frame))
                timings = {**emb.timings, **res.timings}
            e2e = (time.perf_counter() - t0) * 1e3
        if record:
            t_book = time.perf_counter_ns()
            for stage, ms in timings.items():
                self.samples.setdefault(stage, []).append(ms)
            self.samples.setdefault("end_to_end", []).append(e2e)
            self.overhead_ns += time.perf_counter_ns() - t_book

    def restart_stream_clock(self) -> None:
        self.stream_started = self._last = time.perf_counter()
        self.stream_results = 0

    def close(self) -> None:
        if isinstance(self._stream, Generator):  # closing it stops the capture thread
            self._stream.close()
        self.seg.close()

    def report(self) -> dict[str, Any]:
        stages = {name: summarize(v) for name, v in self.samples.items()}
        e2e = stages["end_to_end"]
        fps: dict[str, float | None] = {"sequential": None, "stream": None}
        if self.config.mode == "stream" and len(self.config.targets) == 1:
            wall = time.perf_counter() - self.stream_started
            fps["stream"] = self.stream_results / wall if wall > 0 else None
        elif self.config.mode == "stream":  # interleaved streams share the wall clock
            fps["stream"] = 1000.0 / e2e["mean"] if e2e["mean"] > 0 else None
        else:
            fps["sequential"] = 1000.0 / e2e["mean"] if e2e["mean"] > 0 else None
        fps["p50"] = 1000.0 / e2e["p50"] if e2e["p50"] > 0 else None
        n = max(e2e["n"], 1)
        overhead_ms = self.overhead_ns / 1e6 / n
        return {
            "samples": {k: [round(x, 4) for x in v] for k, v in self.samples.items()},
            "target": {
                "bundle": self.seg.bundle.name,
                "variant": self.seg.bundle.variant,
                "backend": self.seg.backend_name,
                "precision": self.target.precision
                or self.config.precision
                or _bundle_precision(self.seg.bundle),
                "label": self.target.label,
            },
            "stages": stages,
            "fps": fps,
            "profiler_overhead": {
                "ms_per_iter": overhead_ms,
                "pct_of_frame": 100.0 * overhead_ms / e2e["mean"],
            },
        }


def _bundle_precision(bundle: Any) -> str:
    """The bundle's graph precisions, e.g. "fp32" or "int8+fp32" (encoder's first)."""
    return "+".join(dict.fromkeys(g.precision for g in bundle.graphs.values()))


def _progress(total: int, enabled: bool, desc: str) -> Any:
    """A tqdm bar, or None when ``enabled`` is false."""
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI)
    return tqdm(
        total=total,
        desc=desc,
        unit="it",
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        disable=None,
    )


# ------------------------------------------------------------------ the profiler
def run_profile(config: ProfileConfig) -> dict[str, Any]:
    """Profile ``config.targets`` in ``config.mode``.

    Returns:
      the report (JSON-ready): ``stages`` {stage: {p50, p90, p99, mean, max (ms), n}} of the
      first target, ``fps`` {sequential, stream, p50}, ``memory`` (peak RSS MiB, GPU memory
      where NVML sees a GPU), ``environment``, ``profiler_overhead``, ``telemetry``
      (tegrastats on Jetson), ``layers`` (with ``config.layers``), ``compare`` (one entry
      per target, the first included, with its stages, fps and the ratio of its end-to-end
      p50 to the first's),
      ``settings``.
    Raises:
      ConfigError: bad settings. SourceError: unreadable source. BundleError /
      BackendUnavailable: from the Segmenter.
    """
    config.validate()
    if config.threads is not None:
        from .. import ops
        from ..contract.shared import THREADS_ENV_VAR

        os.environ[THREADS_ENV_VAR] = str(config.threads)
        ops.set_num_threads(config.threads)
    from .memory import GpuMemorySampler, MemoryTracker
    from .tegrastats import TegraStatsSampler

    frames, stream_frames = _frames(config)
    subjects = [_Subject(t, config, frames, stream_frames) for t in config.targets]
    settings = {k: v for k, v in asdict(config).items() if k != "targets"}
    settings["targets"] = [t.label for t in config.targets]
    try:
        bar = _progress(config.warmup + config.iters, config.progress, f"profile {config.mode}")
        with MemoryTracker() as memory, GpuMemorySampler() as gpu, TegraStatsSampler() as tegra:
            for i in range(config.warmup + config.iters):
                record = i >= config.warmup
                if i == config.warmup:
                    for s in subjects:
                        s.seg.settle()  # background static compiles land before timing
                        if config.mode == "stream":
                            s.restart_stream_clock()
                for s in subjects:
                    s.step(record)
                if bar is not None:
                    bar.update(1)
            reports = [s.report() for s in subjects]
        if bar is not None:
            bar.close()
        first = reports[0]
        base = first["stages"]["end_to_end"]["p50"]
        for r in reports[1:]:
            r.pop("samples")
        for r in reports:
            r["ratio_to_first"] = r["stages"]["end_to_end"]["p50"] / base
        h, w = frames[0].shape[:2]
        report: dict[str, Any] = {
            "mode": config.mode,
            "stages": first["stages"],
            "fps": first["fps"],
            "samples": first["samples"],
            "profiler_overhead": first["profiler_overhead"],
            "memory": {**memory.summary(), "gpu": gpu.summary()},
            "telemetry": tegra.summary() if tegra.available else None,
            "environment": environment_block(subjects[0].seg, (h, w), settings),
            "compare": reports,
            "settings": settings,
            "layers": None,
        }
        if config.layers:
            from .layers import top_layers

            report["layers"] = top_layers(subjects[0].seg, frames[0], top=config.top_layers)
        return report
    finally:
        for s in subjects:
            s.close()


def environment_block(
    seg: Any, frame_hw: tuple[int, int], settings: dict[str, Any]
) -> dict[str, Any]:
    from .environment import environment

    return environment(seg, frame_hw=frame_hw, settings=settings)


def parse_targets(subject: Target, compare: Sequence[str]) -> tuple[Target, ...]:
    """``--compare B[:bundle],...`` entries after the subject (a missing bundle = the
    subject's)."""
    out = [subject]
    for item in compare:
        item = item.strip()
        if not item:
            continue
        backend, _, bundle = item.partition(":")
        out.append(Target(bundle=bundle or subject.bundle, backend=backend or subject.backend))
    return tuple(out)
