"""Calibration data: frames from a dataset on disk and the feeds each graph sees for them.

``calibration_frames(path)`` reads up to ``limit`` images, spread evenly over the sorted
files under ``path``: a COCO-panoptic root (its image folders; the ``panoptic_*`` label PNGs
are skipped), a YouTube-VIS root (``JPEGImages``; ``Annotations`` masks are skipped), a
``rapsam-edge make-data`` root (both), a folder of images, or one video file. ``graph_feeds``
runs the FP32 bundle on them exactly as the runtime does (letterbox, encoder; the encoder's
features for the decoders; point and box prompts for the prompt decoder), so each graph is
calibrated on the activations it meets in deployment.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...contract.files import require_regular
from ...contract.graphs import ENCODER, GRAPH_NAMES, PANOPTIC_DECODER, PROMPT_DECODER
from ...contract.postprocess import POINT_BOX_HALF
from ...data.imageio import decode_bgr
from ...errors import InputError, SourceError

__all__ = ["IMAGE_SUFFIXES", "calibration_frames", "graph_feeds"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
_CALIB_HINT = (
    "give --calib a folder of image files (PNG, JPEG, BMP, PPM, WebP, TIFF up to 8192 x 8192), "
    "a COCO-panoptic / YouTube-VIS / make-data root or a video file"
)
#: directory names holding labels, not images (COCO panoptic PNGs, YouTube-VIS masks)
_LABEL_DIRS = ("panoptic", "annotations")


def _is_label(path: Path, root: Path) -> bool:
    return any(part.lower().startswith(_LABEL_DIRS) for part in path.relative_to(root).parts[:-1])


def calibration_frames(path: str | Path, *, limit: int = 64) -> list[np.ndarray]:
    """Up to ``limit`` frames, H x W x 3 uint8 RGB, from ``path`` (see the module doc).

    Raises:
      SourceError: ``path`` does not exist, holds no image, or an image is not a regular file,
        declares more than ``MAX_IMAGE_PIXELS`` in its header (checked before decoding) or
        cannot be decoded.
      InputError: ``limit`` < 1.
    """
    import cv2

    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a positive int, got {limit!r}")
    root = Path(path)
    if not root.exists():
        raise SourceError(f"calibration data {str(root)!r} does not exist")
    if not root.is_dir():  # a file: regular (a named pipe or device is refused, not opened)
        require_regular(root, "calibration data", SourceError, hint=_CALIB_HINT)
    if root.is_file() and root.suffix.lower() in VIDEO_SUFFIXES:
        from ...runtime.segmenter import open_source

        video, _ = open_source(root, "BGR")
        frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in itertools.islice(video, limit)]
        video.close()  # releases the capture
        if not frames:
            raise SourceError(f"calibration video {root} gave no frame")
        return frames
    files = (
        [root]
        if root.is_file()
        else sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and not _is_label(p, root)
        )
    )
    if not files:
        raise SourceError(
            f"no image under {root}",
            hint="give a folder of images, a COCO-panoptic or YouTube-VIS root",
        )
    picks = np.linspace(0, len(files) - 1, num=min(limit, len(files))).round().astype(int)
    frames = []
    for i in dict.fromkeys(picks.tolist()):
        # regular file, header within MAX_IMAGE_PIXELS, then decoded (never a FIFO opened)
        image = decode_bgr(files[i], "calibration image", SourceError, hint=_CALIB_HINT)
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return frames


def _prompt_boxes(frame_hw: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """1 x P x 4 float32 boxes in network-input pixels: 6 clicks (as the runtime feeds points)
    and 2 boxes, inside the frame."""
    h, w = frame_hw
    pts = rng.uniform([0.05 * w, 0.05 * h], [0.95 * w, 0.95 * h], size=(6, 2)) * scale
    clicks = np.concatenate([pts - POINT_BOX_HALF, pts + POINT_BOX_HALF], 1)
    xy = rng.uniform([0, 0], [0.6 * w, 0.6 * h], size=(2, 2))
    wh = rng.uniform([0.1 * w, 0.1 * h], [0.4 * w, 0.4 * h], size=(2, 2))
    boxes = np.concatenate([xy, xy + wh], 1) * scale
    return np.concatenate([clicks, boxes])[None].astype(np.float32)


def graph_feeds(
    bundle, frames: Sequence[np.ndarray], *, seed: int = 0, sizes: Sequence[int] | None = None
) -> dict[str, list[Mapping[str, np.ndarray]]]:
    """Per graph, one feed dict per frame (tensor names from the manifest).

    Arguments:
      bundle: the FP32 ``Bundle`` (its ONNX graphs run on ONNX Runtime here).
      frames: H x W x 3 uint8 RGB frames.
      sizes: network sides to calibrate at, frame i at ``sizes[i % len(sizes)]`` (a bundle
        that serves 320 and 640 is calibrated on the activations of both; default: the
        bundle's own side).
    Returns:
      {"encoder": [{image: 1 x Hp x Wp x 3 uint8}], "panoptic_decoder": [{feats: 1 x D x h x w}],
      "prompt_decoder": [{feats, boxes: 1 x 8 x 4}]}.
    """
    from ...runtime.segmenter import Segmenter

    segs = [
        Segmenter(bundle, "ort-cpu", color_order="RGB", input_size=size)
        for size in (sizes or [None])
    ]
    enc, pan, prm = (bundle.graphs[g] for g in GRAPH_NAMES)
    rng = np.random.default_rng(seed)
    out: dict[str, list[Mapping[str, np.ndarray]]] = {g: [] for g in bundle.graphs}
    for i, frame in enumerate(frames):
        seg = segs[i % len(segs)]
        prepared = seg.prepare(frame)
        feats = seg.graphs[ENCODER].run({enc.name_of("image"): prepared.image})[
            enc.name_of("feats")
        ]
        out[ENCODER].append({enc.name_of("image"): prepared.image})
        out[PANOPTIC_DECODER].append({pan.name_of("feats"): feats})
        boxes = _prompt_boxes(prepared.frame_hw, prepared.scale, rng)
        out[PROMPT_DECODER].append({prm.name_of("feats"): feats, prm.name_of("boxes"): boxes})
    for seg in segs:
        seg.close()
    return out
