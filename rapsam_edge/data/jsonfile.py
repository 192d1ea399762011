"""One reader for the JSON files of datasets, annotations and results: every failure to read
or parse is a ``DatasetError`` naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DatasetError

__all__ = ["read_json"]


def read_json(path: str | os.PathLike, what: str = "JSON") -> Any:
    """Parse ``path`` (UTF-8 JSON).

    Raises:
      DatasetError: unreadable, not UTF-8 or not JSON ("PATH: cannot read WHAT (...)")."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{path}: cannot read {what} ({e})") from e
