"""The ``Backend`` protocol every runtime backend implements, plus shared feed checks.

A backend runs ONE graph of a bundle (``encoder``, ``panoptic_decoder`` or
``prompt_decoder``) on one device: ``run(feeds) -> outputs``, numpy in, numpy out, names as
in the manifest. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..bundle import TensorSpec

__all__ = ["Backend", "BackendUnavailable", "check_feeds"]


class BackendUnavailable(RuntimeError):
    """The backend's library, device or required file is missing on this machine."""


class Availability:
    """Mixin for backend classes: ``available`` from the class's ``unavailable_reason``."""

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        raise NotImplementedError

    @classmethod
    def available(cls, device: str | None = None) -> bool:
        return cls.unavailable_reason(device) is None


@runtime_checkable
class Backend(Protocol):
    """One graph on one device.

    Attributes:
      name: registry name (e.g. "ort-cpu", "openvino", "tensorrt").
      device: the device it runs on, in the backend's own words ("cpu", "CPU", "cuda:0",
        "GPU", ...).
      input_names / output_names: the graph's tensor names, in manifest order.
    """

    name: str
    device: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """feeds: input name -> array (dtype and rank as in the manifest) -> output name ->
        array (host memory, owned by the caller)."""
        ...


def check_feeds(
    feeds: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], *, where: str
) -> dict[str, np.ndarray]:
    """Validate feeds against the manifest specs (names, dtype, rank, fixed dims) and return
    C-contiguous arrays. Raises ValueError naming the offending input."""
    names = {s.name for s in specs}
    missing = sorted(names - set(feeds))
    extra = sorted(set(feeds) - names)
    if missing or extra:
        raise ValueError(
            f"{where}: feeds {sorted(feeds)} do not match the inputs "
            f"{[s.name for s in specs]} (missing {missing}, unexpected {extra})"
        )
    out = {}
    for s in specs:
        a = feeds[s.name]
        if not isinstance(a, np.ndarray):
            raise ValueError(
                f"{where}: input {s.name!r} must be a numpy array, got {type(a).__name__}"
            )
        if a.dtype != np.dtype(s.dtype):
            raise ValueError(f"{where}: input {s.name!r} has dtype {a.dtype}, expected {s.dtype}")
        if a.ndim != len(s.shape):
            raise ValueError(
                f"{where}: input {s.name!r} has shape {a.shape}, expected rank "
                f"{len(s.shape)} {list(s.shape)}"
            )
        for i, (got, want) in enumerate(zip(a.shape, s.shape)):
            if isinstance(want, int) and got != want:
                raise ValueError(
                    f"{where}: input {s.name!r} has shape {a.shape}; axis {i} "
                    f"must be {want} (manifest shape {list(s.shape)})"
                )
        out[s.name] = np.ascontiguousarray(a)
    return out
