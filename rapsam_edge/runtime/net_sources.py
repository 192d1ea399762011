"""Network video sources and GStreamer pipelines, checked before OpenCV sees them (torch-free;
OpenCV is imported only to ask which back-ends it has).

- URLs: ``rtsp://`` / ``rtsps://`` (a live camera) and ``http://`` / ``https://`` (a live
  stream, or a finite video file when its container declares a frame count), read through
  OpenCV's FFmpeg back-end with OpenCV's own open / read timeouts set. The scheme is matched
  case-insensitively, and ``normalize_url`` writes the scheme and host in lower case (both
  case-insensitive, RFC 3986; FFmpeg takes only lower-case schemes) before OpenCV sees the
  URL: its user, password, port, path and query stay as given. A URL is refused (``SourceUnavailable``) when it is longer than
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
  replaced by ``***``. Nothing here runs a shell. A URL refused for its port shows its host
  and port when the port is digits only (at most 5: ``http://cam:99999/x``, ``:0``): a bad
  port number. A non-numeric "port" (or more than 5 digits) hides the whole host part
  (``rtsp://***/x``), as it is most likely a password whose ``@host`` was forgotten
  (``rtsp://admin:secret/x`` parses as host ``admin``, port ``secret``).
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
    "normalize_url",
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
#: a port shown in a message: digits only, at most 5 (anything else may be a password)
_PORT_NUMBER = re.compile(r"[0-9]{1,5}")
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


def _split_url(text: str) -> tuple[str, str, str, str | None, str]:
    """(``scheme://``, ``user:password@`` or "", host, port text or None, the rest from the
    path on), split as ``urllib.parse.urlsplit`` splits them (the host of ``[v6]`` keeps its
    brackets; everything after the first ':' of another host is its port)."""
    head, sep, after = text.partition("://")
    cut = min([after.find(c) for c in "/?#" if c in after], default=len(after))
    netloc, rest = after[:cut], after[cut:]
    userinfo, at, hostport = netloc.rpartition("@")
    if "[" in hostport:
        before, _, inside = hostport.partition("[")
        inner, close, port_part = inside.partition("]")
        host = f"{before}[{inner}{close}"
        port = port_part.partition(":")[2] if ":" in port_part else None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
    return head + sep, userinfo + at, host, port, rest


def normalize_url(text: str) -> str:
    """``text`` (a checked URL) with its scheme and host in lower case (both are
    case-insensitive: RFC 3986 6.2.2.1); the user, password, port, path, query and an IPv6
    zone id stay as given. OpenCV's FFmpeg back-end takes only lower-case schemes."""
    head, userinfo, host, port, rest = _split_url(text)
    address, pct, zone = host.partition("%")
    port_text = "" if port is None else f":{port}"
    return f"{head.lower()}{userinfo}{address.lower()}{pct}{zone}{port_text}{rest}"


def _check_port(text: str) -> None:
    """Refuse a URL whose port is empty, 0, out of 1..65535 or not a number: shown with its
    host and port when the port is a number (``_PORT_NUMBER``), else with the whole host
    part hidden (module doc: such a "port" is most likely a password)."""
    port = _split_url(text)[3]
    if port is None:
        return
    if port == "" or (_PORT_NUMBER.fullmatch(port) and int(port) == 0):
        raise _refuse(text, "the URL's port is empty or 0", "give a port in 1..65535")
    if _PORT_NUMBER.fullmatch(port):
        if int(port) > 65535:
            raise _refuse(
                text,
                f"the URL's port {port} is not in 1..65535",
                "give the server's port (rtsp's default is 554, http's 80, https' 443)",
            )
        return
    raise SourceUnavailable(
        f"video source {_hide_netloc(text)!r} refused: malformed URL (a port that is not a "
        "number in 1..65535; host and port hidden: such a 'port' is often a password whose "
        "'@host' is missing)",
        hint="write it as scheme://[USER:PASSWORD@]HOST[:PORT]/PATH",
    )


def _shown(text: str) -> str:
    """``text`` as a refusal shows it: masked (``mask``); a URL whose "port" is not a number
    of at most 5 digits also with its whole host part hidden (module doc), whatever fault
    it is refused for ('rtsp://admin:se cret/x' is refused for its space)."""
    if scheme_of(text) is None:
        return mask(text)  # a pipeline
    port = _split_url(text)[3]
    if port is None or port == "" or _PORT_NUMBER.fullmatch(port):
        return mask(text)
    return _hide_netloc(text)


def _refuse(text: str, why: str, hint: str) -> SourceUnavailable:
    return SourceUnavailable(f"video source {_shown(text)!r} refused: {why}", hint=hint)


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
    _check_port(text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises for what _check_port let through
    except ValueError:  # a bad [IPv6] literal ('[' cannot start a password: host shown)
        shown = mask(text) if _split_url(text)[2].startswith("[") else _hide_netloc(text)
        raise SourceUnavailable(
            f"video source {shown!r} refused: malformed URL (a bad [IPv6] host)",
            hint="write it as scheme://[USER:PASSWORD@]HOST[:PORT]/PATH",
        ) from None
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
