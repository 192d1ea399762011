"""Memory bounded by what files declare (issue 26, deliverable 5): each hostile file (small on
disk, declaring gigabytes) is given to the command that reads it, in a child process with an
address-space limit (``RLIMIT_AS``, as ``prlimit --as``) far below the file's demand but
enough for torch; the child must refuse it in one line with a hint, without a traceback, and
its peak resident memory (VmHWM of its own address space) must stay under 1 GB.

The readers themselves (``model.safe_read``, ``contract.images``) are also tested in-process
on the layouts the CLI cases do not reach."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rapsam_edge.contract import limits as L
from rapsam_edge.contract.images import image_size, read_image_file
from rapsam_edge.errors import ConfigError, SourceError
from rapsam_edge.model.checkpoint import CheckpointError, read_checkpoint
from rapsam_edge.model.convert import ConversionError, load_class_embeddings
from rapsam_edge.model.safe_read import check_layout, read_npy, read_safetensors


def _helper():
    import importlib.util

    path = Path(__file__).with_name("hostile_files.py")
    spec = importlib.util.spec_from_file_location("hostile_files", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


H = _helper()

#: the child's address-space limit: torch, OpenCV and ONNX Runtime reserve about 1.2 GB of
#: virtual memory at import (a normal `convert` peaks at ~1.5 GB virtual, ~0.5 GB resident);
#: every bomb below asks for 1.5 GB to 149 GiB on top
AS_LIMIT = 3 * 2**30
#: the target: no input under 10 MB makes a command hold more than this
RSS_LIMIT = 2**30

# The child's own peak: VmHWM of its address space (kB), which starts empty at exec.
# (getrusage's ru_maxrss would not do: Linux carries it over exec from the forked copy of
# the parent, so a child of a large pytest process reports the parent's size.)
_WRAPPER = """
import os, sys
from rapsam_edge.cli import main
try:
    code = main(sys.argv[1:])
finally:
    with open("/proc/self/status") as st:
        hwm = next(ln.split()[1] for ln in st if ln.startswith("VmHWM:"))
    with open(os.environ["RSS_OUT"], "w") as f:
        f.write(hwm)
sys.exit(code)
"""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _cli(tmp: Path, *args: str | Path) -> tuple[int, str, int]:
    """(exit status, stderr, peak RSS bytes) of `rapsam-edge ARGS` under AS_LIMIT."""
    out = tmp / "rss.txt"
    env = dict(os.environ, RSS_OUT=str(out), RAPSAM_EDGE_OPS="numpy")
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        preexec_fn=_limited,
        cwd=tmp,
    )
    rss = int(out.read_text()) * 1024 if out.exists() else -1
    return proc.returncode, proc.stderr, rss


def _assert_refused(result: tuple[int, str, int], fragment: str) -> None:
    code, err, rss = result
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert [ln.split(":")[1].strip() for ln in lines] == ["error", "hint"], err
    assert fragment in lines[0], err
    assert "weights_only" not in err
    assert 0 < rss < RSS_LIMIT, (rss, err)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    np.save(d / "emb.npy", np.random.default_rng(0).standard_normal((155, 768), np.float32))
    out = {"dir": d, "emb": d / "emb.npy"}
    out["bomb"] = H.zip_bomb_checkpoint(d / "bomb.pth", 1_500_000_000)
    out["stride0"] = H.stride0_embeddings(d / "stride0.pt")
    out["npy"] = H.npy_huge_header(d / "huge.npy")
    out["st_len"] = H.safetensors_file(d / "len.safetensors", b"{}", length=2**62)
    spec = {"w": {"dtype": "F32", "shape": [1_000_000, 1000], "data_offsets": [0, 4 * 10**9]}}
    out["st_off"] = H.safetensors_file(d / "off.safetensors", spec, bytes(16))
    out["st_deep"] = H.deep_safetensors(d / "deep.safetensors")
    out["pkl_deep"] = H.deep_pickle_checkpoint(d / "deep.pth")
    (d / "calib").mkdir()
    out["png"] = H.png_bomb(d / "calib" / "bomb.png")
    from rapsam_edge.cli import main

    args = ["--seed", "0", "--split", "val", "--num-images", "2", "--num-videos", "0"]
    assert main(["make-data", "--out", str(d / "val"), *args, "--size", "64", "64", "--quiet"]) == 0
    out["val"] = d / "val"
    return out


def test_sizes_on_disk_are_small(files) -> None:
    for key in ("bomb", "stride0", "npy", "st_len", "st_off", "st_deep", "pkl_deep", "png"):
        assert files[key].stat().st_size < 10 * 2**20, key


@pytest.mark.parametrize(
    ("case", "role", "fragment"),
    [
        ("bomb", "checkpoint", "a zip bomb"),
        ("pkl_deep", "checkpoint", "nest deeper than"),
        ("st_len", "checkpoint", "header length"),
        ("st_off", "checkpoint", "data_offsets"),
        ("st_deep", "checkpoint", "nests deeper"),
        ("stride0", "embeddings", "share memory"),
        ("npy", "embeddings", "header declares shape"),
        ("st_off", "embeddings", "data_offsets"),
        ("st_deep", "embeddings", "nests deeper"),
    ],
)
def test_convert_refuses_before_allocating(files, tmp_path, case, role, fragment) -> None:
    bad, emb = files[case], files["emb"]
    ckpt, embeddings = (bad, emb) if role == "checkpoint" else (emb, bad)
    result = _cli(tmp_path, "convert", ckpt, "--class-embeddings", embeddings, "--out", "o")
    _assert_refused(result, fragment)
    assert not (tmp_path / "o").exists()


def test_hostile_pickle_refused_without_unsafe_advice(tmp_path, files) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    import io
    import pickle

    buf = io.BytesIO()
    torch.save({"x": 1}, buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = pickle.dumps({"state_dict": Evil()}, protocol=2)
            out.writestr(info.filename, data)
    result = _cli(tmp_path, "convert", "evil.pth", "--class-embeddings", files["emb"], "--out", "o")
    _assert_refused(result, "cannot read the checkpoint safely")
    assert "posix.system" in result[1]
    assert not (tmp_path / "pwned").exists()


def test_png_bomb_refused_from_its_header(files, tmp_path) -> None:
    """The calibration images of `quantize` and the image of `run` (a 20000 x 20000 PNG of
    ~400 KB, 1.2 GB decoded) are refused from the PNG header."""
    from rapsam_edge.assets import default_bundle

    bundle = default_bundle()
    result = _cli(
        tmp_path,
        "quantize",
        bundle,
        "--to",
        "int8",
        "--backend",
        "ort",
        "--calib",
        files["png"].parent,
        "--val",
        files["val"],
        "--out",
        "q",
        "--calib-samples",
        "1",
    )
    _assert_refused(result, "MAX_IMAGE_PIXELS")
    assert not (tmp_path / "q").exists()
    _assert_refused(_cli(tmp_path, "run", bundle, "--source", files["png"]), "MAX_IMAGE_PIXELS")


# --- the readers in-process ------------------------------------------------------------------
def test_layouts() -> None:
    base = torch.arange(12.0)
    check_layout(base.view(3, 4), "ok", ConfigError)
    check_layout(base.view(3, 4).t(), "transposed", ConfigError)
    check_layout(base.view(3, 4)[:, 1:3], "sliced", ConfigError)
    check_layout(base[:0], "empty", ConfigError)
    for bad in (base.as_strided((4, 4), (1, 1)), base.as_strided((3, 4), (0, 1))):
        with pytest.raises(ConfigError, match="share memory"):
            check_layout(bad, "bad", ConfigError)


def test_zip_records_checked(tmp_path) -> None:
    buf = tmp_path / "ok.pth"
    torch.save({"w": torch.ones(3)}, buf)
    assert torch.equal(read_checkpoint(buf)["w"], torch.ones(3))
    # a stored record whose declared size differs from what it holds
    raw = bytearray(buf.read_bytes())
    at = raw.rfind(b"PK\x01\x02")  # the last central-directory entry
    raw[at + 24 : at + 28] = struct.pack("<I", 10**9)
    (tmp_path / "lie.pth").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "lie.pth")
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_checkpoint(tmp_path)
    (tmp_path / "trunc.pth").write_bytes(buf.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "trunc.pth")


def test_npy_checks(tmp_path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    got = read_npy(tmp_path / "a.npy", "x", ConfigError, max_bytes=1000)
    assert got.tolist() == [[0, 1, 2], [3, 4, 5]]
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="not a plain number"):
        read_npy(tmp_path / "o.npy", "x", ConfigError, max_bytes=1000)
    (tmp_path / "t.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-4])
    with pytest.raises(ConfigError, match="follow it"):
        read_npy(tmp_path / "t.npy", "x", ConfigError, max_bytes=1000)
    with pytest.raises(ConfigError, match="over the limit"):
        read_npy(tmp_path / "a.npy", "x", ConfigError, max_bytes=10)


def test_safetensors_checks(tmp_path) -> None:
    from safetensors.torch import save_file

    tensors = {"a": torch.arange(6.0).view(2, 3), "b": torch.ones(4, dtype=torch.int64)}
    save_file(tensors, tmp_path / "ok.safetensors")
    got = read_safetensors(tmp_path / "ok.safetensors", "x", ConfigError, max_bytes=10**6)
    assert all(torch.equal(got[k], v) for k, v in tensors.items())
    overlap = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    H.safetensors_file(tmp_path / "ov.safetensors", overlap, bytes(12))
    with pytest.raises(ConfigError, match="overlap"):
        read_safetensors(tmp_path / "ov.safetensors", "x", ConfigError, max_bytes=10**6)
    wrong = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    H.safetensors_file(tmp_path / "w.safetensors", wrong, bytes(8))
    with pytest.raises(ConfigError, match="data_offsets"):
        read_safetensors(tmp_path / "w.safetensors", "x", ConfigError, max_bytes=10**6)
    odd = {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}
    H.safetensors_file(tmp_path / "n.safetensors", odd, bytes(4))
    with pytest.raises(ConfigError, match="bad dtype, shape"):
        read_safetensors(tmp_path / "n.safetensors", "x", ConfigError, max_bytes=10**6)


def test_class_embeddings_fifo_and_bad_vocab(tmp_path) -> None:
    os.mkfifo(tmp_path / "e.npy")
    with pytest.raises(ConversionError, match="named pipe"):
        load_class_embeddings(tmp_path / "e.npy")
    emb = torch.randn(4, 8)
    torch.save(emb, tmp_path / "e.pt")
    assert torch.equal(load_class_embeddings(tmp_path / "e.pt"), emb)


def test_image_headers(tmp_path) -> None:
    import cv2

    img = np.zeros((30, 50, 3), np.uint8)
    for ext, fmt in ((".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP"), (".ppm", "PNM")):
        ok, buf = cv2.imencode(ext, img)
        assert ok and image_size(buf.tobytes()) == (fmt, 50, 30), ext
    for ext, fmt in ((".webp", "WebP"), (".tiff", "TIFF")):
        ok, buf = cv2.imencode(ext, img)
        if ok:  # optional OpenCV codecs
            assert image_size(buf.tobytes()) == (fmt, 50, 30), ext
    assert image_size(b"GIF89a....") is None
    big = H.png_bomb(tmp_path / "b.png", 9000, 9000)
    with pytest.raises(SourceError, match="MAX_IMAGE_PIXELS"):
        read_image_file(big, "image", SourceError)
    os.mkfifo(tmp_path / "f.png")
    with pytest.raises(SourceError, match="named pipe"):
        read_image_file(tmp_path / "f.png", "image", SourceError)
    ppm = tmp_path / "p.ppm"
    ppm.write_bytes(b"P6\n# c\n20000 20000\n255\n" + bytes(30))
    with pytest.raises(SourceError, match="20000 x 20000"):
        read_image_file(ppm, "image", SourceError)


def test_limits_table_is_the_one_place() -> None:
    assert set(L.TABLE) == {n for n in L.__all__ if n.startswith("MAX_")}
    assert all(v > 0 for v, _ in L.TABLE.values())
    assert json.loads(json.dumps({k: v for k, (v, _) in L.TABLE.items()}))


def test_pickle_opcodes_bounded(tmp_path, monkeypatch) -> None:
    """A pickle of millions of one-byte container opcodes is refused by its opcode count
    (the limit lowered here to keep the file small)."""
    import io

    monkeypatch.setattr(L, "MAX_PICKLE_OPS", 1000)
    buf = io.BytesIO()
    torch.save({"x": 1}, buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(tmp_path / "ops.pth", "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = b"\x80\x02(" + b"]" * 5000 + b"l."
            out.writestr(info.filename, data)
    with pytest.raises(CheckpointError, match="over 1000 opcodes"):
        read_checkpoint(tmp_path / "ops.pth")


def test_pickle_at_the_opcode_limit_stays_bounded(tmp_path, files) -> None:
    """A pickle just under ``MAX_PICKLE_OPS`` of one-byte list opcodes (1 MB) is read, and
    the command still holds under 1 GB (torch's unpickler keeps ~250 bytes per object)."""
    import io

    buf = io.BytesIO()
    torch.save({"x": 1}, buf)
    src = zipfile.ZipFile(buf)
    body = b"\x80\x02}(X\x01\x00\x00\x00a](" + b"]" * (L.MAX_PICKLE_OPS - 20) + b"eu."
    with zipfile.ZipFile(tmp_path / "ops.pth", "w") as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info.filename, body if info.filename.endswith("data.pkl") else data)
    result = _cli(tmp_path, "convert", "ops.pth", "--class-embeddings", files["emb"], "--out", "o")
    _assert_refused(result, "no model weights")
