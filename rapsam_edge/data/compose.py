"""In-place masked copies (cv2.copyTo on numpy views; 10x faster than boolean indexing)."""

from __future__ import annotations

import cv2
import numpy as np


def paste(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> None:
    """``dst[mask] = src[mask]`` in place; ``dst``/``src`` h x w (x C), ``mask`` h x w bool or
    uint8. ``dst`` may be a strided view (a crop of a larger image)."""
    m = mask.view(np.uint8) if mask.dtype == bool else mask
    out = cv2.copyTo(src, m, dst)
    if not np.shares_memory(out, dst):  # OpenCV could not wrap the view: copy back
        sel = m.astype(bool)
        dst[sel] = src[sel]
