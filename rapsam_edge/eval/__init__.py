"""Evaluation metrics (numpy only, no torch): panoptic quality, interactive click metrics,
video instance AP, and cross-precision agreement.

Units: PQ / SQ / RQ, mIoU and VIS AP / AR are in percent (as the RAP-SAM paper reports them),
NoC in clicks, agreement scores in fractions.
"""

from .agreement import label_map_agreement, mask_agreement, mask_ious
from .pq import PanopticQuality, pq_from_files
from .prompt_iou import (
    Click,
    ClickPredictor,
    InteractiveEval,
    click_at_max_distance,
    click_session,
    first_clicks,
    mask_iou,
    next_click,
    positive_only,
)
from .vis_ap import IOU_THRESHOLDS, VideoInstanceAP, tube_ious, vis_ap_from_json

__all__ = [
    "IOU_THRESHOLDS",
    "Click",
    "ClickPredictor",
    "InteractiveEval",
    "PanopticQuality",
    "VideoInstanceAP",
    "click_at_max_distance",
    "click_session",
    "first_clicks",
    "label_map_agreement",
    "mask_agreement",
    "mask_iou",
    "mask_ious",
    "next_click",
    "positive_only",
    "pq_from_files",
    "tube_ious",
    "vis_ap_from_json",
]
