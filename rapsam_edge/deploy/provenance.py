"""What a bundle says about where it came from, without a path of the machine that wrote it.

A bundle is a file users share: its manifest names the weights, checkpoint, class files and
calibration data it was made from by file name and sha256 (``file_record``,
``weights_record``, ``frames_record``), never by a path of the converting machine (its home
directory, its temporary folder, its checkout). ``check_portable`` refuses a manifest (or a
``--provenance`` file) holding such a path; every bundle writer calls it
(``staging.write_manifest``) before the manifest is written.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..contract.files import open_regular
from ..errors import ConfigError, InputError

__all__ = [
    "check_portable",
    "file_record",
    "frames_record",
    "machine_paths",
    "weights_record",
]

#: first components of absolute paths on common systems, whether or not this machine has them
_ROOTS = frozenset(
    "bin boot data dev etc home lib media mnt opt private proc root run sbin scratch srv sys "
    "tmp Users usr var Volumes work workspace".split()
)
_TOKEN = re.compile(r"[^\s=,;'\"()\[\]{}<>|]+")
_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path, "provenance file", InputError) as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def file_record(path: str | Path) -> dict[str, str]:
    """{"name": the file's name, "sha256": its digest}: a file named without its folder."""
    p = Path(path)
    return {"name": p.name, "sha256": _sha256(p)}


def weights_record(weights: str | Path) -> dict[str, Any]:
    """The weights ``model.io.load_model`` reads (a run directory with ``model.safetensors``
    and ``config.json``, or the ``.safetensors`` file with ``config.json`` beside it): the
    run's name and the sha256 of each file read."""
    p = Path(weights)
    run = p.parent if p.suffix == ".safetensors" else p
    files = [p] if p.suffix == ".safetensors" else [run / "model.safetensors"]
    files.append(run / "config.json")
    return {"name": run.resolve().name, "files": {f.name: _sha256(f) for f in files if f.is_file()}}


def frames_record(name: str, frames: Sequence[Any]) -> dict[str, Any]:
    """Calibration data: the folder's (or file's) name, the frame count and the sha256 of
    the decoded frames (their bytes in order), which identifies the data without a path."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(memoryview(frame).tobytes())
    return {"name": name, "frames": len(frames), "sha256": h.hexdigest()}


def _machine_dirs() -> list[str]:
    """This machine's home, temporary and working directories (as text, no trailing /)."""
    found = []
    for d in (os.path.expanduser("~"), tempfile.gettempdir(), os.getcwd()):
        d = d.rstrip("/\\")
        if len(d) > 1:
            found.append(d)
    return found


def _is_machine_path(text: str, dirs: Iterable[str]) -> bool:
    if any(d in text for d in dirs):
        return True
    for token in _TOKEN.findall(text):
        if token == "~" or token.startswith(("~/", "~\\")) or _WINDOWS.match(token):
            return True
        if token.startswith("/") and token.strip("/"):
            first = token.strip("/").split("/", 1)[0]
            if first in _ROOTS or os.path.lexists("/" + first):
                return True
    return False


def _walk(obj: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (f"{where} (key)", str(k))
            yield from _walk(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{where}[{i}]")
    elif isinstance(obj, (str, os.PathLike)):
        yield (where, os.fspath(obj))


def machine_paths(obj: Any, where: str = "manifest") -> list[str]:
    """``field: value`` of every string in ``obj`` (a JSON-like object) that holds a path of
    a machine: this one's home, temporary or working directory anywhere in it, or a token
    that is an absolute path (``/home/...``, ``~/...``, ``C:\\...``; ONNX node names such
    as ``/encoder/Conv`` are not: their first part is no directory at a file system's root)."""
    dirs = _machine_dirs()
    return [f"{w}: {v!r}" for w, v in _walk(obj, where) if _is_machine_path(v, dirs)]


def check_portable(obj: Any, where: str, *, error: type[InputError] = ConfigError) -> None:
    """Refuse ``obj`` if ``machine_paths`` finds any.

    Raises:
      ``error`` (ConfigError): naming the first fields found.
    """
    found = machine_paths(obj, where)
    if found:
        raise error(
            f"{where} would record paths of this machine in a bundle users share: "
            + "; ".join(found[:3])
            + (f" (and {len(found) - 3} more)" if len(found) > 3 else ""),
            hint="name files by their name (and sha256), not by where they are on this machine",
        )
