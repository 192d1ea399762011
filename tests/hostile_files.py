"""Builders of hostile data files (issue 26), shared by tests/test_memory_bounds.py and
tests/test_cli_hostile.py: each is small on disk and declares (or expands to) far more than
any command should allocate. Importable without torch (the checkpoint builders import it)."""

from __future__ import annotations

import io
import json
import os
import pickletools
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "deep_pickle_checkpoint",
    "deep_safetensors",
    "npy_huge_header",
    "png_bomb",
    "safetensors_file",
    "stride0_embeddings",
    "zip_bomb_checkpoint",
]


def npy_huge_header(path: Path, shape: tuple[int, ...] = (200_000, 200_000)) -> Path:
    """A .npy of ~228 bytes whose header declares ``shape`` float32 (149 GiB by default)."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * ((-(10 + len(header) + 1)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64)
    return path


def safetensors_file(path: Path, header: dict | bytes, data: bytes = b"", length=None) -> Path:
    """A safetensors file: 8-byte little-endian header length (``length`` overrides it),
    the JSON header, then ``data``."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + raw + data)
    return path


def deep_safetensors(path: Path, depth: int = 10_000) -> Path:
    """A safetensors file whose header nests a key ``depth`` objects deep."""
    raw = b'{"__metadata__":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    return safetensors_file(path, raw)


def stride0_embeddings(path: Path, rows: int = 10_000_000, dim: int = 768) -> Path:
    """A torch file holding one rows x dim float32 tensor with stride (0, 1): one row of
    storage (3 KB) that materialises as rows * dim * 4 bytes (30 GB at 10 M rows)."""
    import torch

    torch.save(torch.randn(dim).expand(rows, dim), path)
    return path


def _patch_numel(pkl: bytes, numel: int) -> bytes:
    """The pickle with the first storage's numel (the int after the location string in the
    persistent id ('storage', type, key, 'cpu', numel)) replaced by ``numel``."""
    ops = list(pickletools.genops(pkl))
    for i, (_, arg, _) in enumerate(ops):
        if arg == "cpu":
            j = next(k for k in range(i + 1, len(ops)) if "INT" in ops[k][0].name)
            start, end = ops[j][2], ops[j + 1][2]
            new = b"\x8a\x08" + numel.to_bytes(8, "little")  # LONG1, 8 bytes
            return pkl[:start] + new + pkl[end:]
    raise AssertionError("no storage id in the pickle")


def zip_bomb_checkpoint(path: Path, nbytes: int = 4_300_000_000) -> Path:
    """A torch zip checkpoint whose one storage record is ``nbytes`` zeros, deflated (about
    nbytes / 1000 on disk), with the pickle declaring that many bytes."""
    import torch

    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(4)}}, buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                out.writestr(info.filename, _patch_numel(data, nbytes // 4))
            elif info.filename.endswith("/data/0"):
                member = zipfile.ZipInfo(info.filename)
                member.compress_type = zipfile.ZIP_DEFLATED
                with out.open(member, "w", force_zip64=True) as dst:
                    _deflate_zeros(dst, nbytes)
            else:
                out.writestr(info.filename, data)
    return path


def _deflate_zeros(dst, nbytes: int) -> None:
    """Write ``nbytes`` zeros through a deflating zip member stream (fast: 1 MiB chunks)."""
    chunk = bytes(1 << 20)
    left = nbytes
    while left > 0:
        n = min(left, len(chunk))
        dst.write(chunk[:n])
        left -= n


def deep_pickle_checkpoint(path: Path, depth: int = 10_000) -> Path:
    """A torch zip checkpoint whose state dict holds a key nested ``depth`` dicts deep."""
    import torch

    # torch.save pickles recursively; build the pickle without recursion limits by hand
    body = b"}" + b"X\x01\x00\x00\x00a}" * (depth - 1) + b"X\x01\x00\x00\x00wK\x01"
    body += b"s" * depth + b"."
    buf = io.BytesIO()
    torch.save({"x": 1}, buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(
                info.filename, b"\x80\x02" + body if info.filename.endswith("data.pkl") else data
            )
    return path


def png_bomb(path: Path, width: int = 20_000, height: int = 20_000) -> Path:
    """A grey 8-bit PNG of width x height zeros (400 MB of pixels at 20000 x 20000, a few
    hundred KB on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    comp = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte 0 + zeros
    parts = [comp.compress(row) for _ in range(height)]
    idat = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def fifo(path: Path) -> Path:
    """A named pipe at ``path`` (nothing ever writes to it)."""
    os.mkfifo(path)
    return path


def write_npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path
