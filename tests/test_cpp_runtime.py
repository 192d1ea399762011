"""Parity of the C++ runtime (csrc/runtime, no Python in its process) with the Python
Segmenter on the shipped bundle: identical panoptic label maps, click masks and track ids on
frames of the sample clip (a folder of PPM frames, and the clip itself as a video file), both
on OpenVINO, and track ids with live tracks (the shipped bundle with every class a thing);
tests/test_tracker.py also compares the two trackers on synthetic tracks. CI
builds the installed package and its example (examples/cpp, with OpenCV) and points
RAPSAM_CPP_EXAMPLE at the program (and sets RAPSAM_CPP_EXAMPLE_VIDEO); without it there is
nothing to compare (a build without the C++ runtime's dependencies)."""

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


def _read_ppm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    magic, w, h, maxval, pixels = data.split(maxsplit=4)
    assert magic == b"P6" and maxval == b"255"
    return np.frombuffer(pixels, np.uint8).reshape(int(h), int(w), 3)


def _write_ppm_folder(frames: list[np.ndarray], folder: Path) -> list[str]:
    """Frames (H x W x 3 RGB) as folder/000.ppm, 001.ppm, ... (binary PPM); their names."""
    folder.mkdir()
    names = [f"{i:03d}" for i in range(len(frames))]
    for name, f in zip(names, frames, strict=True):
        h, w = f.shape[:2]
        (folder / f"{name}.ppm").write_bytes(f"P6\n{w} {h}\n255\n".encode() + f.tobytes())
    return names


def _printed_tracks(line: str) -> list[int]:
    """The track ids the example printed on one frame's line ("..., tracks [1 2], ...")."""
    return [int(x) for x in line.split("tracks [")[1].split("]")[0].split()]


def _run(source: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess:
    """The example on the dynamic-shape model (as the Python side of _assert_parity)."""
    res = subprocess.run(
        [EXAMPLE, str(bundle), str(source), "--static-shapes", "off", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert res.returncode == 0, res.stderr
    return res


def _assert_parity(bundle: Path, names: list[str], stdout: str, dump: Path) -> None:
    """The Python Segmenter on the frames the C++ program decoded (dump/NAME.ppm) gives the
    same track ids (printed), panoptic maps and click masks (dumped). Both on OpenVINO's
    dynamic-shape model: by default both also compile static copies of repeated shapes, in
    the background, which agree to float rounding, not bit for bit."""
    seg = Segmenter(bundle, "openvino", color_order="RGB", backend_options={"static_shapes": False})
    tracker = seg.new_tracker()
    lines = stdout.strip().splitlines()
    assert len(lines) == len(names)
    for i, name in enumerate(names):
        f = _read_ppm(dump / f"{name}.ppm")
        ids = seg.track(f, tracker=tracker).track_ids.tolist()
        assert _printed_tracks(lines[i]) == ids, (i, lines[i])
        h, w = f.shape[:2]
        want = seg.panoptic(f).panoptic_map
        got = np.fromfile(dump / f"{name}.panoptic", np.int32).reshape(h, w)
        np.testing.assert_array_equal(got, want, err_msg=f"frame {name}")
        click = seg.prompt(seg.set_image(f), points=[(w / 2, h / 2)]).masks[0]
        got_click = np.fromfile(dump / f"{name}.prompt", np.uint8).reshape(h, w).astype(bool)
        np.testing.assert_array_equal(got_click, click, err_msg=f"frame {name} click")


def test_cpp_runtime_matches_python(shipped_bundle: Path, tmp_path: Path):
    frames = _frames(6)
    frames.append(np.ascontiguousarray(frames[0][:97, :131]))  # an odd, small size too
    src, dump = tmp_path / "frames", tmp_path / "dump"
    names = _write_ppm_folder(frames, src)
    res = _run(src, shipped_bundle, "--dump", str(dump))
    for name, f in zip(names, frames, strict=True):  # the decoded frames are the ones written
        np.testing.assert_array_equal(_read_ppm(dump / f"{name}.ppm"), f)
    _assert_parity(shipped_bundle, names, res.stdout, dump)


@pytest.mark.skipif(
    not os.environ.get("RAPSAM_CPP_EXAMPLE_VIDEO"),
    reason="RAPSAM_CPP_EXAMPLE_VIDEO unset (the example was built without OpenCV's videoio)",
)
def test_cpp_runtime_video_source_matches_python(shipped_bundle: Path, tmp_path: Path):
    """SOURCE as a video file (the sample clip), every frame, with overlays written."""
    dump, overlays = tmp_path / "dump", tmp_path / "overlays"
    res = _run(sample_clip(), shipped_bundle, "--dump", str(dump), "--overlays", str(overlays))
    names = sorted(p.stem for p in dump.glob("*.ppm"))
    assert len(names) == len(_frames(10_000)) > 0  # every frame of the clip
    _assert_parity(shipped_bundle, names, res.stdout, dump)
    pngs = sorted(overlays.glob("*.png"))
    assert [p.stem for p in pngs] == names
    first = cv2.imread(str(pngs[0]))
    assert first.shape == _read_ppm(dump / f"{names[0]}.ppm").shape
    assert not np.array_equal(first[..., ::-1], _read_ppm(dump / f"{names[0]}.ppm"))


def test_cpp_runtime_track_ids_match_python_with_live_tracks(shipped_bundle: Path, tmp_path: Path):
    """Track ids with tracks to follow: the shipped bundle with every class declared a thing
    (the manifest's class table; the graphs and their checksums unchanged), so its confident
    segments start and keep tracks in both runtimes."""
    import json
    import shutil

    bundle = tmp_path / "all-things"
    shutil.copytree(shipped_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    for c in manifest["classes"]:
        c["is_thing"] = True
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    frames = _frames(12)
    src, dump = tmp_path / "frames", tmp_path / "dump"
    names = _write_ppm_folder(frames, src)
    res = _run(src, bundle, "--dump", str(dump))
    printed = [_printed_tracks(line) for line in res.stdout.splitlines()]
    assert all(printed), "every frame should have live tracks"
    _assert_parity(bundle, names, res.stdout, dump)


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
