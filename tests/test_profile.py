"""The on-device FPS profiler on the shipped bundle: every mode on ONNX Runtime and
OpenVINO, the JSON contract, compare, the CLI's files, and that it measures through the
Segmenter users call."""

from __future__ import annotations

import json

import pytest

from rapsam_edge.assets import sample_clip
from rapsam_edge.cli import main
from rapsam_edge.errors import ConfigError, SourceError
from rapsam_edge.profile import MODES, ProfileConfig, Target, run_profile
from rapsam_edge.profile.stats import STAT_KEYS, summarize
from rapsam_edge.runtime.segmenter import Segmenter

STAGES = {
    "panoptic": {"prepare", "encoder", "decoder", "postprocess", "end_to_end"},
    "prompt": {"prepare", "encoder", "decoder", "postprocess", "end_to_end"},
    "track": {"prepare", "encoder", "decoder", "postprocess", "tracking", "end_to_end"},
    "stream": {"read", "prepare", "encoder", "decoder", "postprocess", "tracking", "end_to_end"},
}


def _quick(**kw) -> ProfileConfig:
    base = dict(warmup=2, iters=8, input_hw=(120, 160), progress=False)
    return ProfileConfig(**{**base, **kw})


@pytest.mark.parametrize("backend", ["ort-cpu", "openvino"])
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_reports_the_contract(mode, backend):
    pytest.importorskip("openvino") if backend == "openvino" else None
    report = run_profile(_quick(targets=(Target(None, backend),), mode=mode))
    assert set(report["stages"]) == STAGES[mode]
    for st in report["stages"].values():
        assert set(STAT_KEYS) <= set(st) and st["n"] == 8
        assert 0 < st["p50"] <= st["p90"] <= st["p99"] <= st["max"]
    fps = report["fps"]
    if mode == "stream":
        assert fps["stream"] > 0 and fps["sequential"] is None
    else:
        assert fps["sequential"] == pytest.approx(1000 / report["stages"]["end_to_end"]["mean"])
    assert report["memory"]["peak_rss_mib"] > 0
    env = report["environment"]
    assert env["graphs"]["encoder"]["backend"] == backend
    assert env["graphs"]["encoder"]["precision"] == "fp32"
    assert env["frame_hw"] == [120, 160] and env["packages"]["numpy"]
    assert report["profiler_overhead"]["pct_of_frame"] >= 0
    json.dumps(report)  # JSON-ready


def test_it_measures_through_the_segmenter(monkeypatch):
    calls = []
    original = Segmenter.panoptic

    def counted(self, frame):
        calls.append(frame.shape)
        return original(self, frame)

    monkeypatch.setattr(Segmenter, "panoptic", counted)
    run_profile(_quick(targets=(Target(None, "ort-cpu"),), warmup=3, iters=5))
    assert calls == [(120, 160, 3)] * 8


def test_compare_interleaves_targets_with_ratios():
    pytest.importorskip("openvino")
    report = run_profile(
        _quick(targets=(Target(None, "ort-cpu"), Target("edge-xs-synthetic", "openvino")))
    )
    first, second = report["compare"]
    assert "samples" not in second  # raw samples are kept for the first target only
    assert first["ratio_to_first"] == 1.0 and second["ratio_to_first"] > 0
    assert first["target"]["backend"] == "ort-cpu" and second["target"]["backend"] == "openvino"
    assert report["stages"] == first["stages"]


def test_a_targets_precision_reaches_the_backend():
    pytest.importorskip("openvino")
    report = run_profile(
        _quick(targets=(Target(None, "openvino", "fp32"), Target(None, "openvino", "bf16")))
    )
    assert [r["target"]["precision"] for r in report["compare"]] == ["fp32", "bf16"]
    assert report["environment"]["graphs"]["encoder"]["runtime_precision"] == "f32"
    from rapsam_edge.profile.runner import ProfileConfig as PC
    from rapsam_edge.profile.runner import _frames, _Subject

    cfg = _quick(targets=(Target(None, "openvino", "bf16"),))
    frames, stream = _frames(cfg)
    subject = _Subject(cfg.targets[0], cfg, frames, stream)
    assert subject.seg.graphs["encoder"].config["INFERENCE_PRECISION_HINT"] == "bf16"
    subject.close()
    assert PC is ProfileConfig


def test_input_size_overrides_the_bundles():
    report = run_profile(_quick(targets=(Target(None, "ort-cpu"),), input_size=160))
    assert report["environment"]["bundle"]["input_long_side"] == 160


def test_stream_from_a_video_file_times_reading():
    report = run_profile(
        _quick(targets=(Target(None, "ort-cpu"),), mode="stream", source=str(sample_clip()))
    )
    assert report["stages"]["read"]["n"] == 8
    assert report["environment"]["frame_hw"] == [360, 480]  # the clip's frames


def test_bad_settings():
    for kw, match in [
        ({"mode": "batch"}, "mode"),
        ({"iters": 0}, "iters"),
        ({"input_hw": (4, 640)}, "input size"),
        ({"threads": 0}, "threads"),
        ({"precision": "fp8"}, "precision"),
    ]:
        with pytest.raises(ConfigError, match=match):
            run_profile(_quick(**kw))
    with pytest.raises(ConfigError, match="runs the bundle's graphs as exported"):
        run_profile(_quick(targets=(Target(None, "ort-cpu"),), precision="fp16"))
    with pytest.raises(SourceError):
        run_profile(_quick(source="/no/such/clip.mp4"))


def test_summarize():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["p50"] == 3.0 and s["max"] == 100.0 and s["mean"] == 22.0 and s["n"] == 5
    assert summarize([])["n"] == 0


def test_cli_writes_json_markdown_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = {k: tmp_path / f"r.{k}" for k in ("json", "md", "png")}
    argv = ["profile", "--backend", "ort-cpu", "--mode", "track", "--input", "200x150"]
    argv += ["--warmup", "1", "--iters", "6", "--no-progress"]
    argv += ["--json", str(out["json"]), "--markdown", str(out["md"]), "--plot", str(out["png"])]
    assert main(argv) == 0
    report = json.loads(out["json"].read_text())
    assert {"stages", "environment", "memory", "fps"} <= set(report)
    assert report["stages"]["tracking"]["n"] == 6
    assert "| tracking |" in out["md"].read_text() and "| tracking |" in capsys.readouterr().out
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_are_one_line(capsys):
    assert main(["profile", "--backend", "ort-cpu", "--precision", "fp16", "--iters", "1"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
