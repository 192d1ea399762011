"""The CLI applications on the shipped default bundle and sample clip (what a newcomer runs)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rapsam_edge.assets import default_bundle, sample_clip
from rapsam_edge.cli import COMMANDS, main


def test_shipped_bundle_and_clip_exist():
    assert (default_bundle() / "manifest.json").exists()
    cap = cv2.VideoCapture(str(sample_clip()))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.ndim == 3


def test_demo_writes_outputs_and_timings(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--repeats", "2"]) == 0
    for name in ("panoptic.png", "prompts.png", "tracking.mp4", "timings.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    report = json.loads((tmp_path / "timings.json").read_text())
    assert report["frames"] == 48
    for stage in ("prepare", "encoder", "decoder", "postprocess", "tracking", "frame"):
        assert report["tracking"][stage]["p50_ms"] > 0, stage
    assert report["prompt_vs_frame_ratio"] > 1.0


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


def test_unknown_command_and_help(capsys):
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    assert set(COMMANDS) >= {"demo", "run", "info", "train", "eval", "export", "make-data"}
