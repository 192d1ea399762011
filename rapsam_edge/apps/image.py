"""Images for ``rapsam-edge run``: which sources are images, reading one with a clear error,
and the segments of its panoptic result as text (class name and score per segment)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..contract.images import read_image_file
from ..errors import SourceError

if TYPE_CHECKING:
    from ..runtime.results import PanopticResult

__all__ = ["IMAGE_SUFFIXES", "is_image", "read_image", "segment_lines"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def is_image(source: str) -> bool:
    """Whether ``source`` names an image file (by its suffix)."""
    return Path(source).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str) -> np.ndarray:
    """H x W x 3 uint8 BGR pixels of the image file ``path``.

    Raises:
      SourceError: no such file, not a regular file (a named pipe is never opened), a header
        declaring more than ``MAX_IMAGE_PIXELS`` (checked before decoding), or not an image
        OpenCV can read.
    """
    data = read_image_file(path, "image", SourceError)
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise SourceError(f"cannot read image {path!r} (not an image file?)")
    return frame


def segment_lines(pan: PanopticResult) -> list[str]:
    """One line per segment of a ``PanopticResult``, highest score first: its id, class name
    (thing or stuff), score and area in pixels."""
    order = np.argsort(-pan.segments["score"], kind="stable")
    lines = []
    for seg in pan.segments[order]:
        kind = "thing" if seg["is_thing"] else "stuff"
        lines.append(
            f"  segment {int(seg['id'])}: {pan.class_names[int(seg['class'])]} ({kind}), "
            f"score {float(seg['score']):.2f}, {int(seg['area'])} px"
        )
    return lines
