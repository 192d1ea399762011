"""`rapsam-edge quantize --qat` used wrongly: options that would silently do nothing and
settings that would ship the FP32 graph as INT8 are ConfigErrors naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nncf")
onnx = pytest.importorskip("onnx")

from rapsam_edge.cli import main  # noqa: E402
from rapsam_edge.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    from qat_run import make_tiny_run

    return make_tiny_run(tmp_path_factory.mktemp("qat-hostile"))


def _argv(run: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "quantize",
        str(run),
        "--to",
        "int8",
        "--backend",
        "ort",
        "--calib",
        str(data),
        "--out",
        str(out),
        "--calib-samples",
        "2",
        "--val-images",
        "2",
        "--graphs",
        "panoptic_decoder",
        *extra,
    ]


@pytest.mark.parametrize(
    "flags",
    [
        ["--qat-steps", "5"],
        ["--qat-lr", "1e-3"],
        ["--qat-batch-size", "2", "--qat-sides", "64"],
        ["--qat-fp32-quantizers", "0"],
    ],
)
def test_qat_options_without_qat_are_refused(tiny_run, tmp_path, capsys, flags):
    run, data = tiny_run
    out = tmp_path / "q"
    assert main(_argv(run, data, out, *flags)) != 0
    err = capsys.readouterr().err
    assert f"{flags[0]}" in err and "without --qat" in err and "Traceback" not in err
    assert not out.exists()


def test_qat_that_leaves_every_quantizer_fp32_is_refused(tiny_run, tmp_path, capsys):
    """--qat-fp32-quantizers at or above the graph's quantizer count would export the FP32
    graph and gate it as INT8 (it passes: it is the source)."""
    run, data = tiny_run
    out = tmp_path / "q"
    argv = _argv(run, data, out, "--qat", "--qat-steps", "1", "--qat-batch-size", "1")
    argv += ["--qat-sides", "64", "--qat-fp32-quantizers", "1000"]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "--qat-fp32-quantizers 1000 leaves none" in err and "Traceback" not in err
    assert not (out / "manifest.json").exists()


def test_a_qat_graph_without_fake_quantize_is_not_written(tmp_path):
    from onnx import TensorProto, helper

    from rapsam_edge.deploy.quantize.qat import write_qat_graph

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    proto = helper.make_model(graph)
    for fmt, name in (("onnx", "g.onnx"), ("openvino", "g.xml")):
        with pytest.raises(ConfigError, match="no FakeQuantize"):
            write_qat_graph(proto, fmt, tmp_path / name, tmp_path)
        assert not (tmp_path / name).exists()
