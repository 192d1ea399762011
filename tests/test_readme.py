"""The README tells a newcomer the truth: its "Using the runtime" code runs verbatim from any
directory and prints what its "# prints ..." comments say, its quick-start commands have the
form CI extracts, and the demo it points to works from any directory, clicks on objects and
reports its tracks. (tests/test_docs.py checks the names the README and docs/ give.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from rapsam_edge.data.clip import clip_ground_truth

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: what CI runs as the test command (the same expression as its `sed`)
CI_TEST_COMMAND = re.compile(r"^ *\$ (pip install .*&& pytest.*)$", re.M)


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    # the installed package, as a newcomer has it (conftest points PYTHONPATH at it)
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_quick_start_has_two_commands_and_the_ci_form():
    commands = re.findall(r"^ *\$ (.*)$", _section("Quick start"), re.M)
    assert len(commands) == 2, commands
    assert "rapsam-edge demo" in commands[0]
    tests = CI_TEST_COMMAND.findall(README.read_text(encoding="utf-8"))
    assert len(tests) == 1 and "-c constraints/cpu.txt" in tests[0], tests


def test_using_the_runtime_runs_verbatim_from_any_directory(tmp_path):
    blocks = _python_blocks(_section("Using the runtime"))
    assert blocks, "no python block under 'Using the runtime'"
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    proc = _run([sys.executable, str(script)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "rejected:" in proc.stdout
    # every "print(...)  # prints X" line of the README prints X: the class names of the first
    # frame's segments and the number of tracks the default model starts on the sample clip
    promised = re.findall(r"^print\(.*\)  # prints (.+)$", "\n".join(blocks), re.M)
    assert any(p.endswith(" tracks") for p in promised), promised
    lines = proc.stdout.splitlines()
    for expected in promised:
        assert expected in lines, (expected, proc.stdout[-2000:])
    tracks = next(p for p in promised if p.endswith(" tracks"))
    assert int(tracks.split()[0]) > 0, "the default model tracks the clip's objects"


def test_demo_from_any_directory_clicks_on_objects_and_reports_tracks(tmp_path):
    out = tmp_path / "demo"
    proc = _run(
        [sys.executable, "-m", "rapsam_edge.cli", "demo", "--out", str(out), "--repeats", "2"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for name in ("panoptic.png", "prompts.png", "tracking.mp4", "tracks.mp4", "timings.json"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "timings.json").read_text())
    started = report["tracks_started"]
    assert f"{started} tracks" in proc.stdout
    if started == 0:
        assert "synthetic shapes" in proc.stdout  # and says why

    # the clicks land on the clip's objects, and each click's mask holds the clicked pixel
    clicks = [tuple(p["at"]) for p in report["prompts"] if p["kind"] == "click"]
    boxes = [p["at"] for p in report["prompts"] if p["kind"] == "box"]
    assert clicks and boxes
    truth = clip_ground_truth()
    thing_ids = {s.id for s in truth.segments[0] if s.is_thing}
    for x, y in clicks:
        assert truth.ids[0][y, x] in thing_ids, (x, y)
    for x0, y0, x1, y1 in boxes:  # the box frames a whole object
        inside = set(np.unique(truth.ids[0][y0:y1, x0:x1]).tolist()) & thing_ids
        assert any(
            (truth.ids[0] == i).sum() == (truth.ids[0][y0:y1, x0:x1] == i).sum() for i in inside
        )

    from rapsam_edge import Segmenter

    cap = cv2.VideoCapture(report["source"])
    ok, frame = cap.read()
    cap.release()
    assert ok
    seg = Segmenter(report["bundle"], backend="ort-cpu", color_order="BGR")
    emb = seg.set_image(frame)
    for x, y in clicks:
        mask = seg.prompt(emb, points=[(x, y)]).masks[0]
        assert mask.any() and mask[y, x], (x, y)
    for entry in report["prompts"]:
        assert entry["mask_area"] > 0, entry
        assert entry.get("contains_click", True), entry
