"""Constants the exporter, the training side and the runtime must agree on (torch-free):
post-processing defaults, the point-prompt box and the segment record. The numbers come
from ``contract.json`` (``shared``), which the C++ side reads too."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .shared import (
    OVERLAP_THRESHOLD,
    POINT_BOX_HALF,
    PROMPT_THRESHOLD,
    SATURATED_LOGIT,
    SCORE_THRESHOLD,
)

__all__ = ["POINT_BOX_HALF", "SATURATED_LOGIT", "SEGMENT_DTYPE", "PostprocessDefaults"]

#: One record per panoptic segment (C-aligned, so the C++ struct has the same layout).
SEGMENT_DTYPE = np.dtype(
    [
        ("id", "<i4"),
        ("class", "<i4"),
        ("query", "<i4"),
        ("score", "<f4"),
        ("area", "<i8"),
        ("is_thing", "?"),
    ],
    align=True,
)


@dataclass(frozen=True)
class PostprocessDefaults:
    """Post-processing thresholds a bundle ships (manifest ``postprocess``).

    Attributes:
      score_threshold: a query makes a panoptic segment when its best class probability
        (softmax over C + 1, no-object excluded) exceeds this (MaskFormer's inference,
        ``object_mask_threshold`` in RAP-SAM's config).
      overlap_threshold: a kept query's visible area / its full mask area must reach this
        (MaskFormer's ``overlap_threshold``).
      prompt_threshold: a prompt mask pixel is on where its logit exceeds this (0 =
        probability 0.5).
    """

    score_threshold: float = SCORE_THRESHOLD
    overlap_threshold: float = OVERLAP_THRESHOLD
    prompt_threshold: float = PROMPT_THRESHOLD

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
