"""One reader for the JSON files of datasets, annotations and results: every failure to read
or parse is a ``DatasetError`` naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..contract.files import read_regular
from ..contract.limits import MAX_DATASET_JSON_BYTES
from ..errors import DatasetError

__all__ = ["read_json"]


def read_json(path: str | os.PathLike, what: str = "JSON") -> Any:
    """Parse ``path`` (UTF-8 JSON), a regular file of at most ``MAX_DATASET_JSON_BYTES``
    (a named pipe or device is refused before it is opened: no read blocks).

    Raises:
      DatasetError: not a regular file, over the limit, unreadable, not UTF-8, not JSON or
        nested deeper than the parser's recursion limit ("PATH: cannot read WHAT (...)")."""
    raw = read_regular(Path(path), what, DatasetError, max_bytes=MAX_DATASET_JSON_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{path}: cannot read {what} ({e})") from e
    except RecursionError:
        raise DatasetError(f"{path}: cannot read {what} (JSON nested too deeply)") from None
