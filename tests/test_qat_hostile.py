"""Hostile and odd ONNX graphs for the FakeQuantize -> QDQ rewrite (``fake_quantize_to_qdq``):
every graph it cannot express exactly is a ConfigError naming the node (by name and output),
never an IndexError / StopIteration / ValueError, and never a silently different graph."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rapsam_edge.deploy.backends.onnxruntime.qdq import (  # noqa: E402
    FQ_DOMAIN,
    fake_quantize_to_qdq,
)
from rapsam_edge.errors import ConfigError  # noqa: E402

# a range that holds 0 on a step of 256 levels: [-128 s, 127 s]
S = 1.0 / 64
LO, HI = -128 * S, 127 * S


def _fq(
    ranges=((LO, HI),) * 2,
    levels=256,
    n_inputs=5,
    src="x",
    name="fq",
    out="y",
    attr="int",
    shape=(2, 3),
):
    """One FakeQuantize node (input ``src``, output ``out``) in a graph x -> y; ``ranges`` are
    (low, high) for input and output; ``attr`` the form of ``levels`` (int, float, str, None)."""
    (il, ih), (ol, oh) = (tuple(np.asarray(v, np.float32) for v in r) for r in ranges)
    tag = out
    inits = [
        numpy_helper.from_array(v, f"{tag}_{n}")
        for v, n in ((il, "il"), (ih, "ih"), (ol, "ol"), (oh, "oh"))
    ]
    attrs = {"int": {"levels": levels}, "float": {"levels": float(levels)}}
    attrs |= {"str": {"levels": str(levels)}, None: {}}
    ins = [src, *(f"{tag}_{n}" for n in ("il", "ih", "ol", "oh"))][:n_inputs]
    node = helper.make_node("FakeQuantize", ins, [out], name, domain=FQ_DOMAIN, **attrs[attr])
    return node, inits


def _model(nodes, inits, shape=(2, 3), out="y"):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(shape))],
        inits,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(FQ_DOMAIN, 1)]
    )


def _one(**kw):
    node, inits = _fq(**kw)
    return _model([node], inits)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(attr=None), "0 'levels' attributes"),
        (dict(attr="float"), "not an integer attribute"),
        (dict(attr="str"), "not an integer attribute"),
        (dict(levels=2**40), "1099511627776 levels"),
        (dict(levels=-5), "-5 levels"),
        (dict(levels=1), "1 levels"),
        (dict(ranges=((NAN, HI), (NAN, HI))), "not finite"),
        (dict(ranges=((LO, NAN), (LO, NAN))), "not finite"),
        (dict(ranges=((LO, INF), (LO, INF))), "not finite"),
        (dict(ranges=((-INF, HI), (-INF, HI))), "not finite"),
        (dict(ranges=((LO, [HI, HI, HI]), (LO, [HI, HI, HI]))), "different shapes"),
        (dict(ranges=(([LO, LO], [HI, HI, HI]),) * 2), "different shapes"),
        (dict(ranges=((LO, HI), ([LO], [HI]))), "different shapes"),
        (dict(ranges=((np.zeros(0), np.zeros(0)),) * 2), "empty ranges"),
        (dict(ranges=((np.zeros((3, 0)), np.zeros((3, 0))),) * 2), "empty ranges"),
        (dict(n_inputs=3), "3 inputs"),
        (dict(n_inputs=1), "1 inputs"),
        (dict(levels=16, ranges=((0.0, 1.0),) * 2), "activation with 16 levels"),
        (dict(ranges=((0.0, 1e-44),) * 2), "out of float32"),
        (dict(ranges=(([[LO, LO], [LO, LO]], [[HI, HI], [HI, HI]]),) * 2), "shape"),
    ],
)
def test_hostile_fake_quantize_is_a_config_error_naming_the_node(kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        fake_quantize_to_qdq(_one(**kw))
    assert "'fq' (output 'y')" in str(err.value)


def test_a_graph_without_fake_quantize_is_refused():
    model = _model([helper.make_node("Identity", ["x"], ["y"], "id")], [])
    with pytest.raises(ConfigError, match="no FakeQuantize"):
        fake_quantize_to_qdq(model)


def _reference(x, lo, hi, levels):
    s = (hi - lo) / (levels - 1)
    return np.round((np.clip(x, lo, hi) - lo) / s) * s + lo


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_a_weight_outside_its_range_is_clamped_as_the_node_clamps():
    """Narrow-range symmetric weights (255 levels, codes -127..127) become int8, whose codes
    reach -128: a weight below the range must still give the range's low end."""
    s, levels = 0.5, 255
    lo, hi = -127 * s, 127 * s
    w = np.array([[-100.0, -64.0, 0.26], [10.0, 63.4, 90.0]], np.float32)
    node, inits = _fq(ranges=((lo, hi),) * 2, levels=levels, src="w", out="wq")
    inits.append(numpy_helper.from_array(w, "w"))
    add = helper.make_node("Add", ["wq", "x"], ["y"], "add")
    model = _model([node, add], inits)
    qdq = fake_quantize_to_qdq(model)
    onnx.checker.check_model(qdq)
    x = np.zeros((2, 3), np.float32)
    want = _reference(w.astype(np.float64), lo, hi, levels)
    np.testing.assert_allclose(_run(qdq, x), want, atol=1e-6)
    # the original weight is untouched (another node may read it)
    assert np.array_equal(numpy_helper.to_array(qdq.graph.initializer[4]), w)


def test_duplicate_and_empty_node_names_give_unique_qdq_names():
    a, ia = _fq(name="fq", out="a")
    b, ib = _fq(name="fq", src="a", out="b")
    c, ic = _fq(name="", src="b", out="y")
    clash = helper.make_node("Identity", ["x"], ["fq/Q"], "fq/Q")  # a name the rewrite would use
    model = _model([clash, a, b, c], ia + ib + ic)
    qdq = fake_quantize_to_qdq(model)
    onnx.checker.check_model(qdq)
    names = [n.name for n in qdq.graph.node]
    assert len(names) == len(set(names)), names
    x = np.array([[-3.0, -0.51, 0.0], [0.3, 1.7, 5.0]], np.float32)
    want = _reference(x.astype(np.float64), LO, HI, 256)
    np.testing.assert_allclose(_run(qdq, x), want, atol=1e-6)


def test_per_channel_ranges_of_lower_rank_take_the_broadcast_axis():
    """Ranges of shape (3,) on a (2, 3) weight vary along axis 1 (broadcasting aligns the
    last dims), not axis 0."""
    s = np.array([0.5, 0.25, 1.0], np.float32)
    lo, hi = -128 * s, 127 * s
    w = np.array([[-10.0, 3.1, 60.2], [7.3, -40.0, -200.0]], np.float32)
    node, inits = _fq(ranges=((lo, hi),) * 2, src="w", out="wq")
    inits.append(numpy_helper.from_array(w, "w"))
    model = _model([node, helper.make_node("Add", ["wq", "x"], ["y"], "add")], inits)
    qdq = fake_quantize_to_qdq(model)
    q = next(n for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    assert [a.i for a in q.attribute if a.name == "axis"] == [1]
    want = _reference(w.astype(np.float64), lo, hi, 256)
    np.testing.assert_allclose(_run(qdq, np.zeros((2, 3), np.float32)), want, atol=1e-6)


def test_per_channel_ranges_on_an_input_of_unknown_rank_are_refused():
    s = np.array([0.5, 0.25, 1.0], np.float32)
    node, inits = _fq(ranges=((-128 * s, 127 * s),) * 2, src="h", out="y")
    relu = helper.make_node("Relu", ["x"], ["h"], "relu")
    with pytest.raises(ConfigError, match=r"'fq' \(output 'y'\): per-channel.*unknown rank"):
        fake_quantize_to_qdq(_model([relu, node], inits))
