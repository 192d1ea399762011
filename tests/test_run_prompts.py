"""Click-to-track from the command line: ``rapsam-edge run --prompt x,y --box x0,y0,x1,y1``
on the sample clip and on an image (the written files and the printed states), the typed
errors of malformed values, and the demo's ``tracking.mp4`` (one clicked object) next to
``tracks.mp4`` (the video instance tracks)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rapsam_edge.assets import sample_clip
from rapsam_edge.cli import main
from rapsam_edge.contract.shared import MAX_PROMPTS
from rapsam_edge.data.clip import clip_ground_truth

RING_CLICK = (160, 262)  # the ring's interior point on the clip's first frame
RING_BOX = (134, 257, 184, 306)  # the ring's box there (ground truth)


def _frames(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def _ring_id() -> int:
    truth = clip_ground_truth()
    x, y = RING_CLICK
    return int(truth.ids[0][y, x])


def test_truth_of_the_constants():
    truth = clip_ground_truth()
    ring = truth.ids[0] == _ring_id()
    ys, xs = np.nonzero(ring)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert np.abs(np.subtract(box, RING_BOX)).max() <= 6, box


def test_run_tracks_a_click_and_a_box_through_the_clip(tmp_path, capsys):
    argv = ["run", "--source", str(sample_clip()), "--backend", "ort-cpu", "--max-frames", "10"]
    argv += ["--prompt", "{},{}".format(*RING_CLICK), "--box", ",".join(map(str, RING_BOX))]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    frames = _frames(tmp_path / "prompt.mp4")
    assert len(frames) == 10 and frames[0].shape == (360, 480, 3)
    lines = [line for line in out.splitlines() if line.startswith("object ")]
    assert lines == [
        "object 1 (click (160, 262)): tracked 10, occluded 0, lost 0 of 10 frames",
        "object 2 (box (134, 257, 184, 306)): tracked 10, occluded 0, lost 0 of 10 frames",
    ], out
    assert f"wrote {tmp_path / 'prompt.mp4'} (10 frames, checked)" in out
    for stage in ("encoder", "decoder", "tracking", "add"):
        assert any(line.split()[:1] == [stage] for line in out.splitlines()), stage
    # the drawn video shows the objects: the "#1 tracked" label's box is on the ring
    assert (frames[-1] != _frames(sample_clip())[9]).any()


def test_run_prompts_an_image(tmp_path, capsys):
    image = tmp_path / "first.png"
    cv2.imwrite(str(image), _frames(sample_clip())[0])
    argv = ["run", "--source", str(image), "--backend", "ort-cpu", "--out", str(tmp_path / "o")]
    assert main([*argv, "--prompt", "{},{}".format(*RING_CLICK)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "o" / "first_prompt.png").stat().st_size > 0
    line = next(line for line in out.splitlines() if line.startswith("object 1 (click"))
    area = int(line.split("mask of ")[1].split()[0])
    ring = int((clip_ground_truth().ids[0] == _ring_id()).sum())
    assert 0.5 * ring <= area <= 1.5 * ring, (line, ring)


@pytest.mark.parametrize(
    "bad",
    [
        ["--prompt", "5"],
        ["--prompt", "5,5,5"],
        ["--prompt", "a,b"],
        ["--prompt", "nan,5"],
        ["--prompt", "5,inf"],
        ["--prompt", "-1,5"],
        ["--box", "1,2,3"],
        ["--box", "9,0,9,9"],
        ["--box", "0,9,9,2"],
        ["--box", "-9,-9,-1,-1"],
        ["--box", "0,0,nan,9"],
        ["--task", "segment"],
    ],
)
def test_a_malformed_prompt_is_a_usage_error(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--source", str(sample_clip()), "--out", str(tmp_path / "o"), *bad])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("rapsam-edge run: error: argument"), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--task", "track", "--prompt", "5,5"], "task 'prompt'"),
        (["--task", "panoptic", "--box", "1,1,9,9"], "task 'prompt'"),
        (["--prompt", "5000,5"], "inside the 360 x 480"),
        (["--box", "600,400,700,500"], "overlap"),
    ],
)
def test_prompts_the_run_cannot_use_are_one_error_line(extra, match, tmp_path, capsys):
    argv = ["run", "--source", str(sample_clip()), "--backend", "ort-cpu", "--max-frames", "2"]
    assert main([*argv, "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and match in err and "rapsam-edge: hint:" in err, err


def test_run_help_names_the_prompt_flags_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--prompt X,Y" in out and "--box X0,Y0,X1,Y1" in out
    assert "default: prompt with --prompt / --box, else track" in out


def test_demo_tracking_video_follows_the_clicked_object(tmp_path, capsys):
    """The demo's tracking.mp4: one object clicked on the ring of the first frame, tracked
    through the clip with its id and state (drawn), the clicked object's pixels coloured on
    the ring in every frame; tracks.mp4 holds the video instance tracks."""
    assert main(["demo", "--out", str(tmp_path), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "timings.json").read_text())
    ctt = report["click_to_track"]
    assert tuple(ctt["click"]) == RING_CLICK and ctt["target"].startswith("ring")
    assert ctt["states"] == {"1": {"tracked": 48, "occluded": 0, "lost": 0}}
    assert "object 1: tracked 48, occluded 0, lost 0 of 48 frames" in out
    assert f"wrote {tmp_path}/panoptic.png, prompts.png, tracking.mp4" in out
    tracking, tracks = _frames(tmp_path / "tracking.mp4"), _frames(tmp_path / "tracks.mp4")
    assert len(tracking) == len(tracks) == 48
    clip, truth = _frames(sample_clip()), clip_ground_truth()
    ring_id = _ring_id()
    for t in (0, 24, 47):
        ring = truth.ids[t] == ring_id
        changed = np.abs(tracking[t].astype(int) - clip[t].astype(int)).sum(2) > 40
        changed[:30] = False  # the corner's "frame t: 1 object" label
        near = cv2.dilate(ring.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        # the overlay colours the ring, and (beyond its box and label) little else; measured
        # on frames 0, 24, 47: 0.92, 0.94, 0.98 of the ring, 0.9 %, 0.5 %, 0.5 % elsewhere
        # (frame 0: the click's mask spills onto the crescent next to the ring)
        assert changed[ring].mean() >= 0.6, t
        assert changed[~near].mean() <= 0.02, t


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--task", "prompt"], "--task prompt tracks the objects given by --prompt / --box"),
        (["--box", "10,10,50,50"] * (MAX_PROMPTS + 1), f"at most {MAX_PROMPTS} objects"),
        (["--prompt", "5,5"] * MAX_PROMPTS + ["--box", "1,1,9,9"], f"at most {MAX_PROMPTS}"),
    ],
)
def test_prompts_the_cli_cannot_track_are_refused_before_the_bundle_loads(
    extra, match, tmp_path, capsys, monkeypatch
):
    """No prompts with --task prompt, or more --prompt / --box than objects one decoder call
    takes: refused in CLI words (the flags, not the Python API's prompts= / remove()), before
    the model loads (the limit is the contract's, no manifest needed)."""
    from rapsam_edge.runtime import segmenter

    def no_load(*args, **kwargs):
        raise AssertionError("the bundle was loaded")

    monkeypatch.setattr(segmenter, "Segmenter", no_load)
    argv = ["run", "--source", str(sample_clip()), "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and match in err and "rapsam-edge: hint:" in err, err
    assert "--prompt" in err and "prompts=" not in err and "remove()" not in err, err
    assert not (tmp_path / "o").exists()
