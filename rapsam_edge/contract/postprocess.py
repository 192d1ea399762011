"""Constants the exporter, the training side and the runtime must agree on (torch-free):
post-processing defaults, the point-prompt box and the segment record."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["POINT_BOX_HALF", "SATURATED_LOGIT", "SEGMENT_DTYPE", "PostprocessDefaults"]

#: A point prompt (x, y) is fed as the box [x - 3, y - 3, x + 3, y + 3] in network-input
#: pixels (the prompt decoder takes boxes only; RAP-SAM's prompt encoder pools a box).
POINT_BOX_HALF: float = 3.0

#: A +/-inf logit from a reduced-precision graph (FP16 overflow, a saturated INT8 range) is a
#: definite decision (foreground / background, class present / absent), not an error for the
#: whole frame: the runtime replaces it by +/- this value (sigmoid and softmax are saturated
#: far below it in float32) before post-processing. NaN carries no decision and stays an
#: error (``BackendError`` naming the graph and tensor).
SATURATED_LOGIT: float = 1.0e4

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
        ``object_mask_threshold`` 0.8 in RAP-SAM's config).
      overlap_threshold: a kept query's visible area / its full mask area must reach this
        (MaskFormer's ``overlap_threshold`` 0.8).
      prompt_threshold: a prompt mask pixel is on where its logit exceeds this (0.0 =
        probability 0.5).
    """

    score_threshold: float = 0.8
    overlap_threshold: float = 0.8
    prompt_threshold: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
