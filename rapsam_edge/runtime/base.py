"""``Backend``: the one base class of the runtime backends (no torch here).

A backend runs ONE graph of a bundle (``encoder``, ``panoptic_decoder`` or
``prompt_decoder``) on one device: ``run(feeds) -> outputs``, numpy in, numpy out, tensor
names as in the bundle's manifest (``input_names`` / ``output_names``, in the contract's role
order; ``name_of(role)`` maps a role to its name). The base class holds what every backend
shares: the availability probe, the constructor prologue, feed checks, ``warmup()``,
``close()`` / context manager, ``version()`` and the concurrency contract.

Subclasses implement ``unavailable_reason(device)``, ``library_version()``, ``_open(bundle,
device, **options)`` and ``_run(feeds)``; they set ``concurrent = True`` when their ``_run``
may be called from several threads at once (ONNX Runtime sessions, OpenVINO with a pool of
infer requests), else the base class serialises ``run`` with a lock (TensorRT, torch).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..bundle import Bundle
from ..contract.manifest import GraphInfo, TensorSpec
from ..errors import (
    BackendError,
    BackendUnavailable,
    BundleError,
    ConfigError,
    InputError,
    ManifestError,
)

__all__ = [
    "Backend",
    "BackendUnavailable",
    "Port",
    "check_device",
    "check_feeds",
    "example_feeds",
]


def check_device(device: Any) -> None:
    """A backend's ``device``: a name (str) or None (the backend's default).

    Raises:
      ConfigError: another type (an int, say: OpenVINO names devices "CPU", "GPU.0", CUDA
        backends "cuda:0")."""
    if device is not None and not isinstance(device, str):
        raise ConfigError(
            f"device must be a device name (str) or None, got {type(device).__name__} {device!r}",
            hint='e.g. device="CPU" for OpenVINO, "cuda:0" for TensorRT, None for the default',
        )


class Backend:
    """One graph of a bundle on one device.

    Attributes:
      name: registry name (e.g. "ort-cpu", "openvino", "tensorrt").
      device: the device it runs on, in the backend's own words ("cpu", "CPU", "cuda:0").
      graph: the graph's name; info: its ``GraphInfo`` from the manifest.
      input_names / output_names: the graph's tensor names, in manifest (role) order.
      selection: how it was chosen (set by the selection policy; logged).
      concurrent: True when ``run`` executes concurrently from several threads; False when
        calls are serialised by a lock (still thread-safe, one at a time).
    """

    name: ClassVar[str] = "backend"
    concurrent: ClassVar[bool] = False
    #: how to install what the backend needs (the hint of its ``BackendUnavailable``)
    install_hint: ClassVar[str | None] = None

    # -- probing -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        """None when usable here (on ``device``), else one line saying why not."""
        raise NotImplementedError

    @classmethod
    def devices(cls) -> list[str] | None:
        """The devices it can run on here, in its own words (None: unknown here, e.g. its
        library is missing)."""
        return None

    @classmethod
    def unavailable_hint(cls, device: str | None = None) -> str | None:
        """The hint of a ``BackendUnavailable`` for ``device``: the devices it has, where
        its library is here and ``device`` is not one of them; else ``install_hint``."""
        try:
            devices = cls.devices()
        except Exception:  # noqa: BLE001 - a broken driver stack: no device list to offer
            devices = None
        if not devices or device is None or device.upper() in {d.upper() for d in devices}:
            return cls.install_hint
        return (
            f"{cls.name} runs here on {', '.join(devices)}: pass one of them as device "
            "(or None for its default)"
        )

    @classmethod
    def available(cls, device: str | None = None) -> bool:
        return cls.unavailable_reason(device) is None

    @classmethod
    def library_version(cls) -> str:
        """Version of the library that runs the graph (e.g. onnxruntime's)."""
        raise NotImplementedError

    # -- life cycle ----------------------------------------------------------------------
    def __init__(self, bundle: Bundle, graph: str, device: str | None = None, **options: Any):
        """
        Arguments:
          bundle: a loaded ``Bundle``.
          graph: one of the bundle's graphs.
          device: the backend's device (None = its default).
          options: backend-specific (see the subclass's ``_open``).
        Raises:
          BackendUnavailable: the library, device or graph file is missing here.
          BundleError: the bundle has no such graph.
          ConfigError: an invalid option, a device that is not a str.
        """
        check_device(device)
        reason = self.unavailable_reason(device)
        if reason:
            raise BackendUnavailable(f"{self.name}: {reason}", hint=self.unavailable_hint(device))
        if graph not in bundle.graphs:
            raise BundleError(
                f"bundle {bundle.name!r} has no graph {graph!r}; it has {sorted(bundle.graphs)}"
            )
        self.graph = graph
        self.info: GraphInfo = bundle.graphs[graph]
        self.input_names = self.info.input_names
        self.output_names = self.info.output_names
        self._output_roles = tuple((t.role, t.name) for t in self.info.outputs)
        self.device = device or "cpu"
        self.selection = f"{self.name} (requested) for {graph}"
        self._lock = threading.Lock()
        self._closed = False
        self._open(bundle, device, **options)
        self._check_signature()

    def _signature(self) -> dict[str, Port] | None:
        """The opened graph's tensors: name -> ``Port`` (direction, dtype, shape with None
        for a dynamic axis), inputs and outputs together; None where the backend cannot
        tell before running."""
        return None

    def _check_signature(self) -> None:
        """Cross-check the opened graph against the manifest: the same tensor names, each
        in the same direction with the same dtype (where the backend tells), rank and fixed
        sizes. A bundle whose manifest does not describe its graphs is refused at load
        instead of giving silently wrong results (the C++ runtime's ``check_signature``,
        csrc/runtime/backend.cpp, checks the same).

        Raises:
          ManifestError: names, directions, dtypes, ranks or fixed sizes differ (the
            bundle is closed first)."""
        actual = self._signature()
        if actual is None:
            return
        problems = _signature_problems(self.info, actual)
        if problems:
            self.close()
            raise ManifestError(
                f"{self.name}/{self.graph}: the manifest does not describe the graph file: "
                + "; ".join(problems),
                hint="re-export the bundle; a manifest must not be edited by hand",
            )

    def _open(self, bundle: Bundle, device: str | None) -> None:
        """Open the graph; subclasses add their options as keyword-only parameters (the
        selection policy reads them from this signature)."""
        raise NotImplementedError

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        """Free the backend's resources (override where there are any)."""

    # -- running -------------------------------------------------------------------------
    def name_of(self, role: str) -> str:
        """The tensor name of contract role ``role`` (e.g. "feats") in this graph."""
        return self.info.name_of(role)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph.

        Arguments:
          feeds: input name -> array (dtype and rank as in the manifest).
        Returns:
          output name -> array (host memory, owned by the caller).
        Raises:
          InputError: feeds do not match the manifest's inputs (names, dtype, rank, sizes).
          BackendError: the backend is closed or its library failed.
        """
        if self._closed:
            raise BackendError(f"{self.name}/{self.graph}: run() after close()")
        checked = check_feeds(feeds, self.info.inputs, where=f"{self.name}/{self.graph}")
        if self.concurrent:
            return self._run(checked)
        with self._lock:
            return self._run(checked)

    def run_roles(
        self, feeds: Mapping[str, np.ndarray], *, check: bool = True
    ) -> dict[str, np.ndarray]:
        """Run the graph with inputs and outputs keyed by contract role ("image", "feats",
        "boxes" -> "feats", "mask_logits", ...) instead of tensor name: what the pipeline
        calls, so that no caller keeps a name map of its own.

        Arguments:
          feeds: role -> array.
          check: validate the feeds against the manifest (``run``'s checks). False only for
            arrays the caller made itself to the manifest's shapes (the Segmenter's
            letterboxed frame, an encoder's features), which were validated where they
            came from; they are still made C-contiguous.
        Raises:
          InputError: (``check``) feeds that do not match the manifest. BackendError: see
            ``run``.
        """
        named = {self.info.name_of(role): array for role, array in feeds.items()}
        if check:
            out = self.run(named)
        else:
            if self._closed:
                raise BackendError(f"{self.name}/{self.graph}: run() after close()")
            named = {n: np.ascontiguousarray(a) for n, a in named.items()}
            if self.concurrent:
                out = self._run(named)
            else:
                with self._lock:
                    out = self._run(named)
        return {role: out[name] for role, name in self._output_roles}

    def warmup(self, *, long_side: int = 320, stride: int = 8, runs: int = 1) -> None:
        """Run the graph ``runs`` times on zero inputs of a ``long_side`` square frame (first
        calls allocate and compile)."""
        feeds = example_feeds(self.info, long_side=long_side, stride=stride)
        for _ in range(runs):
            self.run(feeds)

    def settle(self, timeout: float | None = None) -> bool:  # noqa: ARG002 - interface; nothing runs in background here
        """Wait for work the backend does in the background (OpenVINO's static compiles of
        repeated shapes); True when none is left. Timing code calls it after warm-up."""
        return True

    def close(self) -> None:
        """Release the backend's resources; later ``run`` calls raise ``BackendError``."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def version(cls) -> str:
        """``"<registry name> <library> <version>"``, or why it is unavailable."""
        try:
            return f"{cls.name} {cls.library_version()}"
        except Exception as e:  # noqa: BLE001 - a missing or broken library: reported, not raised
            return f"{cls.name} (unavailable: {type(e).__name__}: {e})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(graph={self.graph!r}, device={self.device!r})"


def check_feeds(
    feeds: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], *, where: str
) -> dict[str, np.ndarray]:
    """Validate feeds against the manifest specs (names, dtype, rank, fixed dims) and return
    C-contiguous arrays.

    Raises:
      InputError: naming the offending input.
    """
    if not isinstance(feeds, Mapping):
        raise InputError(
            f"{where}: feeds must be a mapping name -> array, got {type(feeds).__name__}"
        )
    names = {s.name for s in specs}
    missing = sorted(names - set(feeds))
    extra = sorted(set(feeds) - names)
    if missing or extra:
        raise InputError(
            f"{where}: feeds {sorted(feeds)} do not match the inputs "
            f"{[s.name for s in specs]} (missing {missing}, unexpected {extra})"
        )
    out = {}
    for s in specs:
        a = feeds[s.name]
        if not isinstance(a, np.ndarray):
            raise InputError(
                f"{where}: input {s.name!r} must be a numpy array, got {type(a).__name__}"
            )
        if a.dtype != np.dtype(s.dtype):
            raise InputError(f"{where}: input {s.name!r} has dtype {a.dtype}, expected {s.dtype}")
        if a.ndim != len(s.shape):
            raise InputError(
                f"{where}: input {s.name!r} has shape {a.shape}, expected rank "
                f"{len(s.shape)} {list(s.shape)}"
            )
        for i, (got, want) in enumerate(zip(a.shape, s.shape)):
            if isinstance(want, int) and got != want:
                raise InputError(
                    f"{where}: input {s.name!r} has shape {a.shape}; axis {i} "
                    f"must be {want} (manifest shape {list(s.shape)})"
                )
        if a.size == 0:
            raise InputError(f"{where}: input {s.name!r} is empty (shape {a.shape})")
        out[s.name] = np.ascontiguousarray(a)
    return out


def example_feeds(
    info: GraphInfo, *, long_side: int, stride: int, prompts: int = 1
) -> dict[str, np.ndarray]:
    """Zero / in-range inputs for ``info``'s graph at a ``long_side`` square input: the image
    (B=1), features of the grid it gives, and ``prompts`` boxes in the input's centre."""
    axes = {"B": 1, "H": long_side, "W": long_side, "P": prompts}
    feeds = {}
    for t in info.inputs:
        shape = []
        for d in t.shape:
            if isinstance(d, int):
                shape.append(d)
            elif d in axes:
                shape.append(axes[d])
            else:  # "H/8"-style feature grid
                shape.append(long_side // stride)
        if t.role == "boxes":
            c = long_side / 2
            box = np.array(
                [c - long_side / 8, c - long_side / 8, c + long_side / 8, c + long_side / 8]
            )
            feeds[t.name] = np.broadcast_to(box, shape).astype(np.float32)
        else:
            feeds[t.name] = np.zeros(shape, dtype=np.dtype(t.dtype))
    return feeds


class Port(NamedTuple):
    """One tensor of an opened graph file, as a backend reads it before running."""

    direction: str  # "input" or "output"
    dtype: str | None  # numpy name; None where the backend cannot tell
    shape: tuple[int | None, ...]  # None: a dynamic axis


def _signature_problems(info: GraphInfo, actual: Mapping[str, Port]) -> list[str]:
    """What differs between a graph's manifest entry and the opened file's ports."""
    listed = [("input", t) for t in info.inputs] + [("output", t) for t in info.outputs]
    names = [t.name for _, t in listed]
    problems = [
        f"{n}: listed twice in the manifest"
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    missing, extra = sorted(set(names) - set(actual)), sorted(set(actual) - set(names))
    if missing or extra:
        problems.append(f"tensor names differ (manifest only {missing}, graph only {extra})")
    for direction, spec in listed:
        got = actual.get(spec.name)
        if got is None:
            continue
        if got.direction != direction:
            problems.append(
                f"{spec.name}: an {got.direction} of the graph, an {direction} in the manifest"
            )
        if got.dtype is not None and got.dtype != spec.dtype:
            problems.append(f"{spec.name}: {got.dtype} in the graph, {spec.dtype} in the manifest")
        if len(spec.shape) != len(got.shape):
            problems.append(
                f"{spec.name}: rank {len(got.shape)} in the graph, {len(spec.shape)} in the manifest"
            )
            continue
        for axis, (w, g) in enumerate(zip(spec.shape, got.shape)):
            if isinstance(w, int) and g is not None and w != g:
                problems.append(
                    f"{spec.name}: axis {axis} is {g} in the graph, {w} in the manifest"
                )
    return problems
