"""The SDK's error hierarchy (torch-free): every error rapsam-edge raises on purpose derives
from ``RapsamEdgeError``, so an application can catch the SDK's errors apart from its own.

    RapsamEdgeError
    ├── InputError (ValueError)            bad argument or data handed to the SDK
    │   ├── ConfigError                    bad constructor / CLI setting
    │   ├── DatasetError                   unreadable dataset / annotation file (names it)
    │   └── SourceError                    a camera, video file or frame source that cannot be read
    │       ├── SourceUnavailable              could not be opened (missing, refused, open timed out)
    │       ├── SourceStalled                  opened, but no frame came within the read timeout
    │       ├── SourceTruncated                a file / pipe ended before the frames it declares
    │       └── SourceLost                     a live source dropped; reconnecting failed
    ├── BundleError                        a model bundle that cannot be used
    │   ├── ManifestError (ValueError)     malformed manifest; the message names the field
    │   ├── ChecksumError                  a file's sha256 differs from the manifest's
    │   └── MissingFileError (FileNotFoundError)
    ├── BackendError (RuntimeError)        a runtime backend failed
    │   └── BackendUnavailable             its library, device or graph file is missing here
    ├── OutputError (OSError)              an output file could not be written, or came out
    │   │                                  other than it should (missing, empty, short)
    │   └── OutputExistsError (FileExistsError)  --out holds what may not be replaced
    └── MissingDependencyError (ImportError)  an optional dependency is not installed
        └── CoreUnavailableError           the compiled C++ core is missing and was required

``CoreFallbackWarning`` (a ``RuntimeWarning``) is emitted once when the ops run on the numpy
twins because the compiled core is missing or failed to load.

Every error carries a ``hint``: one line saying what to do (the CLI prints the message and
the hint, without a traceback unless ``--debug``). The class hints below are the fallback: a
``SourceError`` raised by ``runtime.capture`` carries its source kind's own hint
(``runtime.source_kinds.HINTS``: a URL's names the server, a pipe's its writer).
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "BundleError",
    "ChecksumError",
    "ConfigError",
    "CoreFallbackWarning",
    "CoreUnavailableError",
    "DatasetError",
    "InputError",
    "ManifestError",
    "MissingDependencyError",
    "MissingFileError",
    "OutputError",
    "OutputExistsError",
    "RapsamEdgeError",
    "SourceError",
    "SourceLost",
    "SourceStalled",
    "SourceTruncated",
    "SourceUnavailable",
]


class RapsamEdgeError(Exception):
    """Base of every error the SDK raises on purpose.

    Arguments:
      message: what went wrong (names the argument, field or file).
      hint: what to do about it (one line), or None for the class default.
    """

    #: default advice for this class of error (subclasses override)
    default_hint: str | None = (
        "`--debug` shows where it came from; the README lists what each command needs"
    )

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint if hint is not None else self.default_hint


class InputError(RapsamEdgeError, ValueError):
    """An argument or data handed to the SDK is invalid (wrong type, shape, dtype, range)."""

    default_hint = "the docstring of the call gives the expected shapes, dtypes and ranges"


class ConfigError(InputError):
    """A constructor or command-line setting is invalid (raised at construction time)."""

    default_hint = "`rapsam-edge COMMAND --help` (or the class docstring) lists the settings"


class SourceError(InputError):
    """A camera, video file or frame source cannot be opened or read."""

    default_hint = (
        "check the source: a camera index, a video file path, a URL or a pipeline "
        "(`rapsam-edge run --source ...`)"
    )


class SourceUnavailable(SourceError):
    """A video source could not be opened: missing, not a video, refused by OpenCV, or its
    open (and first frame) did not finish within the open timeout (a named pipe with no
    writer, a camera that does not answer)."""

    default_hint = (
        "check the source: a camera index, a video file path, a URL (server up and reachable, "
        "credentials) or a named pipe with a writer; `rapsam-edge run --open-timeout SECONDS` "
        "waits longer"
    )


class SourceStalled(SourceError):
    """A video source opened but gave no frame within the read timeout (a stalled pipe or
    writer, a hung network share); the message names the last frame read."""

    default_hint = (
        "check what feeds the source; `rapsam-edge run --read-timeout SECONDS` waits longer"
    )


class SourceTruncated(SourceError):
    """A video file or pipe ended before the frames its container declares (truncated,
    or still being written); the message names the frame it ended after."""

    default_hint = (
        "the source ended early: a file still being written or cut short (re-copy it), a "
        "pipe's writer or a connection that stopped"
    )


class SourceLost(SourceError):
    """A live source (a camera) stopped giving frames and every reconnect attempt of the
    back-off failed; the message gives the attempts and the time spent."""

    default_hint = (
        "the live source stopped: check the camera's cable / driver, or the server and the "
        "network for a URL; the stream reconnects within its back-off"
    )


class DatasetError(InputError):
    """A dataset, annotation or result file cannot be read (the message names the file and
    the field)."""

    default_hint = (
        "the readers take COCO panoptic and YouTube-VIS 2019 (native or mmdet / mmtracking "
        "video layout) files; see docs/training.md"
    )


class BundleError(RapsamEdgeError):
    """A model bundle cannot be used."""

    default_hint = "re-export the bundle (`rapsam-edge export`) or pass another one"


class ManifestError(BundleError, ValueError):
    """The manifest is malformed; the message names the field."""


class ChecksumError(BundleError):
    """A file's sha256 does not match the manifest (corrupt or modified file)."""


class MissingFileError(BundleError, FileNotFoundError):
    """A bundle, or a file its manifest lists, does not exist."""

    default_hint = (
        "pass a bundle directory (one holding manifest.json) or a shipped bundle's name; "
        "`rapsam-edge info` lists the shipped ones"
    )


class BackendError(RapsamEdgeError, RuntimeError):
    """A runtime backend failed to load or run a graph."""

    default_hint = "`rapsam-edge info` shows the backends and versions; --debug the traceback"


class BackendUnavailable(BackendError):
    """The backend's library, device or graph file is missing on this machine."""

    default_hint = "`rapsam-edge info` lists the backends usable here and why others are not"


class OutputError(RapsamEdgeError, OSError):
    """An output file (an annotated video or image, a report) could not be written, or is not
    what was written into it; the message names the file."""

    default_hint = "check the output path (a writable directory, a known file suffix)"


class OutputExistsError(OutputError, FileExistsError):
    """An output directory holds something the command may not replace (a bundle writer
    replaces a previous bundle only, and only when asked); the message names what."""

    default_hint = "choose another output directory"


class MissingDependencyError(RapsamEdgeError, ImportError):
    """An optional dependency is not installed."""

    default_hint = "install the extra the message names (README, Install)"


class CoreUnavailableError(MissingDependencyError):
    """The compiled C++ core (``rapsam_edge._core``) is missing or failed to load, and it was
    required (``RAPSAM_EDGE_OPS=cpp``)."""

    default_hint = (
        "reinstall with `pip install .` (needs a C++17 compiler and CMake), or set "
        "RAPSAM_EDGE_OPS=numpy to accept the slower numpy twins"
    )


class CoreFallbackWarning(RuntimeWarning):
    """The ops run on the numpy twins (20-100x slower) because the compiled core is missing
    or failed to load."""
