"""Shared test settings: small thread counts (CI has 2 cores) and repository paths."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the tests' helper modules (waits.py, ...) import by name from any test module
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Subprocesses started by tests (`python -c ...`, multiprocessing spawn) must import the same
# rapsam_edge as this process (the installed one under `pytest`), never the source tree that
# happens to be the working directory: no cwd on their sys.path (Python >= 3.11), and the
# imported package's parent directory first.
os.environ["PYTHONSAFEPATH"] = "1"
_PKG_PARENT = str(Path(importlib.util.find_spec("rapsam_edge").origin).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_PKG_PARENT, os.environ.get("PYTHONPATH", "")) if p
)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


# --- runtime: the shipped bundle (no torch needed) ----------------------------------------
#: test modules of the runtime half: they run in a runtime-only install too (`pytest -m runtime`)
RUNTIME_MODULES = frozenset(
    {
        "test_runtime_backends",
        "test_runtime_segmenter",
        "test_runtime_threads",
        "test_runtime_errors",
        "test_ops_parity",
        "test_ops_bad_input",
        "test_ops_dispatch",
        "test_ops_property",
        "test_apps",
        "test_readme",
        "test_tracker",
        "test_layers",
        "test_contract",
        "test_bundle_hostile",
        "test_soak",
        "test_sources",
        "test_manifest_parity",
        "test_runtime_outputs",
        "test_tracker_state",
        "test_writers",
        "test_cpp_hostile_graphs",
        "test_bad_input_table",
        "test_cpp_runtime",
        "test_cli",
        "test_profile",
        "test_profile_layers",
        "test_profile_benchmark_app",
        "test_profile_telemetry",
        "test_prompt_tracker",
        "test_cpp_prompt_tracker",
        "test_serve",
        "test_serve_browser",
        "test_ros_messages",
        "test_record_mcap",
        "test_rerun_view",
        "test_ros_node",
    }
)


# A runtime-only install (no torch: `pip install ".[openvino,test]"`, CI's second run) collects
# only the runtime modules; the training half's tests import torch at module level.
if importlib.util.find_spec("torch") is None:
    collect_ignore = [
        p.name for p in Path(__file__).parent.glob("test_*.py") if p.stem not in RUNTIME_MODULES
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rpartition(".")[2] in RUNTIME_MODULES:
            item.add_marker(pytest.mark.runtime)


@pytest.fixture(scope="session")
def shipped_bundle() -> Path:
    """The shipped default bundle (edge-xs trained on synthetic data; ONNX + OpenVINO IR +
    torch weights), as the installed package finds it."""
    from rapsam_edge.assets import default_bundle

    return default_bundle()


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
    out = export_bundle(
        model,
        tmp_path_factory.mktemp("bundle") / "edge-xs",
        name="test-xs",
        classes=classes,
        provenance={"weights": "random init, seed 0"},
        formats=formats,
        include_weights=True,
    )
    return out, model
