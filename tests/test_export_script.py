"""export/quantize_and_export.py: a recipe turns trained weights into a checked bundle."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "export" / "quantize_and_export.py"


def test_recipe_exports_a_bundle_that_runs(tmp_path: Path):
    from rapsam_edge.bundle import load_bundle
    from rapsam_edge.model import build_model
    from rapsam_edge.model.io import save_model

    torch.manual_seed(0)
    from rapsam_edge.data.classes import CLASSES

    save_model(build_model("edge-xs"), tmp_path / "run", classes=CLASSES)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--recipe",
            "cpu-ort-fp32",
            "--weights",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "bundle"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "every graph runs on ort-cpu" in proc.stdout
    bundle = load_bundle(tmp_path / "bundle")
    assert dict(bundle.provenance)["recipe"] == "cpu-ort-fp32"
    assert set(bundle.graphs["encoder"].files) == {"onnx"}
    assert bundle.class_names[:2] == ("circle", "square")  # saved with the weights


def test_list_and_bad_recipe():
    listed = subprocess.run(
        [sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and "x86-openvino-fp32" in listed.stdout
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--recipe", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_quantized_recipe_is_gated(tmp_path: Path, repo_root: Path):
    """A quantized recipe exports, converts and gates in one command (BF16: no calibration
    cost); the trained shipped weights make the gate meaningful."""
    pytest.importorskip("openvino")
    from rapsam_edge.bundle import load_bundle

    val = tmp_path / "val"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rapsam_edge.cli",
            "make-data",
            "--seed",
            "3",
            "--split",
            "val",
            "--out",
            str(val),
            "--num-images",
            "40",
            "--num-videos",
            "1",
            "--video-length",
            "2",
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    argv = [sys.executable, str(SCRIPT), "--recipe", "x86-openvino-bf16", "--weights"]
    argv += [
        str(repo_root / "models" / "edge-xs-synthetic"),
        "--calib",
        str(val),
        "--out",
        str(tmp_path / "b"),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gate PASS" in proc.stdout
    bundle = load_bundle(tmp_path / "b")
    assert {g.precision for g in bundle.graphs.values()} == {"bf16"}
    assert dict(bundle.export)["quantization"]["gate"]["passed"] is True
    no_calib = [sys.executable, str(SCRIPT), "--recipe", "cpu-ort-int8", "--weights", argv[5]]
    proc = subprocess.run(
        [*no_calib, "--out", str(tmp_path / "c")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--calib DATA is required" in proc.stderr


def _script_parser() -> argparse.ArgumentParser:
    spec = importlib.util.spec_from_file_location("quantize_and_export", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._parser()


def test_every_option_has_help_and_says_its_default():
    """As `rapsam-edge`'s verbs (test_commands): help text on every option; a default is
    shown with %(default)s, an option without one says what happens when it is not given."""
    parser = _script_parser()
    problems = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0]
        text = action.help or ""
        flag = isinstance(action, argparse._StoreTrueAction)
        if not text.strip():
            problems.append(f"{name}: no help text")
        elif action.default not in (None, False) and "%(default)" not in text:
            problems.append(f"{name}: default {action.default!r} not shown with %(default)s")
        elif (action.default is None or flag) and not ("default" in text or "required" in text):
            problems.append(f"{name}: does not say what it does when not given")
    assert problems == []
    description = parser.description or ""
    assert description.endswith(".") and "\n" not in description, description


@pytest.mark.parametrize("option", ["--weights", "--calib", "--val"])
def test_a_missing_input_path_is_one_line_and_exit_2(tmp_path: Path, repo_root: Path, option):
    """As `rapsam-edge`'s verbs (test_commands): a path that does not exist is named in one
    error line and a hint, exit 2, no traceback, before any model loads; nothing is written."""
    paths = {
        "--weights": str(repo_root / "models" / "edge-xs-synthetic"),
        "--calib": str(tmp_path),
        "--val": str(tmp_path),
    }
    missing = str(tmp_path / "no" / "such-path")
    paths[option] = missing
    argv = [sys.executable, str(SCRIPT), "--recipe", "cpu-ort-int8", "--out", str(tmp_path / "b")]
    for flag, value in paths.items():
        argv += [flag, value]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 2, proc.stderr
    assert lines[0].endswith(f"error: {option} '{missing}' does not exist")
    assert lines[1].startswith("quantize_and_export.py: hint: ")
    assert not (tmp_path / "b").exists()
