"""Shared test settings: small thread counts (CI has 2 cores) and repository paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


# --- deploy / runtime: one small exported bundle per test session ----------------------
@pytest.fixture(scope="session")
def xs_bundle(tmp_path_factory: pytest.TempPathFactory):
    """(bundle dir, torch model) for a random-init ``edge-xs`` (deform=False), exported once
    per session with ONNX + OpenVINO IR (when openvino is installed) + the torch weights."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import importlib.util

    from rapsam_edge.deploy.bundle_writer import export_bundle
    from rapsam_edge.model import build_model

    formats = ("onnx", "openvino") if importlib.util.find_spec("openvino") else ("onnx",)
    torch.manual_seed(0)
    model = build_model("edge-xs", deform=False).eval()
    classes = [{"id": i, "name": f"class{i}", "is_thing": i < 8} for i in range(12)]
    out = export_bundle(model, tmp_path_factory.mktemp("bundle") / "edge-xs", name="test-xs",
                        classes=classes, provenance={"weights": "random init, seed 0"},
                        formats=formats, include_weights=True)
    return out, model
