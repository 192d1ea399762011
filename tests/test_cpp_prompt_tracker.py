"""Parity of the C++ runtime's PromptTracker (csrc/runtime/prompt_tracker.cpp, run by the
examples/cpp program's ``--track-box``, no Python in its process) with the Python one
(``runtime.prompt_tracker``) on frames of the sample clip: the same ids, states, boxes and
masks on every frame, both on OpenVINO's dynamic-shape model. The frames include a run of
blank frames longer than ``max_occluded``, so that the object goes through "occluded" and
"lost" and is found again (the search with two candidates), in both runtimes alike.

CI builds the installed package and its example and points RAPSAM_CPP_EXAMPLE at the program
(tests/test_cpp_runtime.py's setting); without it there is nothing to compare."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge import Segmenter
from rapsam_edge.errors import InputError
from rapsam_edge.runtime.prompt_tracker import PromptTrackerConfig

EXAMPLE = os.environ.get("RAPSAM_CPP_EXAMPLE")
pytestmark = pytest.mark.skipif(
    not EXAMPLE, reason="RAPSAM_CPP_EXAMPLE (the built examples/cpp program) is not set"
)
cv2 = pytest.importorskip("cv2")

THING, REGION = 4, 10  # the clip's thing class and a large stuff class (test_prompt_tracker)


def _clip(n: int) -> list[np.ndarray]:
    from rapsam_edge.assets import sample_clip

    cap = cv2.VideoCapture(str(sample_clip()))
    out = []
    while len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(bgr[..., ::-1]))  # RGB
    cap.release()
    return out


def _write_ppm_folder(frames: list[np.ndarray], folder: Path) -> list[str]:
    folder.mkdir()
    names = [f"{i:03d}" for i in range(len(frames))]
    for name, f in zip(names, frames, strict=True):
        h, w = f.shape[:2]
        (folder / f"{name}.ppm").write_bytes(f"P6\n{w} {h}\n255\n".encode() + f.tobytes())
    return names


def _parse(line: str) -> dict:
    """ "frame I: id ID STATE score S sim M box X0 Y0 X1 Y1" -> its fields."""
    head, rest = line.split(": ", 1)
    f = rest.split()
    assert f[0] == "id" and f[3] == "score" and f[5] == "sim" and f[7] == "box", line
    return {
        "frame": int(head.split()[1]),
        "id": int(f[1]),
        "state": f[2],
        "score": float(f[4]),
        "sim": float(f[6]),
        "box": [int(v) for v in f[8:12]],
    }


@pytest.fixture(scope="module")
def seg(shipped_bundle: Path) -> Segmenter:
    with Segmenter(
        shipped_bundle, "openvino", color_order="RGB", backend_options={"static_shapes": False}
    ) as s:
        yield s


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Clip frames 0..8, then max_occluded + 1 blank frames, then clip frames 9..14."""
    clip = _clip(15)
    assert len(clip) == 15
    blank = [np.zeros_like(clip[0])] * (PromptTrackerConfig().max_occluded + 1)
    return clip[:9] + blank + clip[9:]


def _run(bundle: Path, src: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    cmd = [EXAMPLE, str(bundle), str(src), "--static-shapes", "off", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _prompts(seg: Segmenter, frame: np.ndarray, how: str) -> dict:
    """The objects to add on the first frame: "boxes", the thing's and the region's boxes
    (two objects in one decoder call); "clicks", one object from a positive click on the
    thing's pixel nearest its centroid and a negative one on the region's; "click", the
    positive click alone."""
    pan = seg.panoptic(frame)
    masks = {}
    for cls in (THING, REGION):
        (sid,) = pan.segments["id"][pan.segments["class"] == cls]
        masks[cls] = pan.panoptic_map == sid
    if how == "boxes":
        boxes = []
        for cls in (THING, REGION):
            ys, xs = np.nonzero(masks[cls])
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
        return {"boxes": boxes}
    if how == "click":  # one click: its object's first prompt is the click's box
        return {"points": [_centre(masks[THING])], "labels": [1]}
    return {"points": [_centre(masks[THING]), _centre(masks[REGION])], "labels": [1, 0]}


def _centre(mask: np.ndarray) -> tuple[int, int]:
    """The mask's pixel nearest its centroid (x, y)."""
    ys, xs = np.nonzero(mask)
    i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return int(xs[i]), int(ys[i])


def _args(prompts: dict) -> list[str]:
    if "boxes" in prompts:
        return ["--track-box", ":".join(",".join(map(str, b)) for b in prompts["boxes"])]
    groups = [f"{x},{y},{lab}" for (x, y), lab in zip(prompts["points"], prompts["labels"])]
    return ["--track-click", ":".join(groups)]


@pytest.mark.parametrize("how", ["boxes", "clicks", "click"])
def test_cpp_prompt_tracker_matches_python(
    seg: Segmenter, frames: list[np.ndarray], shipped_bundle: Path, tmp_path: Path, how: str
):
    prompts = _prompts(seg, frames[0], how)
    src, dump = tmp_path / "frames", tmp_path / "dump"
    names = _write_ppm_folder(frames, src)
    res = _run(shipped_bundle, src, *_args(prompts), "--dump", str(dump))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    pt = seg.prompt_tracker()
    ids = pt.add(frames[0], **prompts)
    assert lines[0] == f"frame 0: added ids [{' '.join(map(str, ids))}]"
    got = [_parse(line) for line in lines[1:]]
    assert len(got) == len(ids) * (len(frames) - 1)
    states: dict[int, list[str]] = {i: [] for i in ids}
    for i in range(1, len(frames)):
        objs = pt.step(frames[i]).objects
        printed = got[(i - 1) * len(ids) : i * len(ids)]
        h, w = frames[i].shape[:2]
        masks = np.fromfile(dump / f"{names[i]}.track", np.uint8).reshape(len(ids), h, w)
        for g, want, mask in zip(printed, objs, masks, strict=True):
            where = f"frame {i}: C++ {g}, Python {want.id} {want.state} {want.score} {want.box}"
            assert g["frame"] == i, where
            assert (g["id"], g["state"], g["box"]) == (want.id, want.state, list(want.box)), where
            # printed with 4 decimals (measured: |difference| <= 5e-5, the printing's rounding)
            assert g["score"] == pytest.approx(want.score, abs=1e-4), where
            assert g["sim"] == pytest.approx(want.similarity, abs=1e-4), where
            np.testing.assert_array_equal(mask.astype(bool), want.mask, err_msg=where)
            states[want.id].append(want.state)
    # each object tracked on the clip, occluded then lost on the blank frames, found again
    for seq in states.values():
        assert seq[:8] == ["tracked"] * 8, seq
        assert "occluded" in seq and "lost" in seq and seq[-1] == "tracked", seq


def test_cpp_prompt_tracker_refuses_another_frame_size(
    seg: Segmenter, shipped_bundle: Path, tmp_path: Path
):
    """A frame of another size mid-stream: the tracker's typed error, as Python's."""
    clip = _clip(2)
    frames = [clip[0], np.ascontiguousarray(clip[1][:, :300])]
    prompts = _prompts(seg, frames[0], "boxes")
    src = tmp_path / "frames"
    _write_ppm_folder(frames, src)
    res = _run(shipped_bundle, src, *_args(prompts))
    h, w = frames[0].shape[:2]
    assert res.returncode == 1, res.stderr
    assert f"frame of {h} x 300 in a stream of {h} x {w} frames" in res.stderr, res.stderr


def test_cpp_track_options_refuse_bad_prompts(seg: Segmenter, shipped_bundle: Path, tmp_path: Path):
    src = tmp_path / "frames"
    (frame,) = _clip(1)
    _write_ppm_folder([frame], src)
    bad_args = [("--track-box", b) for b in ("1,2,3", "1,2,3,x", "1,2,3,4,5", "nan,0,10,10")]
    bad_args += [("--track-box", "1,2,3,4:"), ("--track-click", "1,2"), ("--track-click", "1,2,2")]
    for opt, bad in bad_args:
        res = _run(shipped_bundle, src, opt, bad)
        assert res.returncode == 2 and "usage" in res.stderr, bad
    # a box outside the frame: the tracker's typed error, one line, exit 1
    res = _run(shipped_bundle, src, "--track-box", "5000,5000,5010,5010")
    assert res.returncode == 1 and "boxes must overlap" in res.stderr, res.stderr
    # a click object whose negative click's mask covers the positive one's: both runtimes
    # refuse it (an empty mask has nothing to track)
    res = _run(shipped_bundle, src, "--track-click", "166,276,1:133,254,0")
    assert res.returncode == 1 and "gives an empty mask" in res.stderr, res.stderr
    with pytest.raises(InputError, match="gives an empty mask"):
        seg.prompt_tracker().add(frame, points=[(166, 276), (133, 254)], labels=[1, 0])
    # clicks with no positive one
    res = _run(shipped_bundle, src, "--track-click", "5,5,0")
    assert res.returncode == 1 and "at least one positive" in res.stderr, res.stderr
