"""Output files of the CLI verbs, checked: a verb says "wrote X" only when X exists and holds
what was written into it; otherwise it fails with an ``OutputError`` naming the file.

* ``check_output(path, what)`` before any work: the path is not a directory, its folder
  exists or can be made, its suffix is one the writer knows.
* ``write_image(path, image)``: ``cv2.imwrite``'s result checked, the file read back (its
  size in pixels).
* ``VideoOut``: an annotated video. The writer must open (``cv2.VideoWriter.isOpened``);
  each frame must have the writer's size: a frame of another size (a camera that switches
  resolution, a source whose frames change size mid-stream) is letterboxed to the first
  frame's size (aspect kept, black borders), with one WARNING saying so, instead of being
  dropped by OpenCV without a word. One file rather than one per size: the verbs promise one
  file, and players handle a size change inside an MP4 badly. ``close()`` checks the file:
  it exists, is not empty, opens as a video of that size with as many frames as were written.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from ..contract.files import file_kind
from ..contract.images import image_size
from ..errors import OutputError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_CODECS",
    "VideoOut",
    "check_output",
    "check_written",
    "write_image",
]

log = logging.getLogger(__name__)

#: video suffix -> FourCC codes tried in order (the first that opens is used)
VIDEO_CODECS: dict[str, tuple[str, ...]] = {".mp4": ("mp4v", "avc1"), ".avi": ("MJPG", "XVID")}
#: image suffixes ``write_image`` writes
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})


def check_output(path: Path, what: str, suffixes: frozenset[str] | None = None) -> Path:
    """Check an output path before any work, and make its folder.

    Arguments:
      path: the file to write. what: what it is, for the message ("the tracking video").
      suffixes: the suffixes allowed (lower case, with the dot); None: any.
    Returns:
      ``path``.
    Raises:
      OutputError: the path is a directory, its folder cannot be made (a file is in the
        way, no permission), or its suffix is not one of ``suffixes``.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputError(
            f"cannot write {what} {str(path)!r}: the suffix must be one of {sorted(suffixes)}",
            hint="pick a file name with one of those suffixes",
        )
    if path.is_dir():
        raise OutputError(f"cannot write {what} {str(path)!r}: it is a directory")
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None  # missing (or a dangling link): written as a new file
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(  # a named pipe blocks the open until a reader comes; a device
            f"cannot write {what} {str(path)!r}: it is {file_kind(mode)}, not a regular file",
            hint="name a regular file (or a new one)",
        )
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"cannot write {what} {str(path)!r}: {str(blocker)!r} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot write {what} {str(path)!r}: its folder cannot be made ({e.strerror or e})"
        ) from None
    return path


def check_written(path: Path, what: str) -> Path:
    """After writing ``path``: it is a regular file and not empty (what every "wrote X"
    stands on).

    Raises:
      OutputError: it is missing, empty or not a regular file."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        state = "is missing" if not path.exists() else "is empty or not a file"
        raise OutputError(f"{what} {str(path)!r} {state} after writing it")
    return path


def write_image(path: Path, image: np.ndarray, what: str = "the image") -> Path:
    """Write ``image`` (H x W x 3 uint8 BGR) to ``path`` and check the file: it exists, is
    not empty and its header declares an H x W image.

    Raises:
      OutputError: OpenCV cannot write it (unknown suffix, unwritable path), or the file is
        missing, empty or of another size afterwards."""
    path = check_output(path, what, IMAGE_SUFFIXES)
    try:
        ok = cv2.imwrite(str(path), np.ascontiguousarray(image))
    except cv2.error as e:
        raise OutputError(f"cannot write {what} {str(path)!r}: {str(e).strip()}") from None
    if not ok:
        raise OutputError(f"cannot write {what} {str(path)!r}: OpenCV's imwrite failed")
    check_written(path, what)
    # the written file's own header (no second full-size decode: a frame at the frame limit
    # is 201 MB as BGR)
    with open(path, "rb") as f:
        header = image_size(f.read())
    back = None if header is None else (header[2], header[1])  # (h, w)
    if back is None or back != image.shape[:2]:
        got = "unreadable" if back is None else f"{back[1]} x {back[0]}"
        raise OutputError(
            f"{what} {str(path)!r} reads back as {got}, "
            f"{image.shape[1]} x {image.shape[0]} was written"
        )
    return path


def _letterbox(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``frame`` scaled to fit ``hw`` (aspect kept), centred on black."""
    h, w = hw
    fh, fw = frame.shape[:2]
    scale = min(h / fh, w / fw)
    nh, nw = max(1, round(fh * scale)), max(1, round(fw * scale))
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y : y + nh, x : x + nw] = resized
    return out


class VideoOut:
    """An annotated video, written frame by frame and checked (see the module doc).

    Arguments:
      path: a ``.mp4`` or ``.avi`` file (``VIDEO_CODECS``); checked at construction.
      fps: frames per second of the file.
      what: what it is, for messages ("the tracking video").
    Raises:
      OutputError: at construction, a bad path (``check_output``); at the first ``write``,
        no codec of the suffix opens here; at ``close``, the file is not what was written.
    """

    def __init__(self, path: Path, fps: float = 10.0, what: str = "the video") -> None:
        self.path = check_output(Path(path), what, frozenset(VIDEO_CODECS))
        self.fps = float(fps)
        self.what = what
        self.size: tuple[int, int] | None = None  # (H, W) of the first frame
        self.frames = 0
        self.letterboxed = 0  # frames of another size, letterboxed to ``size``
        self._writer: cv2.VideoWriter | None = None

    def _open(self, hw: tuple[int, int]) -> cv2.VideoWriter:
        codecs = VIDEO_CODECS[self.path.suffix.lower()]
        for code in codecs:
            writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter.fourcc(*code), self.fps, (hw[1], hw[0])
            )
            if writer.isOpened():
                return writer
            writer.release()
        raise OutputError(
            f"cannot write {self.what} {str(self.path)!r}: OpenCV's video writer does not "
            f"open it (FourCC {', '.join(codecs)}, {hw[1]} x {hw[0]})",
            hint="check that the folder is writable; OpenCV builds without FFmpeg write "
            "only .avi (MJPG)",
        )

    def write(self, frame: np.ndarray) -> None:
        """Append one H x W x 3 uint8 BGR frame (letterboxed to the first frame's size when
        its size differs)."""
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        if self._writer is None:
            self._writer = self._open(hw)
            self.size = hw
        elif hw != self.size:
            if not self.letterboxed:
                log.warning(
                    "%s: frame %d is %d x %d, the video %d x %d: frames of another size are "
                    "letterboxed to the first frame's size",
                    self.path,
                    self.frames,
                    hw[1],
                    hw[0],
                    self.size[1] if self.size else 0,
                    self.size[0] if self.size else 0,
                )
            self.letterboxed += 1
            frame = _letterbox(frame, self.size or hw)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def release(self) -> None:
        """Close the writer without checking the file (after a failure elsewhere)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def close(self) -> Path:
        """Close the writer and check the file: it exists, is not empty, opens as a video of
        the first frame's size holding every frame written.

        Raises:
          OutputError: no frame was written, or the file is not what was written."""
        self.release()
        if self.frames == 0:
            raise OutputError(f"{self.what} {str(self.path)!r}: no frame to write")
        check_written(self.path, self.what)
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok, first = cap.read() if cap.isOpened() else (False, None)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        finally:
            cap.release()
        if not ok or first is None or first.shape[:2] != self.size:
            raise OutputError(f"{self.what} {str(self.path)!r} does not read back as a video")
        if count > 0 and count != self.frames:  # <= 0: the container does not say
            raise OutputError(
                f"{self.what} {str(self.path)!r} holds {count} frames, {self.frames} were written"
            )
        return self.path

    def __enter__(self) -> VideoOut:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
