"""Quantization-aware distillation (``rapsam-edge quantize --qat``): the FakeQuantize -> QDQ
rewrite for ONNX Runtime against NNCF's own fake quantization and OpenVINO, its refusals, and
a small QAT round trip (a few steps on a tiny model) through the command users run, on both
backends."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nncf")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rapsam_edge.deploy.backends.onnxruntime.qdq import (  # noqa: E402
    FQ_DOMAIN,
    fake_quantize_to_qdq,
)
from rapsam_edge.errors import ConfigError  # noqa: E402


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.mean((2, 3))), y


def _quantized_net():
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    torch.manual_seed(0)
    net = _Net().eval()
    data = [torch.randn(1, 3, 16, 16) for _ in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = nncf.quantize(
            net,
            nncf.Dataset(data),
            subset_size=4,
            advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
        )
        buf = io.BytesIO()
        torch.onnx.export(
            q, (data[0],), buf, input_names=["x"], output_names=["a", "b"], dynamo=False
        )
    return q, onnx.load_from_string(buf.getvalue())


def test_qdq_rewrite_computes_what_the_fake_quantizers_compute():
    """Every FakeQuantize becomes a Q/DQ pair (weights int8 with zero point 0, activations
    uint8); ONNX Runtime on the result, with and without its fusions, agrees with NNCF's
    torch fake quantization and with OpenVINO on the FakeQuantize graph to one step."""
    q, proto = _quantized_net()
    fq = sum(n.op_type == "FakeQuantize" for n in proto.graph.node)
    qdq = fake_quantize_to_qdq(proto)
    assert fq > 0
    assert not any(n.domain == FQ_DOMAIN for n in qdq.graph.node)
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) == fq
    assert not any(o.domain == FQ_DOMAIN for o in qdq.opset_import)
    onnx.checker.check_model(qdq)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    for node in qdq.graph.node:
        if node.op_type == "QuantizeLinear":
            zero = inits[node.input[2]]
            if node.input[0] in inits:  # a weight: symmetric int8, per output channel
                assert zero.dtype == np.int8 and not zero.any() and zero.ndim == 1
            else:
                assert zero.dtype == np.uint8
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = [o.numpy() for o in q(x)]
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for options in (plain, ort.SessionOptions()):
        got = ort.InferenceSession(
            qdq.SerializeToString(), options, providers=["CPUExecutionProvider"]
        ).run(None, {"x": x.numpy()})
        for g, w in zip(got, want):
            step = np.abs(w).max() / 127  # one activation step at most
            assert np.abs(g - w).max() <= step, (np.abs(g - w).max(), step)
    ov = pytest.importorskip("openvino")
    model = ov.Core().read_model(proto.SerializeToString(), b"")
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled({0: x.numpy()})
    for i, w in enumerate(want):
        assert np.abs(got[i] - w).max() <= np.abs(w).max() / 127


def _fq_model(lo, hi, levels=256, out=None):
    """One FakeQuantize node on input x with the given ranges (out: output range)."""
    from onnx import TensorProto, helper, numpy_helper

    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    olo, ohi = (lo, hi) if out is None else (np.asarray(v, np.float32) for v in out)
    inits = [
        numpy_helper.from_array(v, n) for v, n in ((lo, "il"), (hi, "ih"), (olo, "ol"), (ohi, "oh"))
    ]
    node = helper.make_node(
        "FakeQuantize", ["x", "il", "ih", "ol", "oh"], ["y"], "fq", domain=FQ_DOMAIN, levels=levels
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(FQ_DOMAIN, 1)]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lo=[-1.0], hi=[1.0], levels=1024), "1024 levels"),
        (dict(lo=[0.5], hi=[2.0]), "does not hold 0"),
        (dict(lo=[-2.0], hi=[-0.5]), "does not hold 0"),
        (dict(lo=[-1.0], hi=[1.0], out=([-2.0], [2.0])), "ranges differ"),
        (dict(lo=[-0.3], hi=[1.0]), "not on a quantization step"),
        (dict(lo=[[-1.0, -1.0], [-1.0, -1.0]], hi=[[1.0, 1.0], [1.0, 1.0]], levels=255), "shape"),
    ],
)
def test_qdq_rewrite_refuses_what_it_cannot_express(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fake_quantize_to_qdq(_fq_model(**kwargs))


def test_qdq_rewrite_refuses_a_range_computed_in_the_graph():
    from onnx import helper

    model = _fq_model([-1.0], [1.0])
    model.graph.node.insert(0, helper.make_node("Identity", ["il"], ["il2"]))
    model.graph.node[1].input[1] = "il2"
    with pytest.raises(ConfigError, match="not a constant"):
        fake_quantize_to_qdq(model)


def test_qat_settings_refuse_bad_values():
    from rapsam_edge.deploy.quantize.qat_settings import QatSettings

    for kw, flag in (
        ({"steps": 0}, "--qat-steps"),
        ({"batch_size": 0}, "--qat-batch-size"),
        ({"lr": float("nan")}, "--qat-lr"),
        ({"lr": 0.0}, "--qat-lr"),
        ({"sides": (100,)}, "--qat-sides"),
        ({"sides": ()}, "--qat-sides"),
        ({"fp32_quantizers": -1}, "--qat-fp32-quantizers"),
        ({"fp32_quantizers": True}, "--qat-fp32-quantizers"),
    ):
        with pytest.raises(ConfigError, match=flag):
            QatSettings(**kw)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    from qat_run import make_tiny_run

    return make_tiny_run(tmp_path_factory.mktemp("qat"))


@pytest.mark.parametrize(
    "backend, runtime, qat, graphs",
    [
        ("openvino", "openvino", ["panoptic_decoder"], ["panoptic_decoder", "prompt_decoder"]),
        ("ort", "ort-cpu", [], ["panoptic_decoder"]),  # no names: every converted graph
    ],
)
def test_qat_round_trip_through_the_command(tiny_run, tmp_path, backend, runtime, qat, graphs):
    """`rapsam-edge quantize RUN --to int8 --qat [GRAPH ...]` (2 steps per graph): the
    bundle's graphs are INT8 files with quantizers, QAT for the graphs named (all without
    names) and post-training INT8 for the other converted ones, the manifest records which
    and the gate, and the bundle runs on the backend it was made for."""
    pytest.importorskip("openvino" if backend == "openvino" else "onnxruntime")
    from rapsam_edge.cli import main
    from rapsam_edge.runtime.segmenter import Segmenter

    run, data = tiny_run
    out = tmp_path / "qat"
    argv = [
        "quantize",
        str(run),
        "--to",
        "int8",
        "--backend",
        backend,
        "--calib",
        str(data),
        "--out",
        str(out),
        "--qat",
        *qat,
        "--qat-steps",
        "2",
        "--qat-batch-size",
        "1",
        "--qat-sides",
        "64",
        "--qat-fp32-quantizers",
        "3",
        "--calib-samples",
        "4",
        "--val-images",
        "2",
        "--graphs",
        "panoptic_decoder",
        "prompt_decoder",
        "--max-pq-drop",
        "100",
        "--max-miou-drop",
        "100",
        "--min-mask-iou",
        "0",
        "--min-label-agreement",
        "0",
    ]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    quant = manifest["export"]["quantization"]
    assert quant["gate"]["passed"] is True
    for graph in graphs:
        assert manifest["graphs"][graph]["precision"] == "int8"
        record = quant["graphs"][graph]
        if not qat or graph in qat:
            assert "quantization-aware" in record["tool"] and record["fake_quantize"] > 0
            assert record["settings"]["steps"] == 2
            # the quantizers left FP32 are named, and none of them was exported
            assert len(record["fp32_quantizers"]) == 3
            assert 0 < record["fake_quantize"] <= record["quantizers"] - 3
        else:
            assert "quantization-aware" not in record["tool"]
    assert manifest["graphs"]["encoder"]["precision"] == "fp32"
    if backend == "ort":
        proto = onnx.load(str(out / manifest["graphs"]["panoptic_decoder"]["files"]["onnx"]))
        assert sum(n.op_type == "QuantizeLinear" for n in proto.graph.node) > 0
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    with Segmenter(out, runtime) as seg:
        result = seg.panoptic(frame)
        assert result.panoptic_map.shape == (48, 64)
        seg.set_image(frame)
        masks = seg.prompt(points=[(10, 10)])
        assert masks.masks.shape == (1, 48, 64) and np.isfinite(masks.iou).all()


def test_qat_refuses_a_bundle_source_and_other_precisions(tiny_run, tmp_path):
    from rapsam_edge.deploy.quantize.pipeline import QuantizeRequest
    from rapsam_edge.deploy.quantize.qat_settings import QatSettings

    run, data = tiny_run
    common = dict(out=tmp_path / "o", backend="openvino", calib=data, qat=QatSettings())
    with pytest.raises(ConfigError, match="not a training run"):
        QuantizeRequest(source="models/edge-s-fused-synthetic", to="int8", **common)
    with pytest.raises(ConfigError, match="not int8"):
        QuantizeRequest(source=str(run), to="fp16", **common)
    with pytest.raises(ConfigError, match="exclude"):
        QuantizeRequest(source=str(run), to="int8", accuracy_control=1.0, **common)
    common["qat"] = QatSettings(graphs=("encoder",))
    with pytest.raises(ConfigError, match="not among the converted graphs"):
        QuantizeRequest(source=str(run), to="int8", graphs=["panoptic_decoder"], **common)
    with pytest.raises(ConfigError, match="choose from"):
        QatSettings(graphs=("decoder",))
