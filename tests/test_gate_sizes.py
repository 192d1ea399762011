"""The accuracy gate at several network sides (``run_gate(input_sizes=...)``, ``quantize
--gate-sizes``): one report whose numbers are the worst over the sizes, a per-size report
each, a limit failed at one size fails the whole gate and names that size; bad sizes are
refused before any model loads."""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge.bundle import load_bundle
from rapsam_edge.cli import main
from rapsam_edge.commands import quantize as quantize_cmd
from rapsam_edge.data.generate import make_dataset
from rapsam_edge.deploy.quantize.gate import WORST, GateLimits, run_gate
from rapsam_edge.deploy.quantize.pipeline import QuantizeRequest
from rapsam_edge.errors import ConfigError

pytest.importorskip("openvino")

MODELS = Path(__file__).resolve().parents[1] / "models"
FP32 = MODELS / "edge-s-fused-synthetic"
INT8 = MODELS / "edge-s-fused-synthetic-ov-int8"
SIZES = (320, 640)
#: limits nothing fails, to isolate the one a test sets
LOOSE = GateLimits(100.0, 100.0, 0.0, 0.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAPSAM_EDGE_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate-sizes-val")
    make_dataset(
        root,
        seed=29,
        split="val",
        num_images=3,
        num_videos=0,
        image_size=(120, 160),
        progress=False,
    )
    return root


def _gate(val: Path, limits: GateLimits = LOOSE) -> dict:
    return run_gate(
        FP32, INT8, val, backend="openvino", limits=limits, max_images=3, input_sizes=SIZES
    )


@pytest.fixture(scope="module")
def report(val) -> dict:
    return _gate(val)


def _worse(key: str, a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and not math.isnan(b)
    return a > b if WORST[key] == "max" else a < b


def test_one_report_per_size_at_that_size(report):
    assert set(report["sizes"]) == {"320", "640"} and report["input_sizes"] == list(SIZES)
    for size, r in report["sizes"].items():
        assert r["input_size"] == int(size)
        assert r["passed"] is True and r["failures"] == []
        assert {"pq_drop", "miou_drop", "mask_iou_median", "label_agreement"} <= set(r)
    a, b = report["sizes"]["320"], report["sizes"]["640"]
    # the two sizes really ran the network at different sides: their numbers differ
    assert a["fp32"] != b["fp32"]


def test_top_level_is_the_worst_over_sizes(report):
    per_size = report["sizes"]
    for key, way in WORST.items():
        values = [r[key] for r in per_size.values()]
        expected = max(values) if way == "max" else min(values)
        assert report[key] == expected, key
        source = per_size[str(report["worst_size"][key])][key]
        assert source == report[key] and not any(_worse(key, v, source) for v in values)
    at_pq = per_size[str(report["worst_size"]["pq_drop"])]
    assert report["fp32"] == at_pq["fp32"] and report["quantized"] == at_pq["quantized"]
    assert report["num_masks"] == sum(r["num_masks"] for r in per_size.values())
    assert report["passed"] is True and report["failures"] == []
    assert report["limits"] == per_size["320"]["limits"]


@pytest.mark.parametrize(
    "key, limit",
    [
        ("mask_iou_median", "min_median_mask_iou"),
        ("label_agreement", "min_label_agreement"),
    ],
)
def test_a_limit_failed_at_one_size_fails_the_gate_naming_it(val, report, key, limit):
    per_size = {int(s): r[key] for s, r in report["sizes"].items()}
    if per_size[320] == per_size[640]:
        pytest.fail(f"{key} is the same at both sizes ({per_size}): pick another key")
    bad = max(per_size, key=lambda s: per_size[s] if WORST[key] == "max" else -per_size[s])
    good = 640 if bad == 320 else 320
    between = (per_size[bad] + per_size[good]) / 2  # passes at ``good`` only
    gated = _gate(val, GateLimits(**{**LOOSE.__dict__, limit: between}))
    assert gated["passed"] is False
    assert gated["sizes"][str(good)]["passed"] is True
    assert gated["sizes"][str(bad)]["passed"] is False
    assert len(gated["failures"]) == 1 and gated["failures"][0].startswith(f"at {bad}: ")
    assert gated["worst_size"][key] == bad and gated[key] == gated["sizes"][str(bad)][key]
    # the numbers of the passing run: only the limit changed (OpenVINO's results vary in
    # the last digits from one run to the next, far less than the gap ``between`` splits)
    assert gated[key] == pytest.approx(per_size[bad], abs=0.005)
    assert abs(per_size[bad] - per_size[good]) > 0.01


BAD_SIZES = [
    ((300,), "300"),  # not a multiple of 32
    ((16,), "16"),  # below SIDE_MIN
    ((8224,), "8224"),  # above SIDE_MAX
    ((-320,), "-320"),
    ((320, 320), "twice"),
    ((320, 384, 448, 512, 640), "more than 4 sizes"),
    (itertools.count(320, 32), "more than 4 sizes"),  # endless: refused, not hung on
    ((4128,), "4128"),  # a multiple of 32 above the runtime's MAX_INPUT_SIZE
    ((), "0 sizes"),
    ((True,), "True"),
    ((320.0,), "320.0"),
    ("320", "'320'"),
]


@pytest.mark.parametrize("sizes, said", BAD_SIZES)
def test_bad_sizes_are_refused_before_any_work(sizes, said, tmp_path):
    with pytest.raises(ConfigError, match="--gate-sizes") as e:
        QuantizeRequest(
            source=str(FP32),
            out=tmp_path / "out",
            to="int8",
            backend="openvino",
            calib=tmp_path,
            gate_sizes=sizes,
        )
    assert said in str(e.value) and "--gate-sizes" in e.value.hint
    with pytest.raises(ConfigError, match="input_sizes"):
        # a missing data root: the sizes are refused first
        run_gate(FP32, INT8, tmp_path / "absent", backend="openvino", input_sizes=sizes)


def test_sizes_are_read_once_into_a_tuple_of_ints(tmp_path):
    request = QuantizeRequest(
        source=str(FP32),
        out=tmp_path / "out",
        to="int8",
        backend="openvino",
        calib=tmp_path,
        gate_sizes=(s for s in [np.int64(320), 640]),  # a generator: read once, kept
    )
    assert request.gate_sizes == (320, 640) and all(type(s) is int for s in request.gate_sizes)


def test_a_size_the_bundle_cannot_pad_to_is_refused_before_conversion():
    from rapsam_edge.deploy.quantize.pipeline import check_sizes_fit

    check_sizes_fit((320, 640), 32)
    check_sizes_fit(None, 64)
    with pytest.raises(ConfigError, match=r"--gate-sizes \[352\].*multiples of 64"):
        check_sizes_fit((320, 352), 64)


def test_the_cli_parses_gate_sizes_and_refuses_bad_ones(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    quantize_cmd.add_arguments(parser)
    base = [str(FP32), "--to", "int8", "--backend", "openvino", "--calib", str(tmp_path)]
    base += ["--out", str(tmp_path / "out")]
    args = parser.parse_args([*base, "--gate-sizes", "320", "640"])
    assert quantize_cmd.gate_sizes_from(args) == (320, 640)
    assert quantize_cmd.gate_sizes_from(parser.parse_args(base)) is None
    help_text = " ".join(parser.format_help().split())
    assert "--gate-sizes" in help_text and "default: the bundle's own size" in help_text
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--gate-sizes", "16"])
    capsys.readouterr()
    assert main(["quantize", *base, "--gate-sizes", "320", "320"]) == 2
    err = capsys.readouterr().err
    assert "--gate-sizes" in err and "twice" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_quantize_records_every_size_in_the_manifest(val, tmp_path, capsys):
    """bf16 (no conversion, the cheapest) through the whole pipeline: the manifest's gate
    record holds each size's report, and the bundle loads."""
    out = tmp_path / "bf16"
    argv = ["quantize", "edge-xs-synthetic", "--to", "bf16", "--backend", "openvino"]
    argv += ["--calib", str(val), "--out", str(out), "--val-images", "3"]
    argv += ["--gate-sizes", "320", "640", "--max-pq-drop", "100", "--max-miou-drop", "100"]
    argv += ["--min-mask-iou", "0", "--min-label-agreement", "0"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "at 320: gate PASS" in printed and "at 640: gate PASS" in printed
    gate = dict(load_bundle(out).export)["quantization"]["gate"]
    assert gate["passed"] is True and gate["input_sizes"] == [320, 640]
    assert {s: r["input_size"] for s, r in gate["sizes"].items()} == {"320": 320, "640": 640}
    raw = json.loads((out / "manifest.json").read_text())
    assert raw["export"]["quantization"]["gate"]["sizes"]["640"]["passed"] is True


def test_calibration_feeds_cover_every_gate_size():
    """quantize --gate-sizes also calibrates at those sides: frame i is prepared at
    sizes[i % n], so the decoders' feeds hold feature grids of both sizes."""
    import numpy as np

    from rapsam_edge.bundle import load_bundle
    from rapsam_edge.deploy.quantize.calibration import graph_feeds

    bundle = load_bundle("edge-xs-synthetic")
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(4)]
    feeds = graph_feeds(bundle, frames, sizes=(64, 128))
    name = bundle.graphs["panoptic_decoder"].name_of("feats")
    grids = [f[name].shape[-2:] for f in feeds["panoptic_decoder"]]
    assert grids[0] == grids[2] != grids[1] == grids[3]
    assert grids[1][1] == 2 * grids[0][1]
