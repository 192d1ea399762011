"""Reading files the SDK takes as data (manifests, graphs, checkpoints, class embeddings,
calibration images): only regular files, refused before anything blocks or is allocated.

A named pipe, a character device or a socket named like ``x.png`` would block ``open()``
(a FIFO waits for a writer) or stream forever; a directory or a huge file would fail late or
fill memory. ``open_regular`` opens with ``O_NONBLOCK`` (which never waits on a FIFO), checks
the opened descriptor with ``fstat`` (no race with a swapped path) and, with ``max_bytes``,
its size, before one byte is read. The C++ runtime does the same in
``csrc/runtime/files.hpp`` (``RegularFile``, ``read_regular``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import RapsamEdgeError

__all__ = ["file_kind", "open_regular", "read_regular", "require_regular"]


def file_kind(mode: int) -> str:
    """A word for what a ``st_mode`` describes ("a named pipe", "a directory", ...)."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, word in kinds:
        if test(mode):
            return word
    return "not a regular file"


def _limit_text(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


def open_regular(
    path: str | os.PathLike[str],
    what: str,
    error: type[RapsamEdgeError],
    *,
    max_bytes: int | None = None,
    hint: str | None = None,
) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file of at most ``max_bytes``.

    Arguments:
      path: the file (symbolic links are followed, as by ``open``).
      what: what the file is, for the message ("manifest", "calibration image").
      error: the ``RapsamEdgeError`` type to raise.
      max_bytes: largest size accepted (None: any).
      hint: the error's hint (None: the class default).
    Returns:
      The open file (the caller closes it).
    Raises:
      error: a missing or unreadable path, a named pipe / device / socket / directory
        (never opened in blocking mode), or a file over ``max_bytes``.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"{what} {str(p)!r}: cannot open ({e.strerror})", hint=hint) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(
                f"{what} {str(p)!r} is {file_kind(st.st_mode)}, not a regular file", hint=hint
            )
        if max_bytes is not None and st.st_size > max_bytes:
            raise error(
                f"{what} {str(p)!r} is {st.st_size} bytes, over the limit of "
                f"{_limit_text(max_bytes)}",
                hint=hint,
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str | os.PathLike[str],
    what: str,
    error: type[RapsamEdgeError],
    *,
    max_bytes: int | None = None,
    hint: str | None = None,
) -> bytes:
    """The bytes of a regular file (``open_regular``'s checks; the same arguments).

    Raises:
      error: as ``open_regular``, or a read that fails.
    """
    with open_regular(path, what, error, max_bytes=max_bytes, hint=hint) as f:
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as e:
            raise error(f"{what} {str(path)!r}: cannot read ({e.strerror})", hint=hint) from None
    if max_bytes is not None and len(data) > max_bytes:  # grew after the check
        raise error(
            f"{what} {str(path)!r} is over the limit of {_limit_text(max_bytes)}", hint=hint
        )
    return data


def require_regular(
    path: str | os.PathLike[str],
    what: str,
    error: type[RapsamEdgeError],
    *,
    max_bytes: int | None = None,
    hint: str | None = None,
) -> Path:
    """Check, without opening it, that ``path`` is a regular file (of at most ``max_bytes``),
    for files a library opens itself (OpenCV, ONNX Runtime, OpenVINO); the same arguments
    as ``open_regular``.

    Raises:
      error: a missing path, or one that is not a regular file or is too large.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise error(f"{what} {str(p)!r}: {e.strerror}", hint=hint) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {str(p)!r} is {file_kind(st.st_mode)}, not a regular file", hint=hint)
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(
            f"{what} {str(p)!r} is {st.st_size} bytes, over the limit of {_limit_text(max_bytes)}",
            hint=hint,
        )
    return p
