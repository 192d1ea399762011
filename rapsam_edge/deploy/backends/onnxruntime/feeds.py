"""Calibration feeds for ONNX Runtime INT8: checked against the graph's inputs
(``check_calibration``), served to ORT as a ``CalibrationDataReader`` (``FeedReader``), and
padded to one shape per input for the histogram calibrators (``uniform_feed_shapes``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ....errors import InputError
from .graph_prep import ort_quantization

__all__ = ["FeedReader", "check_calibration", "reader", "uniform_feed_shapes"]


def check_calibration(
    calibration: Sequence[Mapping[str, np.ndarray]], inputs: Mapping[str, str]
) -> list[dict[str, np.ndarray]]:
    """The feed list as plain dicts of contiguous arrays; names and dtypes checked."""
    if isinstance(calibration, Mapping) or not isinstance(calibration, Sequence):
        raise InputError(
            "calibration must be a sequence of feed dicts (input name -> numpy array), got "
            f"{type(calibration).__name__}"
        )
    if len(calibration) == 0:
        raise InputError("calibration is empty: at least one feed dict is needed")
    feeds = []
    for i, feed in enumerate(calibration):
        if not isinstance(feed, Mapping):
            raise InputError(f"calibration[{i}] must be a dict, got {type(feed).__name__}")
        missing = sorted(set(inputs) - set(feed))
        extra = sorted(set(feed) - set(inputs))
        if missing or extra:
            raise InputError(
                f"calibration[{i}] names {sorted(feed)} do not match the graph inputs "
                f"{sorted(inputs)} (missing {missing}, unknown {extra}); read the names from "
                "the manifest (GraphInfo.name_of)"
            )
        out = {}
        for name, dtype in inputs.items():
            arr = feed[name]
            if not isinstance(arr, np.ndarray):
                raise InputError(f"calibration[{i}][{name!r}] must be a numpy array")
            if arr.dtype != np.dtype(dtype):
                raise InputError(
                    f"calibration[{i}][{name!r}] is {arr.dtype}; the graph input is {dtype}"
                )
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise InputError(f"calibration[{i}][{name!r}] holds NaN or infinity")
            out[name] = np.ascontiguousarray(arr)
        feeds.append(out)
    return feeds


class FeedReader:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of feed dicts (name -> array).

    ``get_next`` returns the next feed and None after the last; ``rewind`` starts over (ORT
    calls ``get_next`` until None, once per calibration pass).
    """

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._feeds = [dict(f) for f in feeds]
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self._feeds)

    def __len__(self) -> int:
        return len(self._feeds)


def reader(feeds: Sequence[Mapping[str, np.ndarray]]) -> Any:
    base = ort_quantization().CalibrationDataReader

    class _Reader(FeedReader, base):  # ORT checks isinstance(reader, CalibrationDataReader)
        pass

    return _Reader(feeds)


def uniform_feed_shapes(feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime's histogram calibrators (entropy, percentile) stack every tensor over the
    calibration samples, so each tensor needs one shape. Inputs whose size varies along one
    axis between samples (the prompt decoder's ``boxes``: 1 x P x 4 with P prompts per
    frame) are filled up to the largest size by cycling their own entries, which repeats
    prompts but adds no new values. Inputs varying along several axes are returned as they
    are (the calibrator then reports the mismatch)."""
    if len(feeds) < 2:
        return feeds
    out = [dict(f) for f in feeds]
    for name in feeds[0]:
        shapes = [np.shape(f[name]) for f in feeds]
        if len({len(s) for s in shapes}) != 1 or len(set(shapes)) == 1:
            continue
        axes = [a for a in range(len(shapes[0])) if len({s[a] for s in shapes}) > 1]
        if len(axes) != 1:
            continue
        axis = axes[0]
        size = max(s[axis] for s in shapes)
        for f in out:
            n = f[name].shape[axis]
            if 0 < n < size:
                f[name] = np.take(f[name], np.arange(size) % n, axis=axis)
    return out
