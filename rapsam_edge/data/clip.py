"""A synthetic video written as an MP4 file (the demo's sample clip)."""

from __future__ import annotations

from pathlib import Path

import cv2

from .video import generate_video


def write_clip(
    path: str | Path,
    *,
    seed: int,
    size: tuple[int, int] = (360, 480),
    length: int = 48,
    fps: float = 10.0,
) -> Path:
    """Generate a video (``generate_video``) and write it as MP4 (mp4v) to ``path``."""
    video = generate_video(seed, size=size, length=length)
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
