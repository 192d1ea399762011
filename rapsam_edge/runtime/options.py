"""``SegmenterOptions``: every setting of a ``Segmenter`` with its default and its check, in
one place. The constructor validates what needs no bundle; ``resolve(bundle)`` fills the
bundle's defaults (input size, thresholds) and checks what depends on the bundle (the pad
divisor). ``load_segmenter_bundle`` checks the ``bundle`` argument itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle, load_bundle
from ..contract.graphs import GRAPH_NAMES
from ..contract.postprocess import PostprocessDefaults
from ..contract.shared import MAX_PROMPTS
from ..errors import BundleError, ConfigError
from .base import check_device
from .tracker import TrackerConfig

__all__ = [
    "COLOR_ORDERS",
    "MAX_INPUT_SIZE",
    "MAX_PROMPTS",
    "SegmenterOptions",
    "load_segmenter_bundle",
]

#: largest network input side accepted for ``input_size``
MAX_INPUT_SIZE = 4096
#: the colour orders frames may come in
COLOR_ORDERS = ("RGB", "BGR")


def _number(name: str, value: Any, *, unit: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    if unit and not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value}")
    return value


@dataclass(frozen=True)
class SegmenterOptions:
    """The settings of a ``Segmenter`` (its keyword arguments; see ``Segmenter.__init__``).

    None means "the bundle's value" for ``input_size`` and the thresholds (``resolve``
    fills them) and "each backend's default" for ``device``.

    Raises (at construction):
      ConfigError: an invalid setting, named.
    """

    backend: str | Mapping[str, str] = "auto"
    device: str | None = None
    color_order: str = "RGB"
    input_size: int | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    score_threshold: float | None = None
    overlap_threshold: float | None = None
    prompt_threshold: float | None = None
    max_prompts: int = MAX_PROMPTS
    backend_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.color_order not in COLOR_ORDERS:
            raise ConfigError(f"color_order must be 'RGB' or 'BGR', got {self.color_order!r}")
        if not isinstance(self.tracker, TrackerConfig):
            raise ConfigError(f"tracker must be a TrackerConfig, got {type(self.tracker).__name__}")
        m = self.max_prompts
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= MAX_PROMPTS:
            raise ConfigError(
                f"max_prompts must be an int in [1, {MAX_PROMPTS}], got {m!r}",
                hint="split a larger batch of prompts over several prompt() calls",
            )
        object.__setattr__(self, "max_prompts", int(m))
        check_device(self.device)
        if not isinstance(self.backend_options, Mapping):
            raise ConfigError(
                f"backend_options must be a mapping, got {type(self.backend_options).__name__}"
            )
        object.__setattr__(self, "backend_options", dict(self.backend_options))
        size = self.input_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))):
            raise ConfigError(f"input_size must be an int, got {type(size).__name__} {size!r}")

    def resolve(self, bundle: Bundle) -> SegmenterOptions:
        """These options with the bundle's defaults filled in and checked against it.

        Raises:
          ConfigError: ``input_size`` not a positive multiple of the bundle's pad divisor up
            to ``MAX_INPUT_SIZE``; a threshold that is not a finite number (score and
            overlap thresholds: in [0, 1])."""
        pad = bundle.input.pad_divisor
        size = bundle.input.long_side if self.input_size is None else self.input_size
        if not 0 < size <= MAX_INPUT_SIZE or size % pad:
            raise ConfigError(
                f"input_size must be a positive multiple of {pad} up to {MAX_INPUT_SIZE}, "
                f"got {size}"
            )
        defaults = bundle.postprocess

        def pick(name: str, *, unit: bool) -> float:
            value = getattr(self, name)
            return _number(name, getattr(defaults, name) if value is None else value, unit=unit)

        return dataclasses.replace(
            self,
            input_size=int(size),
            score_threshold=pick("score_threshold", unit=True),
            overlap_threshold=pick("overlap_threshold", unit=True),
            prompt_threshold=pick("prompt_threshold", unit=False),
        )

    @property
    def postprocess(self) -> PostprocessDefaults:
        """The thresholds (after ``resolve``)."""
        score, overlap, prompt = self.score_threshold, self.overlap_threshold, self.prompt_threshold
        if score is None or overlap is None or prompt is None:
            raise ConfigError(
                "SegmenterOptions.postprocess: call resolve(bundle) first",
                hint="Segmenter resolves its options against its bundle",
            )
        return PostprocessDefaults(
            score_threshold=score, overlap_threshold=overlap, prompt_threshold=prompt
        )


def load_segmenter_bundle(bundle: str | Path | Bundle | None) -> Bundle:
    """The ``bundle`` argument of ``Segmenter`` as a loaded bundle with every graph of the
    contract.

    Raises:
      ConfigError: another type, an empty name (``assets.resolve_bundle``). BundleError and subclasses: see ``load_bundle``; a bundle
        that lacks a graph the Segmenter runs.
    """
    if isinstance(bundle, Bundle):
        loaded = bundle
    elif bundle is None or isinstance(bundle, (str, Path)):
        loaded = load_bundle(bundle)
    else:
        raise ConfigError(
            "bundle must be a directory, a shipped bundle's name, a Bundle or None, "
            f"got {type(bundle).__name__}"
        )
    missing = [g for g in GRAPH_NAMES if g not in loaded.graphs]
    if missing:
        raise BundleError(f"bundle {loaded.name!r} lacks the graphs {missing} a Segmenter runs")
    return loaded
