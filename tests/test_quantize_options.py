"""The quantize command and the export script: every option says what it does and its
default; the script's description is whole; the shipped training runs re-export at the size
they were trained at; a failed gate ends in one line and a hint."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from rapsam_edge.commands import quantize as quantize_cmd
from rapsam_edge.deploy.training_run import export_input_size, trained_input_size

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "export" / "quantize_and_export.py"
MODELS = REPO / "models"


def _script_parser() -> argparse.ArgumentParser:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("quantize_and_export", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module._parser()


def _quantize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    quantize_cmd.add_arguments(parser)
    return parser


@pytest.mark.parametrize("which", ["quantize", "script"])
def test_every_option_has_help_and_a_shown_default(which):
    parser = _quantize_parser() if which == "quantize" else _script_parser()
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        text = action.help or ""
        if not text or not ("default" in text or "required" in text):
            missing.append(action.option_strings[0])
    assert not missing, f"options without help or a shown default: {missing}"


def test_script_help_is_whole_sentences():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    description = _script_parser().description
    assert description.endswith(".") and "\n" not in description.strip()
    assert description in " ".join(proc.stdout.split())


def _runs() -> list[Path]:
    return sorted(p for p in MODELS.glob("*-train") if (p / "train_config.json").is_file())


def _shipped_bundle_of(run: Path) -> dict:
    """The manifest of the FP32 bundle made from ``run`` (its provenance names the run or
    the run's output directory)."""
    out = json.loads((run / "train_config.json").read_text())["out"]
    for manifest in sorted(MODELS.glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        weights = str(m.get("provenance", {}).get("weights", ""))
        derived = "quantization" in m.get("export", {})
        if not derived and (weights.split()[:1] in ([f"models/{run.name}"], [out])):
            return m
    raise AssertionError(f"no shipped bundle names {run} in its provenance")


def test_there_are_shipped_training_runs():
    assert len(_runs()) >= 3


@pytest.mark.parametrize("run", _runs(), ids=lambda p: p.name)
def test_each_training_run_exports_at_its_shipped_bundles_size(run: Path):
    manifest = _shipped_bundle_of(run)
    assert trained_input_size(run) == manifest["input"]["long_side"]
    assert export_input_size(run) == manifest["input"]["long_side"]
    assert export_input_size(run, 480) == 480  # an explicit size wins


def test_a_config_that_disagrees_with_training_is_reported(caplog):
    run = MODELS / "edge-s-teacher-train"
    recorded = json.loads((run / "config.json").read_text())["input_size"]
    trained = trained_input_size(run)
    if recorded == trained:
        pytest.skip("config.json and train_config.json agree for this run")
    with caplog.at_level(logging.WARNING, logger="rapsam_edge.deploy.training_run"):
        assert export_input_size(run) == trained
    assert f"records input_size {recorded}, but the run was trained at {trained}" in caplog.text
    caplog.clear()  # a size the user asks for is taken as it is, without the warning
    with caplog.at_level(logging.WARNING, logger="rapsam_edge.deploy.training_run"):
        assert export_input_size(run, 480) == 480
    assert not caplog.records


@pytest.mark.slow
@pytest.mark.parametrize(
    "run", [r for r in _runs() if (r / "model.safetensors").is_file()], ids=lambda p: p.name
)
def test_each_training_run_reexports_to_its_shipped_bundle(run: Path, tmp_path: Path):
    """The script, as a user runs it, exports each shipped training run that holds its
    weights with the settings of its shipped bundle (input size, queries, stride, padding,
    classes)."""
    pytest.importorskip("torch")
    proc = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--recipe", "cpu-ort-fp32", "--weights", str(run)),
            *("--out", str(tmp_path / "b")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "b" / "manifest.json").read_text())
    want = _shipped_bundle_of(run)
    for key in ("variant", "input", "feat_stride", "num_queries", "num_classes", "classes"):
        assert got[key] == want[key], key
    recorded = json.loads((run / "config.json").read_text())["input_size"]
    if recorded != want["input"]["long_side"]:  # the WARNING names both sizes
        assert f"trained at {want['input']['long_side']}" in proc.stderr


def test_input_size_is_refused_for_a_bundle(tmp_path: Path):
    from rapsam_edge.deploy.quantize.pipeline import source_bundle
    from rapsam_edge.errors import ConfigError

    with pytest.raises(ConfigError, match="--input-size applies to trained weights"):
        source_bundle(str(MODELS / "edge-xs-synthetic"), tmp_path, 480)


def test_cpu_capabilities_does_not_hide_a_broken_openvino(monkeypatch):
    ov = pytest.importorskip("openvino")
    from rapsam_edge.deploy.backends.openvino.fp16 import cpu_capabilities
    from rapsam_edge.errors import BackendError

    class Broken:
        available_devices = ("CPU",)  # a CPU device that cannot answer: a broken plugin

        def get_property(self, *_):
            raise RuntimeError("CPU plugin not found")

    monkeypatch.setattr(ov, "Core", Broken)
    with pytest.raises(BackendError, match="CPU plugin not found") as info:
        cpu_capabilities()
    assert info.value.hint and "available_devices" in info.value.hint


def test_a_failed_gate_ends_in_one_line_and_a_hint(tmp_path: Path):
    pytest.importorskip("torch")
    pytest.importorskip("openvino")
    val = tmp_path / "val"
    subprocess.run(
        [
            *(sys.executable, "-m", "rapsam_edge.cli", "make-data", "--seed", "3"),
            *("--split", "val", "--out", str(val), "--num-images", "6", "--num-videos", "1"),
            *("--video-length", "2", "--quiet"),
        ],
        check=True,
        capture_output=True,
    )
    argv = [sys.executable, str(SCRIPT), "--recipe", "x86-openvino-bf16", "--weights"]
    argv += [str(MODELS / "edge-xs-synthetic"), "--calib", str(val), "--out", str(tmp_path / "b")]
    argv += ["--val-images", "4", "--min-label-agreement", "1", "--min-mask-iou", "1"]
    argv += ["--max-pq-drop", "0", "--max-miou-drop", "0"]  # the strictest limits: BF16 fails
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    hints = [line for line in proc.stderr.splitlines() if ": hint: " in line]
    assert len(errors) == 1 and "fails the gate" in errors[0]
    assert len(hints) == 1 and "--fallback" in hints[0]
    assert not (tmp_path / "b").exists()


def test_preprocess_says_when_tensors_stay_untyped(tmp_path: Path, monkeypatch, caplog):
    """When symbolic shape inference fails after ONNX shape inference left tensors untyped,
    the partly typed graph is used with a WARNING naming what the quantizer will skip."""
    import shutil

    from rapsam_edge.deploy.backends.onnxruntime import graph_prep

    class FakeQuantization:
        @staticmethod
        def quant_pre_process(src, dst, **kwargs):
            if kwargs.get("auto_merge"):
                raise Exception("symbolic inference failed on Range")  # as ORT does
            shutil.copyfile(src, dst)

    src = tmp_path / "g.onnx"
    src.write_bytes(b"not parsed: the helpers are replaced")
    monkeypatch.setattr(graph_prep, "ort_quantization", lambda: FakeQuantization)
    monkeypatch.setattr(graph_prep, "_untyped_tensors", lambda path: ["t1", "t2"])
    with caplog.at_level(logging.WARNING, logger=graph_prep.__name__):
        assert graph_prep.preprocess(src, tmp_path / "out.onnx") == "onnx-shape"
    assert "symbolic inference failed on Range" in caplog.text
    assert "left 2 tensors untyped" in caplog.text and "they stay FP32" in caplog.text
