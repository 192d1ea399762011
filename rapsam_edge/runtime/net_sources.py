"""Network video sources and GStreamer pipelines, checked before OpenCV sees them (torch-free;
OpenCV is imported only to ask which back-ends it has).

- URLs: ``rtsp://`` / ``rtsps://`` (a live camera) and ``http://`` / ``https://`` (a live
  stream, or a finite video file when its container declares a frame count), read through
  OpenCV's FFmpeg back-end with OpenCV's own open / read timeouts set. The scheme is matched
  case-insensitively. A URL is refused (``SourceUnavailable``) when it is longer than
  ``MAX_SOURCE_TEXT`` bytes, holds a character outside RFC 3986 (a space, a control
  character, a non-ASCII letter: percent-encode it), a malformed ``%`` escape, no host, an
  invalid host or a port outside 1..65535. Any other ``scheme://`` is refused naming the
  accepted ones; ``file://`` is refused deliberately (give the path itself).
- GStreamer pipelines: a string holding `` ! `` whose last element is ``appsink`` (OpenCV's
  own pipeline syntax, e.g. ``rtspsrc location=rtsp://cam/1 latency=0 ! decodebin !
  videoconvert ! appsink``), read through OpenCV's GStreamer back-end; refused with a
  ``SourceUnavailable`` saying what to do when this OpenCV has none (the pip wheels have
  none). A pipeline runs as given (GStreamer elements can read and write files): pass only
  pipelines you trust.
- ``mask``: the text shown in messages and logs: the user and password of every URL, every
  query value and the ``user-id`` / ``user-pw`` / ``password`` properties of a pipeline are
  replaced by ``***``. Nothing here runs a shell.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from ..contract import shared
from ..errors import SourceUnavailable

__all__ = [
    "ACCEPTED",
    "CAP_FFMPEG",
    "CAP_GSTREAMER",
    "MAX_SOURCE_TEXT",
    "backend_available",
    "check_pipeline",
    "check_url",
    "is_pipeline",
    "mask",
    "names_stream",
    "scheme_of",
]

#: longest URL or pipeline accepted, in UTF-8 bytes (contract.json: the C++ example's too)
MAX_SOURCE_TEXT = shared.MAX_SOURCE_TEXT
#: OpenCV's ``cv2.CAP_FFMPEG`` and ``cv2.CAP_GSTREAMER`` (stable values; tests check them)
CAP_FFMPEG = 1900
CAP_GSTREAMER = 1800
#: URL scheme -> source kind (contract.json: rtsp, rtsps -> "rtsp"; http, https -> "http")
SCHEMES = shared.URL_SCHEMES
#: what a source may be, for messages
ACCEPTED = (
    ", ".join(f"{scheme}://" for scheme in SCHEMES)
    + " URLs, a GStreamer pipeline ending in '! appsink', a video file path or a camera index"
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
#: user:password@ after a scheme, also where a slash is missing ('rtsp:/user:pw@host'): up to
#: the LAST '@' of the word, as a password may hold '@', '/', '?' or '#' unescaped
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:/*)[^\s\"']*@")
_QUERY_VALUE = re.compile(r"([?&;][^=&;#\s]*=)[^&;#\s]*")
_PIPELINE_SECRET = re.compile(
    r"\b(user-id|user-pw|user|password|passwd|pass|pwd)=(\"[^\"]*\"|[^\s&;#]+)"
)


def scheme_of(text: str) -> str | None:
    """The lower-cased scheme of ``text`` when it starts with ``scheme://``, else None."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def is_pipeline(text: str) -> bool:
    """Whether ``text`` is a GStreamer pipeline: it holds `` ! `` and its last element is
    ``appsink`` (with or without properties)."""
    if " ! " not in text:
        return False
    last = text.rsplit("!", 1)[1].split()
    return bool(last) and last[0] == "appsink"


def names_stream(text: str) -> bool:
    """Whether ``text`` names a URL or a pipeline (not a file path): ``scheme://...`` or a
    pipeline. Such a text is checked by ``check_url`` / ``check_pipeline`` (``classify``)."""
    return scheme_of(text) is not None or is_pipeline(text)


def mask(text: str) -> str:
    """``text`` with the credentials of its URLs (user and password, query values) and of a
    pipeline's properties replaced by ``***``: the form shown in messages and logs."""
    text = _USERINFO.sub(r"\1***@", text)
    text = _QUERY_VALUE.sub(r"\1***", text)
    return _PIPELINE_SECRET.sub(r"\1=***", text)


def _hide_netloc(text: str) -> str:
    """``text`` masked, its whole host part (credentials, host, port) replaced by ``***``."""
    head, _, after = text.partition("://")
    cut = min([after.find(c) for c in "/?#" if c in after], default=len(after))
    return mask(f"{head}://***{after[cut:]}")


def _refuse(text: str, why: str, hint: str) -> SourceUnavailable:
    return SourceUnavailable(f"video source {mask(text)!r} refused: {why}", hint=hint)


def _check_text(text: str, what: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_TEXT:
        raise SourceUnavailable(
            f"video source {what} of {size} bytes refused: at most {MAX_SOURCE_TEXT} bytes",
            hint=f"give a shorter {what}",
        )
    if not text.isprintable():
        raise _refuse(text, f"the {what} holds a control character", f"give the {what} on one line")


def _check_host(text: str, host: str | None) -> None:
    if not host:
        raise _refuse(text, "the URL names no host", "write it as scheme://HOST[:PORT]/PATH")
    if host.startswith("[") or ":" in host:  # an IPv6 literal (urlsplit strips the brackets)
        try:
            ipaddress.IPv6Address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            raise _refuse(text, f"{host!r} is not an IPv6 address", "check the host") from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse(text, "the URL's host is not a host name or address", "check the host")


def check_url(text: str) -> str:
    """The kind ("rtsp" or "http") of the URL ``text``, after checking it (module doc).

    Raises:
      SourceUnavailable: an unknown scheme (naming the accepted ones), ``file://``, or a
        malformed URL; its message shows the URL masked (``mask``)."""
    _check_text(text, "URL")
    scheme = scheme_of(text)
    if scheme == "file":
        raise _refuse(
            text,
            "file:// URLs are not taken",
            f"give the file's path itself ({text[len('file://') :]!r} for a local file)",
        )
    if scheme is None or scheme not in SCHEMES:
        raise _refuse(text, f"the scheme {scheme!r} is not taken", f"give one of: {ACCEPTED}")
    if not _URL_CHARS.fullmatch(text):
        bad = sorted({c for c in text if not _URL_CHARS.fullmatch(c)})
        raise _refuse(
            text,
            f"the URL holds characters outside RFC 3986 ({''.join(bad)!r})",
            "percent-encode spaces and other characters (' ' -> %20)",
        )
    if _BAD_ESCAPE.search(text):
        raise _refuse(text, "the URL holds a malformed % escape", "write % as %25")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port out of range or not a number, a bad IPv6 literal
        # shown without its host and port: 'rtsp://admin:secret/x' (no '@') parses as a
        # host and port that are in fact credentials
        raise SourceUnavailable(
            f"video source {_hide_netloc(text)!r} refused: "
            "malformed URL (a port that is not a number in 1..65535, or a bad [IPv6] host)",
            hint="write it as scheme://[USER:PASSWORD@]HOST[:PORT]/PATH",
        ) from None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if port == 0 or netloc.endswith(":"):
        raise _refuse(text, "the URL's port is empty or 0", "give a port in 1..65535")
    _check_host(text, parts.hostname)
    return SCHEMES[scheme]


def backend_available(api: int) -> bool:
    """Whether this OpenCV has the video back-end ``api`` (a ``cv2.CAP_*``)."""
    import cv2

    return bool(cv2.videoio_registry.hasBackend(api))


def check_pipeline(text: str) -> None:
    """Check the GStreamer pipeline ``text`` (length, one line) and that this OpenCV can run
    it.

    Raises:
      SourceUnavailable: an over-long pipeline, a control character, or no GStreamer
        back-end in this OpenCV (the message says what to do)."""
    _check_text(text, "pipeline")
    if not backend_available(CAP_GSTREAMER):
        import cv2

        raise SourceUnavailable(
            f"GStreamer pipeline {mask(text)!r} cannot be opened: this OpenCV "
            f"({cv2.__version__}) has no GStreamer back-end (its Video I/O is listed by "
            "cv2.getBuildInformation())",
            hint="use an OpenCV built with GStreamer (cmake -DWITH_GSTREAMER=ON; the pip "
            "opencv-python wheels have none), or give the camera's rtsp:// or http:// URL "
            "instead, which OpenCV's FFmpeg back-end reads",
        )
