"""Training data (numpy + OpenCV only; the trainer wraps it in torch).

Synthetic vocabulary (``classes``), procedural scenes and videos (``scenes``, ``video``), COCO
panoptic and YouTube-VIS writers/readers (``coco_panoptic``, ``ytvis``), dataset generation
(``generate.make_dataset``), prompt sampling (``prompts``) and augmentation (``augment``).
"""

from __future__ import annotations

from .augment import AugmentParams, apply_augment, augment, augment_clip, sample_augment
from .classes import CLASSES, NUM_CLASSES, STUFF_IDS, THING_IDS, ClassInfo, coco_categories
from .coco_panoptic import CocoPanopticDataset, CocoPanopticWriter, PanopticSample
from .generate import make_dataset
from .prompts import Prompts, click_point, sample_prompts
from .scenes import Scene, SceneConfig, generate_scene
from .segments import Segment, refresh_segments, segment_stats
from .video import Video, VideoConfig, generate_video
from .ytvis import VideoInstance, VideoSample, YtvisDataset, YtvisWriter

__all__ = [
    "CLASSES",
    "NUM_CLASSES",
    "STUFF_IDS",
    "THING_IDS",
    "AugmentParams",
    "ClassInfo",
    "CocoPanopticDataset",
    "CocoPanopticWriter",
    "PanopticSample",
    "Prompts",
    "Scene",
    "SceneConfig",
    "Segment",
    "Video",
    "VideoConfig",
    "VideoInstance",
    "VideoSample",
    "YtvisDataset",
    "YtvisWriter",
    "apply_augment",
    "augment",
    "augment_clip",
    "click_point",
    "coco_categories",
    "generate_scene",
    "generate_video",
    "make_dataset",
    "refresh_segments",
    "sample_augment",
    "sample_prompts",
    "segment_stats",
]
