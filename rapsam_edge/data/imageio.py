"""RGB image files through OpenCV (which works in BGR), their header checked before decoding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..contract.images import read_image_file
from ..errors import DatasetError, RapsamEdgeError

# zlib level 1 + run-length strategy: measured fastest, and smallest, on our noisy images
_PNG_PARAMS = (
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
)
_JPEG_QUALITY = 95


def decode_bgr(
    path: str | Path,
    what: str,
    error: type[RapsamEdgeError],
    *,
    orient: bool = True,
    hint: str | None = None,
) -> np.ndarray:
    """Image file -> H x W x 3 uint8 BGR, its header checked before decoding
    (``contract.images.read_image_file``: regular file, known format, at most
    ``MAX_IMAGE_PIXELS``); ``orient`` False ignores the EXIF orientation; ``hint`` the error's
    hint (None: the error type's default).

    Raises:
      error: the header checks fail, or OpenCV cannot decode the file."""
    data = read_image_file(path, what, error, hint=hint)
    flags = cv2.IMREAD_COLOR | (0 if orient else cv2.IMREAD_IGNORE_ORIENTATION)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None:
        raise error(f"cannot decode {what} {str(path)!r} (damaged or unsupported image)", hint=hint)
    return bgr


def read_rgb(path: str | Path) -> np.ndarray:
    """Image file -> H x W x 3 uint8 RGB (grey / RGBA files converted; the EXIF orientation is
    ignored, as COCO's annotations are made on the stored pixel grid).

    Raises:
      DatasetError: not a regular image file, over ``MAX_IMAGE_PIXELS`` (from its header,
        before decoding), or not decodable."""
    bgr = decode_bgr(path, "image", DatasetError, orient=False)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb(path: str | Path, image: np.ndarray) -> None:
    """H x W x 3 uint8 RGB -> image file (format from the suffix: .png lossless, .jpg q95)."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 uint8, got {image.dtype} {image.shape}")
    suffix = path.suffix.lower()
    if suffix == ".png":
        params = list(_PNG_PARAMS)
    elif suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
    else:
        raise ValueError(f"unsupported image format {suffix!r}; use .png or .jpg")
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())
