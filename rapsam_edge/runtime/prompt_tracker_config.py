"""Settings of the click-to-track tracker (``runtime.prompt_tracker``); the defaults live in
``contract/contract.json`` ("prompt_tracker"), the one home the C++ runtime reads too."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

from ..contract.shared import PROMPT_TRACKER_DEFAULTS as _D
from ..errors import ConfigError

__all__ = ["PromptTrackerConfig"]


@dataclass(frozen=True)
class PromptTrackerConfig:
    """Settings of a ``PromptTracker``; a bad value, or an unknown name, raises ConfigError
    naming it (these field names are the settings' public names; contract.json's keys of
    the same defaults differ for two: ``max_box_growth`` is ``max_growth``,
    ``min_mask_pixels`` is ``min_area``).

    Attributes:
      margin: the re-prompt box is the last mask's box enlarged by this fraction of its
        width / height on each side, >= 0.
      max_growth: a tracked object's box may grow by at most this fraction of its last
        width / height on each side per frame (against box creep), >= 0.
      search_margin: the same while the object is occluded or lost (a wider search), >=
        margin.
      min_score: least predicted IoU (the decoder's quality head) of a tracked mask, [0, 1].
      min_similarity: least cosine similarity of a tracked mask's appearance to the object's
        memory, [-1, 1].
      min_area: least pixels of a tracked mask, >= 1.
      max_occluded: failed frames in a row after which an occluded object is "lost", >= 1.
      momentum: weight of the old memory in its moving average, [0, 1].
      max_objects: most objects at once (None: the Segmenter's ``max_prompts``), in
        [1, max_prompts].
    """

    margin: float = float(_D["margin"])
    max_growth: float = float(_D["max_box_growth"])
    search_margin: float = float(_D["search_margin"])
    min_score: float = float(_D["min_score"])
    min_similarity: float = float(_D["min_similarity"])
    min_area: int = int(_D["min_mask_pixels"])
    max_occluded: int = int(_D["max_occluded"])
    momentum: float = float(_D["momentum"])
    max_objects: int | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(
                    f"PromptTrackerConfig.{name} must be {rule}, got {getattr(self, name)!r}",
                    hint="PromptTrackerConfig's docstring gives each setting's range",
                )

        def real(name: str, lo: float, hi: float) -> bool:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            return ok and bool(lo <= v <= hi)

        def whole(name: str, lo: int) -> bool:
            v = getattr(self, name)
            return isinstance(v, int) and not isinstance(v, bool) and v >= lo

        need(real("margin", 0, 10), "margin", "a number in [0, 10]")
        need(real("max_growth", 0, 10), "max_growth", "a number in [0, 10]")
        need(
            real("search_margin", 0, 10) and self.search_margin >= self.margin,
            "search_margin",
            "a number in [margin, 10]",
        )
        need(real("min_score", 0, 1), "min_score", "a number in [0, 1]")
        need(real("min_similarity", -1, 1), "min_similarity", "a number in [-1, 1]")
        need(whole("min_area", 1), "min_area", "an int >= 1")
        need(whole("max_occluded", 1), "max_occluded", "an int >= 1")
        need(real("momentum", 0, 1), "momentum", "a number in [0, 1]")
        need(
            self.max_objects is None or whole("max_objects", 1),
            "max_objects",
            "None or an int >= 1",
        )


def _named_settings(init: Any) -> Any:
    """``PromptTrackerConfig.__init__`` that refuses an unknown setting (a typo, or a
    contract.json key such as ``max_box_growth``) with a ConfigError listing the valid ones,
    where the dataclass's own ``__init__`` raises a bare TypeError."""

    @functools.wraps(init)
    def checked(self: PromptTrackerConfig, *args: Any, **kwargs: Any) -> None:
        names = [f.name for f in fields(PromptTrackerConfig)]
        unknown = [k for k in kwargs if k not in names]
        twice = [k for k in names[: len(args)] if k in kwargs]
        what = ""
        if unknown:
            what = f"unknown setting {', '.join(map(repr, unknown))}"
        elif len(args) > len(names):
            what = f"{len(args)} positional settings for {len(names)}"
        elif twice:
            what = f"{', '.join(twice)} given twice (by position and by name)"
        if what:
            raise ConfigError(
                f"PromptTrackerConfig: {what}; the settings are {', '.join(names)}",
                hint="PromptTrackerConfig's docstring gives each setting's range",
            )
        init(self, *args, **kwargs)

    return checked


setattr(PromptTrackerConfig, "__init__", _named_settings(PromptTrackerConfig.__init__))  # noqa: B010
