"""Parity of the C++ runtime (csrc/runtime, no Python in its process) with the Python
Segmenter on the shipped bundle: identical panoptic label maps, click masks and track ids on
frames of the sample clip, both on OpenVINO (the shipped model names no thing, so its track
lists are empty; tests/test_tracker.py compares the two trackers on synthetic tracks). CI builds the installed package and its example
(examples/cpp) and points RAPSAM_CPP_EXAMPLE at the program; without it there is nothing to
compare (a build without the C++ runtime's dependencies)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from rapsam_edge import Segmenter
from rapsam_edge.assets import sample_clip

EXAMPLE = os.environ.get("RAPSAM_CPP_EXAMPLE")
pytestmark = pytest.mark.skipif(
    not EXAMPLE, reason="RAPSAM_CPP_EXAMPLE (the built examples/cpp program) is not set"
)


def _frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(sample_clip()))
    out = []
    while len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(bgr[..., ::-1]))  # RGB
    return out


def test_cpp_runtime_matches_python(shipped_bundle: Path, tmp_path: Path):
    frames = _frames(6)
    frames.append(np.ascontiguousarray(frames[0][:97, :131]))  # an odd, small size too
    src, dump = tmp_path / "frames", tmp_path / "dump"
    src.mkdir()
    dump.mkdir()
    for i, f in enumerate(frames):
        h, w = f.shape[:2]
        (src / f"{i:03d}.ppm").write_bytes(f"P6\n{w} {h}\n255\n".encode() + f.tobytes())
    res = subprocess.run(
        [EXAMPLE, str(shipped_bundle), str(src), "--dump", str(dump)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == len(frames)
    seg = Segmenter(shipped_bundle, "openvino", color_order="RGB")
    tracker = seg.new_tracker()
    lines = res.stdout.strip().splitlines()
    for i, f in enumerate(frames):
        ids = seg.track(f, tracker=tracker).track_ids.tolist()
        printed = lines[i].split("tracks [")[1].split("]")[0]
        assert [int(x) for x in printed.split()] == ids, (i, lines[i])
        h, w = f.shape[:2]
        want = seg.panoptic(f).panoptic_map
        got = np.fromfile(dump / f"{i:03d}.panoptic", np.int32).reshape(h, w)
        np.testing.assert_array_equal(got, want, err_msg=f"frame {i}")
        click = seg.prompt(seg.set_image(f), points=[(w / 2, h / 2)]).masks[0]
        got_click = np.fromfile(dump / f"{i:03d}.prompt", np.uint8).reshape(h, w).astype(bool)
        np.testing.assert_array_equal(got_click, click, err_msg=f"frame {i} click")


def test_cpp_runtime_refuses_a_tampered_bundle(shipped_bundle: Path, tmp_path: Path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(shipped_bundle, bundle)
    (bundle / "extra.bin").write_bytes(b"x")
    src = tmp_path / "frames"
    src.mkdir()
    (src / "0.ppm").write_bytes(b"P6\n2 2\n255\n" + bytes(12))
    res = subprocess.run([EXAMPLE, str(bundle), str(src)], capture_output=True, text=True)
    assert res.returncode == 1 and "not listed in the manifest" in res.stderr
