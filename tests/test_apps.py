"""The CLI applications on the shipped default bundle and sample clip (what a newcomer runs),
and the drawing helpers they use."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rapsam_edge.apps.draw import (
    FONT,
    FONT_SCALE,
    LABEL_PAD,
    draw_label,
    draw_tracks,
    interior_point,
)
from rapsam_edge.assets import DEFAULT_BUNDLE, default_bundle, sample_clip
from rapsam_edge.cli import COMMANDS, main
from rapsam_edge.runtime.results import PanopticResult, TrackResult


def test_shipped_bundle_and_clip_exist():
    assert (default_bundle() / "manifest.json").exists()
    cap = cv2.VideoCapture(str(sample_clip()))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.ndim == 3


def test_demo_writes_outputs_and_timings(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--repeats", "2"]) == 0
    for name in ("panoptic.png", "prompts.png", "tracking.mp4", "tracks.mp4", "timings.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    report = json.loads((tmp_path / "timings.json").read_text())
    assert report["frames"] == 48
    for stage in ("prepare", "encoder", "decoder", "postprocess", "tracking", "frame"):
        assert report["tracking"][stage]["p50_ms"] > 0, stage
    # the ratio of the two p50s (how much cheaper a prompt is: a measurement, in
    # benchmarks/bench_profile_vs_benchmark_app.py, not asserted here)
    ratio = report["panoptic"]["total"]["p50_ms"] / report["interactive"]["prompt_1pt"]["p50_ms"]
    assert report["prompt_vs_frame_ratio"] == pytest.approx(ratio) and ratio > 0
    kinds = [p["kind"] for p in report["prompts"]]
    assert "click" in kinds and "box" in kinds
    for p in report["prompts"]:
        assert p["mask_area"] > 0, p
        if p["kind"] == "click":
            assert p["contains_click"], p
    out = capsys.readouterr().out
    assert "click at (x, y)" in out
    # the shipped model names the clip's object: a track, and the count is printed
    assert report["tracks_started"] >= 1
    assert f"{report['tracks_started']} tracks started" in out


# ---------------------------------------------------------------------------- drawing
def _text_height(text: str) -> int:
    return cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][1]


def test_label_is_one_text_over_a_solid_box():
    """A readable label on any OpenCV: inside its box only the background colour and one
    rendering of the text (the old outline drew the text twice, thick dark under thin light,
    which OpenCV 5 renders at two different widths: doubled and unreadable)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 220, 3), dtype=np.uint8)  # busy, coloured background
    before = image.copy()
    text = "prompt 1: iou 0.38"
    x0, y0, x1, y1 = draw_label(image, text, 10, 30)
    (tw, th), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    assert (x1 - x0, y1 - y0) == (tw + 2 * LABEL_PAD, th + baseline + 2 * LABEL_PAD)
    box = image[y0:y1, x0:x1].astype(int)
    # white text anti-aliased on black: every pixel grey, nothing of the image shows through
    assert (box[..., 0] == box[..., 1]).all() and (box[..., 1] == box[..., 2]).all()
    grey = box[..., 0]
    assert (grey == 0).mean() > 0.5, "the box is mostly background"
    assert (grey > 200).sum() > 3 * len(text), "text pixels exist"
    ink_cols = np.flatnonzero((grey > 0).any(0))
    assert ink_cols.max() - ink_cols.min() >= 0.9 * tw, "the text spans its measured width"
    # exactly one rendering: the same as putText once on a black box
    ref = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    cv2.putText(
        ref, text, (LABEL_PAD, LABEL_PAD + th), FONT, FONT_SCALE, (255,) * 3, 1, cv2.LINE_AA
    )
    np.testing.assert_array_equal(image[y0:y1, x0:x1], ref)
    outside = np.ones(image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(image[outside], before[outside])


def test_label_stays_inside_the_image():
    image = np.full((40, 100, 3), 128, np.uint8)
    text = "#12 crescent"
    x0, y0, x1, y1 = draw_label(image, text, 90, 2)  # would stick out right and top
    tw = cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0]
    assert 0 <= x0 and x1 <= 100 and 0 <= y0 and y1 <= 40
    assert x1 - x0 == tw + 2 * LABEL_PAD, "moved, not cut"
    tiny = np.full((8, 20, 3), 128, np.uint8)
    assert draw_label(tiny, text, 0, 0) == (0, 0, 20, 8)  # larger than the image: clipped


def test_interior_point_lies_inside_non_convex_shapes():
    ring = np.zeros((60, 60), np.uint8)
    cv2.circle(ring, (30, 30), 20, 1, 6)
    crescent = np.zeros((60, 60), np.uint8)
    cv2.circle(crescent, (30, 30), 20, 1, -1)
    cv2.circle(crescent, (38, 30), 18, 0, -1)
    for mask in (ring.astype(bool), crescent.astype(bool)):
        x, y = interior_point(mask)
        assert mask[y, x]
        ys, xs = np.nonzero(mask)
        assert not mask[(ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2]  # box centre misses
    with pytest.raises(ValueError):
        interior_point(np.zeros((5, 5), bool))


def _track_result(ids: list[int]) -> TrackResult:
    track_map = np.zeros((120, 320), np.int32)
    for i, tid in enumerate(ids):
        track_map[60:100, 200 + 50 * i : 240 + 50 * i] = tid
    pan = PanopticResult(np.zeros((120, 320), np.int32), np.zeros(0), ("circle",))
    n = len(ids)
    return TrackResult(
        3,
        track_map,
        np.array(ids, np.int32),
        np.zeros(n, np.int32),
        np.ones(n, np.float32),
        pan,
    )


def _black_rows(image: np.ndarray, x: int) -> int:
    return int((image[:, x] == 0).all(-1).sum())


def test_tracking_frames_show_frame_count_and_ids():
    grey = np.full((120, 320, 3), 128, np.uint8)
    none = draw_tracks(grey, _track_result([]), ("circle",))
    one = draw_tracks(grey, _track_result([7]), ("circle",))
    # the corner note: one line with tracks, a second ("0 tracks: ...") without any
    assert _black_rows(one, 3) >= _text_height("frame 3: 1 track")
    assert _black_rows(none, 3) >= 2 * _text_height("frame 3: 0 tracks")
    assert _black_rows(none, 3) > _black_rows(one, 3)
    # the track's label sits on the track
    assert (one[60:100, 180:260] == 0).all(-1).any()
    assert not (none[60:100, 180:260] == 0).all(-1).any()


# ---------------------------------------------------------------------------- run
def test_run_on_an_image_and_info(tmp_path, capsys):
    image = np.full((90, 120, 3), 128, np.uint8)
    cv2.circle(image, (60, 45), 20, (0, 0, 255), -1)
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), image)
    assert main(["run", str(default_bundle()), "--source", str(path), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "img_panoptic.png").exists()
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "checksums OK" in out and "ort-cpu" in out


def test_run_on_an_image_names_each_segments_class_and_score(tmp_path, capsys):
    from rapsam_edge.bundle import load_bundle

    cap = cv2.VideoCapture(str(sample_clip()))
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    argv = ["run", "--source", str(tmp_path / "frame.png"), "--backend", "ort-cpu"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    count = int(out.split(" segments -> ")[0].rsplit("\n", 1)[-1])
    lines = [line for line in out.splitlines() if line.startswith("  segment ")]
    assert count >= 1 and len(lines) == count, out
    names = set(load_bundle(None).class_names)
    scores = []
    for line in lines:  # "  segment 3: circle (thing), score 0.87, 1234 px"
        name = line.split(": ", 1)[1].split(" (", 1)[0]
        assert name in names, line
        scores.append(float(line.split("score ")[1].split(",")[0]))
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)


def test_run_on_a_video_by_shipped_name_prints_tracks(tmp_path, capsys):
    args = ["run", "edge-xs-synthetic", "--source", str(sample_clip()), "--max-frames", "3"]
    assert main([*args, "--backend", "ort-cpu", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "track.mp4").stat().st_size > 0
    out = capsys.readouterr().out
    assert "3 frames" in out and "0 tracks" in out


def test_run_defaults_to_the_shipped_bundle(tmp_path, capsys):
    path = tmp_path / "img.png"
    cv2.imwrite(str(path), np.full((40, 50, 3), 90, np.uint8))
    assert main(["run", "--source", str(path), "--backend", "ort-cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert DEFAULT_BUNDLE in out
    # the timings as the video's table (stage, n, p50 ...), not a raw dict
    assert "{" not in out, out
    header = next(line for line in out.splitlines() if line.startswith("stage "))
    assert header.split() == ["stage", "n", "p50", "ms", "p90", "ms", "p99", "ms", "mean", "ms"]
    assert any(line.split()[:2] == ["encoder", "1"] for line in out.splitlines()), out


@pytest.mark.parametrize("argv", [["demo", "--repeats", "0"], ["run", "--max-frames", "0"]])
def test_a_count_below_1_is_refused_before_any_work(tmp_path, capsys, argv):
    """At parse time (argparse's usage error, exit 2): no bundle loads, nothing is written."""
    with pytest.raises(SystemExit) as info:
        main([*argv, "--source", str(sample_clip()), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert f"error: argument {argv[1]}: the value must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--source", "{tmp}/missing.png"],
        ["run", "--source", "{tmp}/not_an_image.png"],
        ["run", "--source", "{tmp}/missing.mp4"],
        ["run", "--source", "{tmp}/not_a_video.mp4"],
        ["run", "no-such-bundle", "--source", "{tmp}/ok.png"],
        ["demo", "--source", "{tmp}/missing.mp4", "--out", "{tmp}/out"],
        ["demo", "--source", "{tmp}/not_a_video.mp4", "--out", "{tmp}/out"],
        ["run", "--source", "{tmp}", "--out", "{tmp}/out"],  # a directory
    ],
)
def test_everyday_mistakes_print_one_line(tmp_path, capsys, argv):
    (tmp_path / "not_an_image.png").write_text("hello")
    (tmp_path / "not_a_video.mp4").write_text("hello")
    cv2.imwrite(str(tmp_path / "ok.png"), np.full((40, 50, 3), 90, np.uint8))
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--backend", "ort-cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rapsam-edge: error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 2, err  # the message and, if any, the hint


def test_unknown_command_and_help(capsys):
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    assert set(COMMANDS) >= {"demo", "run", "info", "train", "eval", "export", "make-data"}
