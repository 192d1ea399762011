"""Readers of tensor files that check every declared size before they allocate (issue 26).

A hostile file can be small on disk and declare gigabytes: a deflated zip record of zeros
(a "zip bomb" storage), a tensor viewing one row of storage with stride 0 as ten million
rows, a ``.npy`` header declaring 149 GiB, a safetensors header length of 2^62 or offsets
past the end, containers nested 10,000 deep. Every reader here checks what the file declares
against the bytes it really holds and against ``contract.limits`` BEFORE reading, and raises
the caller's error type with one line naming the file, the record and the limit:

- ``check_zip`` (torch checkpoints): member count, compression method, each member's declared
  size against its compressed size (``MAX_ZIP_RATIO``) and the members' total against the
  file; the pickle record's size and opcode count (``MAX_PICKLE_*``).
- ``check_tensors``: after unpickling (which only builds views of storages already bounded by
  the zip check), container nesting (``MAX_NESTING``, walked without recursion), the number of
  tensors, and each tensor's layout: every element inside its storage and no two elements
  sharing memory (a stride of 0 or overlapping strides), so materialising it costs at most
  its storage.
- ``read_npy``: the header (``MAX_NPY_HEADER_BYTES``), its dtype (plain numbers only) and
  shape x itemsize against the bytes after it.
- ``read_safetensors``: the header length against the file and ``MAX_SAFETENSORS_HEADER_BYTES``,
  its nesting, then per tensor a known dtype, a shape, offsets inside the data section equal
  to dtype x shape and not overlapping; the tensors are read from the same open file.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pickletools
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..contract import limits as L
from ..contract.files import open_regular
from ..errors import RapsamEdgeError

__all__ = ["check_tensors", "check_zip", "read_npy", "read_safetensors"]

ErrorType = type[RapsamEdgeError]

#: the hint of every refusal here
HINT = (
    "the file declares more than it holds or than rapsam-edge's limits allow (corrupt or "
    "hostile); re-save the weights with torch.save or safetensors"
)


def _fail(error: ErrorType, message: str) -> RapsamEdgeError:
    return error(message, hint=HINT)


#: safetensors dtype -> torch dtype (little-endian, as the format stores them)
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _file_size(f: BinaryIO) -> int:
    return os.fstat(f.fileno()).st_size


# --- torch zip checkpoints -----------------------------------------------------------------
def check_zip(f: BinaryIO, path: Path, error: ErrorType) -> None:
    """Check a torch zip checkpoint's records (see the module doc) before torch reads it.

    Raises:
      error: not a zip, too many members, an unknown compression, a member declaring more
        than ``MAX_ZIP_RATIO`` x its compressed size (or a stored one declaring another size
        than it holds), members overlapping (their compressed sizes exceed the file), or a
        pickle record over ``MAX_PICKLE_BYTES`` / ``MAX_PICKLE_OPS`` or malformed.
    """
    size = _file_size(f)
    try:
        archive = zipfile.ZipFile(f)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise _fail(error, f"{path}: not a readable zip archive ({e})") from None
    if len(infos) > L.MAX_ZIP_MEMBERS:
        raise _fail(
            error, f"{path}: {len(infos)} zip members, over the limit of {L.MAX_ZIP_MEMBERS}"
        )
    packed = 0
    for info in infos:
        _check_member(info, path, error)
        packed += info.compress_size
    if packed > size:
        raise _fail(
            error,
            f"{path}: its zip members claim {packed} compressed bytes in a {size}-byte file "
            "(overlapping records)",
        )
    pickles = [i for i in infos if i.filename.endswith("data.pkl")]
    if len(pickles) != 1:
        raise _fail(error, f"{path}: {len(pickles)} data.pkl records in the archive (expected 1)")
    if pickles[0].file_size > L.MAX_PICKLE_BYTES:
        raise _fail(
            error,
            f"{path}: pickle record of {_size_text(pickles[0].file_size)}, over the limit of "
            f"{_size_text(L.MAX_PICKLE_BYTES)}",
        )
    try:
        _scan_pickle(archive.read(pickles[0]), path, error)
    except RapsamEdgeError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise _fail(error, f"{path}: cannot read its pickle record ({e})") from None


def _check_member(info: zipfile.ZipInfo, path: Path, error: ErrorType) -> None:
    name, declared, packed = info.filename, info.file_size, info.compress_size
    if info.compress_type == zipfile.ZIP_STORED:
        if declared != packed:
            raise _fail(
                error,
                f"{path}: zip record {name!r} is stored but declares {declared} bytes for {packed}",
            )
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if declared > L.MAX_ZIP_RATIO * packed + 4096:
            raise _fail(
                error,
                f"{path}: zip record {name!r} declares {_size_text(declared)} from "
                f"{packed} compressed bytes (a ratio over the limit of {L.MAX_ZIP_RATIO}: "
                "a zip bomb?)",
            )
    else:
        raise _fail(error, f"{path}: zip record {name!r} uses compression {info.compress_type}")


def _scan_pickle(data: bytes, path: Path, error: ErrorType) -> None:
    """Count the pickle's opcodes (each builds at most one object) without running it."""
    count = 0
    try:
        for _ in pickletools.genops(data):
            count += 1
            if count > L.MAX_PICKLE_OPS:
                raise _fail(
                    error,
                    f"{path}: its pickle record has over {L.MAX_PICKLE_OPS} opcodes (the limit)",
                )
    except RapsamEdgeError:
        raise
    except (ValueError, EOFError, struct.error, UnicodeDecodeError) as e:
        raise _fail(error, f"{path}: malformed pickle record ({e})") from None


# --- what the unpickler built ----------------------------------------------------------------
_CONTAINERS = (Mapping, list, tuple, set, frozenset)
_WALKED = (torch.Tensor, *_CONTAINERS)


def check_tensors(obj: Any, path: Path, error: ErrorType) -> None:
    """Check a loaded checkpoint object: nesting depth, tensor count and every tensor's
    layout (see the module doc); walked with an explicit stack (no recursion).

    Raises:
      error: nesting over ``MAX_NESTING``, over ``MAX_TENSORS`` tensors, or a tensor whose
        elements leave its storage or share memory (stride 0 / overlapping strides).
    """
    stack: list[tuple[Any, int, str]] = [(obj, 0, "")]
    seen: set[int] = set()
    tensors = 0
    while stack:
        item, depth, where = stack.pop()
        if depth > L.MAX_NESTING:
            raise _fail(
                error,
                f"{path}: containers nest deeper than {L.MAX_NESTING} levels (at {where[:80]!r})",
            )
        if isinstance(item, torch.Tensor):
            tensors += 1
            if tensors > L.MAX_TENSORS:
                raise _fail(error, f"{path}: over {L.MAX_TENSORS} tensors (the limit)")
            check_layout(item, f"{path}: tensor {where[:80] or '(top level)'!r}", error)
            continue
        if not item or not isinstance(item, _CONTAINERS) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Mapping):  # keys name the place; list items keep their parent's
            for key, value in item.items():
                if isinstance(value, _WALKED):
                    stack.append((value, depth + 1, f"{where}.{key}" if where else str(key)))
        else:
            stack.extend((v, depth + 1, where) for v in item if isinstance(v, _WALKED))


def check_layout(t: torch.Tensor, what: str, error: ErrorType) -> None:
    """Every element of ``t`` inside its storage and no two sharing memory, so materialising
    ``t`` allocates at most its storage's size."""
    if t.layout != torch.strided:
        raise _fail(error, f"{what}: a {t.layout} tensor (only dense tensors are read)")
    if t.numel() == 0:
        return
    dims = sorted((st, sz) for sz, st in zip(t.shape, t.stride(), strict=True) if sz > 1)
    reach = 0  # elements spanned by the dims seen so far, minus one
    for st, sz in dims:
        if st <= reach:
            raise _fail(
                error,
                f"{what}: shape {tuple(t.shape)} with strides {t.stride()} makes elements "
                "share memory (a stride of 0 or overlapping strides)",
            )
        reach += (sz - 1) * st
    storage = t.untyped_storage().nbytes()
    end = (t.storage_offset() + reach + 1) * t.element_size()
    if t.storage_offset() < 0 or end > storage:
        raise _fail(error, f"{what}: its elements reach byte {end} of a {storage}-byte storage")


# --- .npy ----------------------------------------------------------------------------------
def read_npy(path: Path, what: str, error: ErrorType, *, max_bytes: int) -> np.ndarray:
    """A numeric array from a ``.npy`` file whose header was checked first (see module doc).

    Raises:
      error: not a regular file / over ``max_bytes``, a bad or oversized header, a dtype that
        is not a plain number (objects, structures), or a shape needing more bytes than follow
        the header.
    """
    fmt = np.lib.format
    with open_regular(path, what, error, max_bytes=max_bytes) as f:
        try:
            version = fmt.read_magic(f)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = reader(f, max_header_size=L.MAX_NPY_HEADER_BYTES)
        except (ValueError, OSError, SyntaxError, TypeError, EOFError) as e:
            raise _fail(error, f"{what} {str(path)!r}: not a readable .npy file ({e})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
            raise _fail(error, f"{what} {str(path)!r}: dtype {dtype} is not a plain number type")
        need = math.prod(shape) * dtype.itemsize
        left = _file_size(f) - f.tell()
        if need != left:
            raise _fail(
                error,
                f"{what} {str(path)!r}: its header declares shape {shape} of {dtype} "
                f"({need} bytes) but {left} bytes follow it",
            )
        buf = bytearray(need)
        if f.readinto(buf) != need:
            raise _fail(error, f"{what} {str(path)!r}: truncated while read")
    array = np.frombuffer(buf, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


# --- safetensors ---------------------------------------------------------------------------
def read_safetensors(
    path: Path, what: str, error: ErrorType, *, max_bytes: int
) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file whose header was checked first (module doc).

    Raises:
      error: not a regular file / over ``max_bytes``, a header length past the file or over
        ``MAX_SAFETENSORS_HEADER_BYTES``, a header that is not flat JSON of tensor entries,
        an unknown dtype, or offsets outside the data section, overlapping, or not equal to
        dtype x shape.
    """
    with open_regular(path, what, error, max_bytes=max_bytes) as f:
        size = _file_size(f)
        head = f.read(8)
        if len(head) != 8:
            raise _fail(error, f"{what} {str(path)!r}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, L.MAX_SAFETENSORS_HEADER_BYTES):
            raise _fail(
                error,
                f"{what} {str(path)!r}: safetensors header length {n} is past the file's "
                f"{size} bytes or over the limit of {_size_text(L.MAX_SAFETENSORS_HEADER_BYTES)}",
            )
        entries = _safetensors_header(f.read(n), f"{what} {str(path)!r}", error)
        spans = _check_spans(entries, size - 8 - n, f"{what} {str(path)!r}", error)
        out = {}
        for name, (dtype, shape, begin, end) in spans.items():
            buf = bytearray(end - begin)
            f.seek(8 + n + begin)
            if f.readinto(buf) != len(buf):
                raise _fail(error, f"{what} {str(path)!r}: truncated while read")
            t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
            out[name] = t.reshape(shape)
    return out


def _safetensors_header(raw: bytes, what: str, error: ErrorType) -> dict[str, Any]:
    if L.json_nesting(raw) > 3:
        raise _fail(error, f"{what}: its safetensors header nests deeper than a tensor table")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise _fail(error, f"{what}: its safetensors header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise _fail(error, f"{what}: its safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    if len(header) > L.MAX_TENSORS:
        raise _fail(error, f"{what}: {len(header)} tensors, over the limit of {L.MAX_TENSORS}")
    return header


def _check_spans(
    entries: dict[str, Any], data_bytes: int, what: str, error: ErrorType
) -> dict[str, tuple[torch.dtype, tuple[int, ...], int, int]]:
    spans = {}
    for name, e in entries.items():
        ok = isinstance(e, dict) and e.get("dtype") in SAFETENSORS_DTYPES
        shape, offsets = (e.get("shape"), e.get("data_offsets")) if ok else (None, None)
        ints = isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
        ints = ints and all(type(v) is int and v >= 0 for v in [*shape, *offsets])
        if not ints:
            raise _fail(
                error, f"{what}: tensor {name!r}: bad dtype, shape or data_offsets ({e!r:.120})"
            )
        dtype = SAFETENSORS_DTYPES[e["dtype"]]
        begin, end = offsets
        need = math.prod(shape) * dtype.itemsize
        if not begin <= end <= data_bytes or end - begin != need:
            raise _fail(
                error,
                f"{what}: tensor {name!r} ({e['dtype']} {shape}: {need} bytes) has "
                f"data_offsets [{begin}, {end}] in a {data_bytes}-byte data section",
            )
        spans[name] = (dtype, tuple(shape), begin, end)
    ordered = sorted((b, e, n) for n, (_, _, b, e) in spans.items())
    for (_, end, name), (begin, _, other) in itertools.pairwise(ordered):
        if begin < end:
            raise _fail(error, f"{what}: tensors {name!r} and {other!r} overlap")
    return spans
