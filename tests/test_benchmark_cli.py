"""`rapsam-edge benchmark`: one row per model x backend x precision for every shipped bundle
(the real-time ones included) and fresh variants, printed and, with --out, written as Markdown
and JSON (a fresh variant is exported with torch)."""

from __future__ import annotations

import json

import pytest

from rapsam_edge.assets import DEFAULT_BUNDLE, REALTIME_BUNDLE, shipped_bundles
from rapsam_edge.cli import main

pytest.importorskip("torch")


def test_benchmark_table(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", "--variants", "edge-xs", "--backends", "ort-cpu", "openvino"]
    argv += [
        "--precisions",
        "fp32",
        "--input",
        "160x120",
        "--warmup",
        "1",
        "--iters",
        "3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    got = {(r["variant"], r["backend"], r["precision"]) for r in rows}
    assert ("edge-xs", "ort-cpu", "fp32") in got and ("edge-xs", "openvino", "fp32") in got
    int8_name = f"{DEFAULT_BUNDLE}-ov-int8"
    # every shipped bundle, the real-time model and its INT8 twin included
    assert {r["bundle"] for r in rows} == {*shipped_bundles(), "edge-xs-random"}
    assert {REALTIME_BUNDLE, f"{REALTIME_BUNDLE}-ov-int8", int8_name} <= set(shipped_bundles())
    assert rows[0]["bundle"] == DEFAULT_BUNDLE  # the default model first
    int8 = [r for r in rows if r["bundle"] == int8_name]
    assert [(r["backend"], r["precision"]) for r in int8] == [("openvino", "int8+fp32")]
    for r in rows:
        assert r["fps_p50"] == pytest.approx(1000 / r["end_to_end_p50_ms"])
        assert r["encoder_p50_ms"] > 0
        assert r["e2e_over_stages"] > 0  # its formula: test_e2e_over_stages_is_a_ratio_of_means
    md = out.with_suffix(".md").read_text()
    assert "| edge-xs | edge-xs-random | openvino | fp32 |" in md and md in capsys.readouterr().out


def test_benchmark_writes_no_file_unless_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["benchmark", "--bundle", "edge-xs-synthetic", "--no-fresh", "--backends", "ort-cpu"]
    assert main([*argv, "--input", "160x120", "--warmup", "0", "--iters", "1"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "| edge-xs | edge-xs-synthetic | ort-cpu | fp32 |" in capsys.readouterr().out


def test_e2e_over_stages_is_a_ratio_of_means():
    """The table's e2e / stages column: mean end to end over the sum of the stage means (a
    ratio, not a sum or a difference), on known numbers; how close to 1 it is on a machine
    is what ``rapsam-edge benchmark`` measures."""
    from rapsam_edge.profile.benchmark import _row

    stages = {"encoder": 6.0, "decoder": 3.0, "postprocess": 1.0, "end_to_end": 12.5}
    result = {
        "target": {"bundle": "b", "variant": "v", "backend": "ort-cpu", "precision": "fp32"},
        "stages": {k: {"mean": v, "p50": v / 2} for k, v in stages.items()},
    }
    row = _row(result)
    assert row["e2e_over_stages"] == pytest.approx(12.5 / 10.0)
    assert row["fps_p50"] == pytest.approx(1000 / 6.25) and row["encoder_p50_ms"] == 3.0
