"""Image files checked from their header before anything decodes them (issue 26).

A 400 KB PNG can declare 20000 x 20000 pixels (1.2 GB once decoded as BGR); OpenCV decodes
first and the SDK's size checks came after. ``read_image_file`` opens the file as
``files.open_regular`` does (a named pipe called ``x.png`` is refused, never waited on),
reads its width and height from the header (PNG IHDR, JPEG SOF, BMP, PPM / PGM / PBM, WebP,
TIFF), refuses more than ``limits.MAX_IMAGE_PIXELS`` or an unrecognised format, and only
then returns the bytes for ``cv2.imdecode``: the file is opened once, so what was checked is
what is decoded. Torch-free and OpenCV-free.
"""

from __future__ import annotations

import os
import re
import struct

from ..errors import RapsamEdgeError
from . import limits as L
from .files import open_regular

__all__ = ["image_size", "read_image_file"]

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNM = re.compile(rb"^P[1-6](?:\s+|#[^\n]*\n)+?(\d+)(?:\s+|#[^\n]*\n)+?(\d+)\s")


def _png(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF and i + 9 <= len(data):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if marker in (0xD9, 0xDA) or length < 2:  # end / start of scan before a frame header
            return None
        i += 2 + length
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    (size,) = struct.unpack("<I", data[14:18])
    if size == 12:  # OS/2 BITMAPCOREHEADER
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h)


def _pnm(data: bytes) -> tuple[int, int] | None:
    m = _PNM.match(data)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _webp(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    kind = data[12:16]
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    end = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if end is None:
        return None
    (ifd,) = struct.unpack(end + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(end + "H", data[ifd : ifd + 2])
    dims: dict[int, int] = {}
    for k in range(min(count, 512)):
        at = ifd + 2 + 12 * k
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack(end + "HH", data[at : at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            fmt = end + ("H" if kind == 3 else "I")
            dims[tag] = struct.unpack(fmt, data[at + 8 : at + 8 + struct.calcsize(fmt)])[0]
    return (dims[256], dims[257]) if len(dims) == 2 else None


_READERS = {"PNG": _png, "JPEG": _jpeg, "BMP": _bmp, "PNM": _pnm, "WebP": _webp, "TIFF": _tiff}


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from the first bytes of an image file (the whole header:
    JPEG's frame header may follow 64 KB segments, TIFF's IFD may be anywhere), or None for
    an unrecognised format or header."""
    for fmt, reader in _READERS.items():
        try:
            wh = reader(data)
        except (struct.error, ValueError, IndexError):
            wh = None
        if wh is not None:
            return fmt, wh[0], wh[1]
    return None


def read_image_file(
    path: str | os.PathLike[str],
    what: str,
    error: type[RapsamEdgeError],
    *,
    max_pixels: int = L.MAX_IMAGE_PIXELS,
    hint: str | None = None,
) -> bytes:
    """The bytes of an image file whose header was checked (module doc), for
    ``cv2.imdecode``.

    Raises:
      error: not a regular file, over ``MAX_IMAGE_BYTES``, an unrecognised format, a zero
        side, or width x height over ``max_pixels``.
    """
    with open_regular(path, what, error, max_bytes=L.MAX_IMAGE_BYTES, hint=hint) as f:
        try:
            data = f.read(L.MAX_IMAGE_BYTES + 1)
        except OSError as e:
            raise error(f"{what} {str(path)!r}: cannot read ({e.strerror})", hint=hint) from None
    found = image_size(data)
    if found is None:
        raise error(
            f"{what} {str(path)!r}: not a PNG, JPEG, BMP, PPM/PGM, WebP or TIFF image "
            "(or its header is damaged)",
            hint=hint,
        )
    fmt, w, h = found
    if w < 1 or h < 1 or w * h > max_pixels:
        raise error(
            f"{what} {str(path)!r}: its {fmt} header declares {w} x {h} pixels; the limit is "
            f"{max_pixels} pixels (MAX_IMAGE_PIXELS) and each side must be >= 1",
            hint=hint if hint is not None else "resize the image (8192 x 8192 at most)",
        )
    return data
