"""Hostile files on every path-taking flag of every verb (issue 26): an empty file, random
bytes, a named pipe, a directory and a truncated zip, each given to one input flag of the
verb (its other arguments valid), must end with a nonzero exit, a one-line message and a
hint, and no traceback, within a timeout. Only the argument / file validation paths run
(nothing trains: a bad input is refused before any work).

One child process per verb runs its cases through ``rapsam_edge.cli.main`` in-process
(torch imported once), each under a SIGALRM deadline; the child prints one JSON line per case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rapsam_edge.cli import COMMANDS

KINDS = ("empty", "random", "fifo", "dir", "truncated_zip")
H = "{H}"  # where the hostile path goes in a case's arguments

#: verb -> cases: (suffix of the hostile file, arguments with H in one input flag).
#: {B} is the shipped bundle, {V} a small make-data validation set, {O} a fresh output path,
#: {E} a valid class-embeddings file, {W} saved weights (config.json + model.safetensors),
#: {I} a valid image
CASES: dict[str, list[tuple[str, list[str]]]] = {
    "demo": [("", ["--bundle", H, "--out", "{O}"]), (".png", ["--source", H, "--out", "{O}"])],
    "run": [("", [H, "--source", "{I}"]), (".png", ["{B}", "--source", H, "--out", "{O}"])],
    "profile": [("", [H])],
    "serve": [
        ("", ["--bundle", H, "--source", "{I}"]),
        (".mp4", ["--bundle", "{B}", "--backend", "ort", "--source", H]),
    ],
    "benchmark": [("", ["--bundle", H, "--no-fresh"])],
    "info": [("", [H])],
    "make-data": [],  # writes only
    "train": [(".json", ["--config", H]), ("", ["--data", H, "--out", "{O}"])],
    "distill": [
        (".json", ["--config", H]),
        ("", ["--teacher", H, "--data", "{V}", "--split", "val", "--out", "{O}"]),
    ],
    "pretrain": [("", ["--teacher", H, "--out", "{O}"])],
    "eval": [
        ("", ["--bundle", H, "--data", "{V}"]),
        ("", ["--bundle", "{B}", "--data", H]),
        ("", ["--weights", H, "--data", "{V}"]),
    ],
    "quantize": [
        ("", [H, "--to", "int8", "--backend", "ort", "--calib", "{V}", "--out", "{O}"]),
        (
            "",
            [
                "{B}",
                "--to",
                "int8",
                "--backend",
                "ort",
                "--calib",
                H,
                "--val",
                "{V}",
                "--out",
                "{O}",
            ],
        ),
        (
            ".png",
            [
                "{B}",
                "--to",
                "int8",
                "--backend",
                "ort",
                "--calib",
                H,
                "--val",
                "{V}",
                "--out",
                "{O}",
            ],
        ),
        (
            "",
            [
                "{B}",
                "--to",
                "int8",
                "--backend",
                "ort",
                "--calib",
                "{V}",
                "--val",
                H,
                "--out",
                "{O}",
            ],
        ),
    ],
    "variants": [],  # no input files
    "convert": [
        (".pth", [H, "--class-embeddings", "{E}", "--out", "{O}"]),
        (".safetensors", [H, "--class-embeddings", "{E}", "--out", "{O}"]),
        (".npy", ["{E}", "--class-embeddings", H, "--out", "{O}"]),
        (".pt", ["{E}", "--class-embeddings", H, "--out", "{O}"]),
        (".safetensors", ["{E}", "--class-embeddings", H, "--out", "{O}"]),
        (".json", ["{E}", "--class-embeddings", "{E}", "--classes", H, "--out", "{O}"]),
    ],
    "export": [
        ("", ["--weights", H, "--out", "{O}"]),
        (".json", ["--weights", "{W}", "--out", "{O}", "--provenance", H]),
    ],
}

_CHILD = r"""
import contextlib, io, json, os, signal, sys, traceback
from rapsam_edge.cli import main

class Deadline(BaseException):
    pass

def alarm(*_):
    raise Deadline()

signal.signal(signal.SIGALRM, alarm)
for case in json.loads(sys.argv[1]):
    err = io.StringIO()
    signal.alarm(int(os.environ["CASE_TIMEOUT"]))
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(case["argv"])
            except SystemExit as e:  # argparse
                code = e.code
    except Deadline:
        code = "timeout"
    except BaseException:
        code = "escaped"
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
    print(json.dumps({"id": case["id"], "code": code, "stderr": err.getvalue()}), flush=True)
"""


def _hostile(path: Path, kind: str) -> Path:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
        (path / "manifest.json").mkdir()  # a bundle-looking directory with nothing usable
    else:
        import io

        import torch

        buf = io.BytesIO()
        torch.save({"state_dict": {"w": torch.ones(64)}}, buf)
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    import numpy as np

    from rapsam_edge.assets import default_bundle
    from rapsam_edge.cli import main

    d = tmp_path_factory.mktemp("valid")
    args = ["--seed", "0", "--split", "val", "--num-images", "2", "--num-videos", "1"]
    args += ["--video-length", "2", "--size", "64", "64", "--quiet"]
    assert main(["make-data", "--out", str(d / "val"), *args]) == 0
    np.save(d / "emb.npy", np.ones((3, 8), np.float32))
    import cv2

    cv2.imwrite(str(d / "img.png"), np.zeros((48, 64, 3), np.uint8))
    bundle = default_bundle()
    return {
        "{B}": str(bundle),
        "{V}": str(d / "val"),
        "{E}": str(d / "emb.npy"),
        "{W}": str(bundle),
        "{I}": str(d / "img.png"),
    }


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_hostile_files_on_every_input_flag(verb, inputs, tmp_path) -> None:
    cases = []
    for i, (suffix, template) in enumerate(CASES[verb]):
        for kind in KINDS:
            hostile = _hostile(tmp_path / f"{i}-{kind}{suffix or '.bin'}", kind)
            subst = {**inputs, H: str(hostile), "{O}": str(tmp_path / f"out-{i}-{kind}")}
            argv = [verb, *(subst.get(a, a) for a in template)]
            cases.append({"id": f"{verb} #{i} {kind}", "argv": argv})
    if not cases:
        assert verb in ("make-data", "variants")  # verbs that read no input file
        return
    env = dict(os.environ, CASE_TIMEOUT="30", RAPSAM_EDGE_OPS="numpy")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=60 + 30 * len(cases),
        env=env,
        cwd=tmp_path,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(cases), proc.stderr[-2000:]
    bad = []
    for r in results:
        lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
        ok = (
            isinstance(r["code"], int)
            and r["code"] != 0
            and "Traceback" not in r["stderr"]
            and "internal error" not in r["stderr"]
            and any(ln.startswith(("rapsam-edge: error:", "rapsam-edge ")) for ln in lines)
        )
        if not ok:
            bad.append(f"{r['id']}: code {r['code']}: {r['stderr'][-600:]}")
    if os.environ.get("SHOW_HOSTILE"):
        print("\n".join(f"{r['id']}: {r['code']}: {r['stderr'].strip()[:200]}" for r in results))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("exc", "code", "fragment"),
    [
        (TypeError("boom"), 1, "internal error (a bug"),
        (RecursionError("deep"), 2, "nests too deeply"),
        (MemoryError(), 2, "out of memory"),
        (zipfile.BadZipFile("bad zip"), 2, "cannot use an input"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), 2, "cannot use an input"),
        (KeyboardInterrupt(), 130, ""),
    ],
)
def test_escaping_exceptions_are_one_line(monkeypatch, capsys, exc, code, fragment) -> None:
    """Whatever escapes a verb is one line + hint (a bug named as one, exit 1; bad input
    exit 2; Ctrl-C 130, quietly); --debug re-raises it."""
    import rapsam_edge.commands.info as info
    from rapsam_edge.cli import main

    def boom(args):
        raise exc

    monkeypatch.setattr(info, "run", boom)
    assert main(["info", "x"]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err
    if code != 130:
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 2, err
    with pytest.raises(type(exc)):
        main(["info", "x", "--debug"])
