"""What every verb checks before it does any work: numeric options at parse time (argparse
``type=`` functions: a bad value is argparse's usage error, exit 2) and input paths up front
(``require``: a typed error with a hint, one line, exit 2, before any model is loaded).

Bounds: image sizes (one side) are ``SIDE_MIN``..``SIDE_MAX`` pixels; counts are >= 1 where
zero would do nothing, >= 0 where zero has a meaning the option's help names.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from ..contract.files import file_kind
from ..errors import ConfigError, MissingFileError
from ..runtime.source_kinds import DEFAULT_OPEN_TIMEOUT, DEFAULT_READ_TIMEOUT, MAX_TIMEOUT

__all__ = [
    "SIDE_MAX",
    "SIDE_MIN",
    "add_source_timeouts",
    "finite_float",
    "int_in",
    "nonneg_int",
    "positive_int",
    "require",
    "seconds",
    "side",
]

SIDE_MIN = 32  # smallest image side (pixels) a verb accepts: the network's stride
SIDE_MAX = 8192  # largest: beyond it one frame alone takes gigabytes


def int_in(low: int, high: int | None = None, what: str = "") -> Callable[[str], int]:
    """argparse type: an integer in [low, high] (high None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"{what or 'the value'} must be {span}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


positive_int = int_in(1)
nonneg_int = int_in(0)
side = int_in(SIDE_MIN, SIDE_MAX, what="an image side in pixels")


def finite_float(text: str) -> float:
    """argparse type: a finite float (no nan / inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


finite_float.__name__ = "float"


def require(path: str | Path | None, option: str, kind: str = "any") -> None:
    """Check an input path the user gave (None: not given, nothing to check).

    Arguments:
      path: the path. option: the option naming it, for the message (``--weights``).
      kind: "file", "dir" or "any" (either).
    Raises:
      MissingFileError: it does not exist. ConfigError: it is a file where a directory is
      needed, or the other way round.
    """
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        raise MissingFileError(
            f"{option} {str(path)!r} does not exist",
            hint=f"check the path given to {option} (`--help` says what it expects)",
        )
    if kind == "file" and not p.is_file():  # a directory, named pipe, device or socket
        raise ConfigError(
            f"{option} {str(path)!r} is {file_kind(p.stat().st_mode)}, not a regular file"
        )
    if kind == "dir" and not p.is_dir():
        what = "a file" if p.is_file() else file_kind(p.stat().st_mode)
        raise ConfigError(f"{option} {str(path)!r} is {what}, not a directory")


def seconds(text: str) -> float:
    """argparse type: seconds in (0, MAX_TIMEOUT]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0.0 < value <= MAX_TIMEOUT:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_TIMEOUT:g}] seconds, got {text}")
    return value


def add_source_timeouts(parser: argparse.ArgumentParser, scope: str = "") -> None:
    """``--open-timeout`` / ``--read-timeout`` of a verb that reads a video source
    (``SourceOptions``' two timeouts); ``scope`` starts their help (e.g. "videos / cameras: ")."""
    parser.add_argument(
        "--open-timeout",
        type=seconds,
        default=DEFAULT_OPEN_TIMEOUT,
        metavar="SECONDS",
        help=f"{scope}fail when the source does not open and give its first frame "
        "within this time (also per camera reconnect attempt; default %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        type=seconds,
        default=DEFAULT_READ_TIMEOUT,
        metavar="SECONDS",
        help=f"{scope}fail (a camera: reconnect) when no next frame comes within "
        "this time (default %(default)s)",
    )
