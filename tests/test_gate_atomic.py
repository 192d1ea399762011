"""A derived bundle reaches --out only once it is complete and has passed its gate (issue 26):
an interrupt (Ctrl-C, SIGTERM, kill -9) or a failure at any point leaves --out as it was; a
killed writer's staging folder is never taken for a bundle and the next run removes it;
impossible gate limits are a ConfigError before any work; a bundle records no path of the
machine that wrote it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rapsam_edge.bundle import load_bundle
from rapsam_edge.cli import main
from rapsam_edge.contract.shared import PARTIAL_BUNDLE_MARK
from rapsam_edge.errors import BundleError, ConfigError, ManifestError

pytest.importorskip("openvino")
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "edge-xs-synthetic"


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("val")
    argv = [sys.executable, "-m", "rapsam_edge.cli", "make-data", "--seed", "5", "--split"]
    argv += ["val", "--out", str(root), "--num-images", "3", "--num-videos", "1"]
    subprocess.run([*argv, "--video-length", "2", "--quiet"], check=True, capture_output=True)
    return root


def _argv(val: Path, out: Path, *extra: str) -> list[str]:
    """The cheapest real quantize: BF16 on OpenVINO (no conversion), 1 gate image."""
    argv = ["quantize", "edge-xs-synthetic", "--to", "bf16", "--backend", "openvino"]
    return [*argv, "--calib", str(val), "--out", str(out), "--val-images", "1", *extra]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256 ({} when ``root`` does not exist)."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _previous_bundle(parent: Path) -> Path:
    """A previous good bundle at --out (a copy of the shipped FP32 one)."""
    out = parent / "out"
    shutil.copytree(SHIPPED, out)
    return out


def _staging(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if PARTIAL_BUNDLE_MARK in p.name)


@pytest.mark.parametrize("previous", [False, True], ids=["new-out", "previous-bundle"])
def test_an_interrupt_in_the_gate_leaves_out_as_it_was(val, tmp_path, monkeypatch, previous):
    import rapsam_edge.deploy.quantize.gate as gate

    out = _previous_bundle(tmp_path) if previous else tmp_path / "out"
    before = _snapshot(out)
    seen = {}

    def interrupted(fp32, quant, *args, **kwargs):  # the bundle is written, the gate starts
        seen["staged"] = _snapshot(Path(quant.root))
        seen["out"] = _snapshot(out)
        raise KeyboardInterrupt

    monkeypatch.setattr(gate, "run_gate", interrupted)
    assert main(_argv(val, out, "--overwrite")) == 130  # the CLI's answer to Ctrl-C
    assert {"manifest.json", "encoder.xml", "prompt_decoder.bin"} <= set(seen["staged"])
    assert seen["out"] == before  # nothing reached --out before the gate
    assert _snapshot(out) == before and _staging(tmp_path) == []
    if not previous:
        assert not out.exists()
    else:
        assert load_bundle(out).name == "edge-xs-synthetic"


def test_a_failed_gate_leaves_the_previous_bundle(val, tmp_path, monkeypatch, capsys):
    import rapsam_edge.deploy.quantize.gate as gate

    out = _previous_bundle(tmp_path)
    before = _snapshot(out)
    real = gate.run_gate

    def failing(*args, **kwargs):  # the real gate, its verdict a failure
        report = real(*args, **kwargs)
        return {**report, "passed": False, "failures": ["label agreement 0.9 < 0.98"]}

    monkeypatch.setattr(gate, "run_gate", failing)
    assert main(_argv(val, out, "--overwrite")) == 2
    assert "fails the gate" in capsys.readouterr().err
    assert _snapshot(out) == before and _staging(tmp_path) == []


def test_a_passing_run_replaces_the_previous_bundle(val, tmp_path, capsys):
    out = _previous_bundle(tmp_path)
    assert main(_argv(val, out)) == 2  # a bundle is there: replaced only with --overwrite
    assert "holds a bundle" in capsys.readouterr().err
    assert main(_argv(val, out, "--overwrite")) == 0
    b = load_bundle(out)
    assert {g.precision for g in b.graphs.values()} == {"bf16"}
    assert dict(b.export)["quantization"]["gate"]["passed"] is True
    assert _staging(tmp_path) == []


def test_overwrite_never_replaces_a_directory_that_is_no_bundle(val, tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(_argv(val, out, "--overwrite")) == 2
    assert "not a bundle" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    bundle = _previous_bundle(tmp_path)
    (bundle / "extra.txt").write_text("not listed")  # a bundle plus a file of the user's
    assert main(_argv(val, bundle, "--overwrite")) == 2
    assert "does not list" in capsys.readouterr().err and (bundle / "extra.txt").exists()


_HOOK = """
import sys, time
import rapsam_edge.deploy.quantize.gate as gate
def paused(*args, **kwargs):  # the gate starts: say so, then wait for the signal
    open(sys.argv[1], "w").close()
    time.sleep(120)
gate.run_gate = paused
from rapsam_edge.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_until_the_gate(val: Path, out: Path, flag: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOOK, str(flag), *_argv(val, out, "--overwrite")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"quantize ended before its gate: {proc.stderr.read()}")
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_the_gate_leaves_out_as_it_was(val, tmp_path, sig):
    out = _previous_bundle(tmp_path)
    before = _snapshot(out)
    proc = _run_until_the_gate(val, out, tmp_path / "in-gate")
    assert len(_staging(tmp_path)) == 1  # the bundle waits beside --out
    proc.send_signal(sig)
    rc = proc.wait(timeout=60)
    assert rc == (130 if sig == signal.SIGINT else 128 + signal.SIGTERM), proc.stderr.read()
    assert "Traceback" not in proc.stderr.read()
    assert _snapshot(out) == before and _staging(tmp_path) == []


def test_a_killed_run_leaves_a_folder_nothing_loads_and_the_next_run_removes(val, tmp_path):
    from rapsam_edge import Segmenter

    out = tmp_path / "out"
    proc = _run_until_the_gate(val, out, tmp_path / "in-gate")
    proc.kill()
    proc.wait(timeout=60)
    assert not out.exists()
    (stale,) = _staging(tmp_path)
    assert (tmp_path / stale / "manifest.json").is_file()  # complete, but not a bundle:
    for load in (load_bundle, lambda p: Segmenter(p, "openvino")):
        with pytest.raises(BundleError, match="did not finish") as info:
            load(tmp_path / stale)
        assert "re-run" in info.value.hint
    with pytest.raises(BundleError, match="did not finish"):
        load_bundle(tmp_path / stale / "manifest.json")
    assert main(_argv(val, out)) == 0
    assert _staging(tmp_path) == [] and load_bundle(out).graphs["encoder"].precision == "bf16"


def test_a_live_writers_staging_folder_is_left_alone(tmp_path):
    from rapsam_edge.deploy.staging import clean_stale

    out = tmp_path / "out"
    live = tmp_path / f".out{PARTIAL_BUNDLE_MARK}{os.getpid()}-abcd"
    gone = tmp_path / f".out{PARTIAL_BUNDLE_MARK}{2**22 + 7}-abcd"  # above pid_max's default
    other = tmp_path / f".other{PARTIAL_BUNDLE_MARK}{2**22 + 7}-abcd"
    for d in (live, gone, other):
        d.mkdir()
    assert clean_stale(out) == [gone]
    assert live.is_dir() and other.is_dir() and not gone.exists()


def test_an_interrupted_export_leaves_the_previous_bundle(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from rapsam_edge.deploy import bundle_writer
    from rapsam_edge.model.io import load_model

    out = _previous_bundle(tmp_path)
    before = _snapshot(out)
    real, calls = bundle_writer._export_graph, []

    def second_graph_interrupted(model, g, stage, *args):
        calls.append(g)
        if len(calls) == 2:  # one graph written into the staging folder, then Ctrl-C
            assert any(stage.iterdir())
            raise KeyboardInterrupt
        return real(model, g, stage, *args)

    monkeypatch.setattr(bundle_writer, "_export_graph", second_graph_interrupted)
    model = load_model(SHIPPED)
    with pytest.raises(KeyboardInterrupt):
        bundle_writer.export_bundle(model, out, name="new", formats=("onnx",))
    assert len(calls) == 2 and _snapshot(out) == before and _staging(tmp_path) == []


# --- impossible options: a ConfigError before any work ---------------------------------------
IMPOSSIBLE = [
    ("--min-label-agreement", "5"),
    ("--min-label-agreement", "-0.1"),
    ("--min-mask-iou", "1.5"),
    ("--min-mask-iou", "nan"),
    ("--max-pq-drop", "-1"),
    ("--max-pq-drop", "inf"),
    ("--max-miou-drop", "101"),
    ("--calib-samples", "0"),
    ("--calib-samples", "1000000"),
    ("--val-images", "0"),
    ("--accuracy-control", "-1"),
    ("--accuracy-control", "5"),  # with --to bf16: NNCF accuracy control does not apply
    ("--graphs", "decoder"),
    ("--name", "/home/someone/bundle"),  # a path of a machine as the bundle's name
]


@pytest.mark.parametrize("flag,value", IMPOSSIBLE, ids=[f"{f}={v}" for f, v in IMPOSSIBLE])
def test_impossible_options_are_refused_before_any_work(
    val, tmp_path, monkeypatch, capsys, flag, value
):
    from rapsam_edge.deploy.quantize import pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("a model was loaded for options that cannot work")

    monkeypatch.setattr(pipeline, "source_bundle", no_work)
    monkeypatch.setattr(pipeline, "check_request", no_work)
    out = tmp_path / "out"
    try:
        rc = main(_argv(val, out, flag, value))
    except SystemExit as e:  # argparse: a value of the wrong type
        rc = e.code
    assert rc == 2
    assert flag in capsys.readouterr().err
    assert not out.exists() and os.listdir(tmp_path) == []


def test_gate_limits_and_requests_check_themselves():
    from rapsam_edge.deploy.quantize.gate import GateLimits
    from rapsam_edge.deploy.quantize.pipeline import QuantizeRequest

    for bad in (
        {"min_label_agreement": 5.0},
        {"min_median_mask_iou": float("nan")},
        {"max_pq_drop": -0.5},
        {"max_miou_drop": True},
        {"max_pq_drop": "1"},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            GateLimits(**bad)
    assert GateLimits(0.0, 100.0, 0.0, 1.0).min_label_agreement == 1.0  # the range's ends
    base = dict(source="s", out=Path("o"), to="int8", backend="ort", calib=Path("c"))
    for bad in ({"calib_samples": 0}, {"val_images": -1}, {"limits": None}, {"graphs": ["x"]}):
        with pytest.raises(ConfigError):
            QuantizeRequest(**base, **bad)


# --- the gate record the runtime requires ----------------------------------------------------
def _with_gate(tmp_path: Path, gate) -> Path:
    out = tmp_path / "int8"
    shutil.copytree(REPO / "models" / "edge-xs-synthetic-ov-int8", out)
    manifest = json.loads((out / "manifest.json").read_text())
    if gate is None:
        del manifest["export"]["quantization"]["gate"]
    else:
        manifest["export"]["quantization"]["gate"] = gate
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.parametrize(
    "gate,field",
    [
        (None, "export.quantization.gate: missing"),
        ({"passed": False, "failures": ["x"]}, "gate.passed: false"),
        ({"passed": None}, "gate.passed: null"),  # not verified, without saying why
        ("yes", "export.quantization.gate"),
    ],
)
def test_a_quantized_bundle_without_a_passed_gate_is_refused(tmp_path, gate, field):
    from rapsam_edge import Segmenter

    out = _with_gate(tmp_path, gate)
    with pytest.raises(ManifestError, match=field.replace(".", r"\.")) as info:
        load_bundle(out)
    assert "rapsam-edge quantize" in info.value.hint or gate == "yes"
    with pytest.raises(ManifestError):
        Segmenter(out, "openvino")


def test_a_gate_skipped_on_purpose_loads(tmp_path):
    out = _with_gate(tmp_path, {"passed": None, "skipped": "tensorrt is not usable here"})
    assert load_bundle(out).graphs["encoder"].precision == "int8"


# --- no machine paths in bundles --------------------------------------------------------------
def _strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def _machine_paths(bundle: Path, allowed: set[str] = frozenset()) -> list[str]:
    """Strings of the bundle's JSON files that start with '/' (other than ``allowed``
    graph node and tensor names) or hold this machine's temporary or home directory."""
    home, tmp = os.path.expanduser("~"), tempfile.gettempdir()
    found = []
    for f in sorted(bundle.rglob("*.json")):
        for s in _strings(json.loads(f.read_text())):
            if (s.startswith("/") and s not in allowed) or tmp in s or home in s:
                found.append(f"{f.name}: {s}")
    return found


def test_an_exported_bundle_records_no_machine_path(tmp_path, capsys):
    pytest.importorskip("torch")
    from rapsam_edge.model.io import load_model, save_model

    weights = tmp_path / "run"
    save_model(load_model(SHIPPED), weights)
    out = tmp_path / "b"
    argv = ["export", "--weights", str(weights), "--out", str(out), "--formats", "onnx"]
    assert main([*argv, "--classes", "synthetic", "--include-weights"]) == 0
    assert _machine_paths(out) == []
    record = load_bundle(out).provenance["weights"]
    assert record["name"] == "run" and set(record["files"]) == {"model.safetensors", "config.json"}
    digest = hashlib.sha256((weights / "model.safetensors").read_bytes()).hexdigest()
    assert record["files"]["model.safetensors"] == digest
    extra = tmp_path / "prov.json"  # a provenance file naming a path of this machine
    extra.write_text(json.dumps({"data": str(tmp_path / "data")}))
    assert main([*argv, "--classes", "synthetic", "--provenance", str(extra)]) == 2
    assert "paths of this machine" in capsys.readouterr().err


def test_a_quantized_bundle_records_no_machine_path(val, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    out = tmp_path / "q"
    argv = ["quantize", "edge-xs-synthetic", "--to", "int8", "--backend", "ort", "--graphs"]
    argv += ["prompt_decoder", "--calib", str(val), "--out", str(out), "--val-images", "1"]
    loose = ["--max-pq-drop", "100", "--max-miou-drop", "100", "--min-mask-iou", "0"]
    assert main([*argv, "--calib-samples", "2", *loose, "--min-label-agreement", "0"]) == 0
    graph = onnx.load(str(out / "prompt_decoder.int8.onnx"), load_external_data=False).graph
    names = {n.name for n in graph.node} | {t for n in graph.node for t in n.output}
    assert _machine_paths(out, names) == []
    record = dict(load_bundle(out).export)["quantization"]
    assert record["calibration"]["name"] == val.name and record["calibration"]["frames"] == 2
    assert record["graphs"]["prompt_decoder"]["source"] == "prompt_decoder.onnx"


def test_check_portable_tells_paths_from_graph_names():
    from rapsam_edge.deploy.provenance import machine_paths

    ok = {"n": ["/encoder/Conv_1", "/Mul", "H/8", "models/edge-s-train", "2026.4-releases/2026/4"]}
    assert machine_paths(ok) == []
    for bad in ("/home/u/run", "~/run", "C:\\runs\\x", "rapsam-edge train --out /tmp/x"):
        assert machine_paths({"w": bad}), bad
    assert machine_paths({os.path.expanduser("~") + "/x": 1})  # keys too


def test_shipped_bundles_record_no_machine_path():
    from rapsam_edge.deploy.provenance import machine_paths

    for manifest in sorted((REPO / "models").glob("*/manifest.json")):
        raw = json.loads(manifest.read_text())
        assert machine_paths(raw, manifest.parent.name) == []
        load_bundle(manifest.parent)  # their gate records pass


def test_the_export_script_refuses_an_impossible_limit_before_loading_weights(tmp_path, val):
    script = REPO / "export" / "quantize_and_export.py"
    argv = [sys.executable, str(script), "--recipe", "x86-openvino-int8", "--weights"]
    argv += [str(tmp_path / "no-weights-needed"), "--calib", str(val), "--out", str(tmp_path / "b")]
    (tmp_path / "no-weights-needed").mkdir()  # no model in it: a load would fail otherwise
    proc = subprocess.run(
        [*argv, "--min-label-agreement", "1.01"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--min-label-agreement" in proc.stderr and "[0, 1]" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_a_converted_bundle_names_its_sources_by_name_and_sha256(tmp_path):
    """`rapsam-edge convert CKPT --export`: the manifest names the checkpoint, embeddings
    and class files by name and sha256 (it recorded the checkpoint's absolute path)."""
    torch = pytest.importorskip("torch")
    import importlib.util

    import numpy as np

    from rapsam_edge.model.variants import build_model

    spec = importlib.util.spec_from_file_location(
        "official_ckpt", REPO / "tests" / "official_ckpt.py"
    )
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    torch.manual_seed(0)
    model = build_model("rapsam-r18", num_classes=2, class_prototypes=1).eval()
    emb = torch.nn.functional.normalize(torch.randn(2, 1, 768), dim=-1)
    model.decoder.set_class_embeddings(emb)
    ckpt = tmp_path / "ckpt.pth"
    helper.write_mmengine_checkpoint(model, ckpt)
    np.save(tmp_path / "emb.npy", emb.numpy())
    names = tmp_path / "names.json"
    names.write_text(
        json.dumps([{"name": "a", "is_thing": True}, {"name": "b", "is_thing": False}])
    )
    out = tmp_path / "bundle"
    argv = ["convert", str(ckpt), "--class-embeddings", str(tmp_path / "emb.npy")]
    argv += ["--classes", str(names), "--export", str(out), "--recipe", "cpu-ort-fp32"]
    assert main(argv) == 0
    assert _machine_paths(out) == []
    prov = load_bundle(out).provenance
    assert prov["checkpoint"] == {
        "name": "ckpt.pth",
        "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
    }
    assert prov["class_embeddings"]["name"] == "emb.npy" and prov["classes"]["name"] == "names.json"
