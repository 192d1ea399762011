"""export/quantize_and_export.py: a recipe turns trained weights into a checked bundle."""

from __future__ import annotations

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
