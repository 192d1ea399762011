"""A synthetic video written as an MP4 file (the demo's sample clip), and the clip's ground
truth: the generator knows where every object is in every frame."""

from __future__ import annotations

from pathlib import Path

import cv2

from .video import Video, generate_video

#: how the shipped sample clip ``models/samples/synthetic_clip.mp4`` was made
#: (``write_clip(path, seed=SAMPLE_CLIP_SEED)`` with the default size and length)
SAMPLE_CLIP_SEED = 2024
#: (H, W) pixels of ``write_clip``'s frames by default
CLIP_SIZE = (360, 480)
#: frames of ``write_clip``'s clip by default
CLIP_LENGTH = 48


def clip_ground_truth(
    seed: int = SAMPLE_CLIP_SEED,
    *,
    size: tuple[int, int] = CLIP_SIZE,
    length: int = CLIP_LENGTH,
) -> Video:
    """The clip ``write_clip(path, seed=seed, size=size, length=length)`` writes, with its
    ground truth (the defaults give the shipped sample clip's).

    Returns:
      ``Video``: ``images`` T x H x W x 3 uint8 RGB (before MP4 compression), ``ids``
      T x H x W int32 segment ids (0 = void; an object keeps its id in every frame),
      ``segments`` per frame (``Segment``: id, class_id, is_thing, area in pixels, COCO bbox
      (x, y, w, h) in pixels), ``classes`` segment id -> class id.
    Raises:
      ValueError: ``length`` < 1.
    """
    return generate_video(seed, size=size, length=length)


def write_clip(
    path: str | Path,
    *,
    seed: int,
    size: tuple[int, int] = CLIP_SIZE,
    length: int = CLIP_LENGTH,
    fps: float = 10.0,
) -> Path:
    """Generate a video (``clip_ground_truth``) and write it as MP4 (mp4v, BGR) to ``path``.

    Arguments:
      path: the .mp4 file to write (parent directories are created).
      seed: the generator's seed (``SAMPLE_CLIP_SEED`` gives the shipped sample clip).
      size: (H, W) pixels; length: frames; fps: frames per second of the file.
    Returns:
      ``path`` as a Path.
    Raises:
      RuntimeError: OpenCV cannot write MP4 files here.
    """
    video = clip_ground_truth(seed, size=size, length=length)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MP4 files here ({path})")
    try:
        for frame in video.images:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
