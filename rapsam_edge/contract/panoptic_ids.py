"""COCO panoptic PNG id encoding: id = R + 256 * G + 256**2 * B (panopticapi convention,
``panopticapi/utils.py`` ``rgb2id`` / ``id2rgb``)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["id_to_rgb", "rgb_to_id"]


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 (RGB order) -> H x W int32 segment ids.

    Raises:
      InputError: ``rgb`` is not H x W x 3.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"rgb must be H x W x 3, got shape {rgb.shape}")
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """H x W integer segment ids (0 <= id < 2**24) -> H x W x 3 uint8 (RGB order).

    Raises:
      InputError: an id outside [0, 2**24).
    """
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 24):
        raise InputError("segment ids must lie in [0, 2**24) to fit a COCO panoptic PNG")
    ids = ids.astype(np.int64)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)
