"""Export + parity: torch wrappers vs ONNX Runtime vs OpenVINO, for every graph, at two
image sizes and several prompt counts through the same ONNX / IR files.

Tolerances (float32 CPU): logits / embeddings max-abs-diff <= ATOL (measured ~1e-5 at
128x160 on random weights); masks (logits > 0 at mask resolution, or > the reference
mask's median when the mask is all-empty / all-full at 0) IoU >= 0.99 per mask.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from rapsam_edge.bundle import load_bundle  # noqa: E402
from rapsam_edge.deploy.graphs import GRAPH_IO, example_inputs, make_graph  # noqa: E402
from rapsam_edge.deploy.onnx_export import DATA_DEPENDENT_OPS  # noqa: E402
from rapsam_edge.runtime import create_backend  # noqa: E402

ATOL = 2e-4
MIN_IOU = 0.99
SIZES = [(128, 160), (96, 224)]
BACKENDS = [
    "ort-cpu",
    pytest.param(
        "openvino",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("openvino") is None, reason="openvino not installed"
        ),
    ),
]


def mask_ious(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """ref, got: ... x h x w logits -> per-mask IoU of the binarised masks. Threshold 0, or
    the reference mask's median where 0 leaves it (nearly) empty or full."""
    ref = ref.reshape(-1, *ref.shape[-2:])
    got = got.reshape(-1, *got.shape[-2:])
    ious = []
    for r, g in zip(ref, got):
        frac = (r > 0).mean()
        t = 0.0 if 0.01 < frac < 0.99 else float(np.median(r))
        a, b = r > t, g > t
        union = (a | b).sum()
        ious.append(1.0 if union == 0 else (a & b).sum() / union)
    return np.asarray(ious)


@pytest.fixture(scope="module")
def bundle(xs_bundle):
    return load_bundle(xs_bundle[0])


@pytest.fixture(scope="module")
def backends(bundle):
    return {
        (name, g): create_backend(bundle, g, name, intra_op_threads=2)
        if name == "ort-cpu"
        else create_backend(bundle, g, name, num_threads=2)
        for name in ("ort-cpu", "openvino")
        if name == "ort-cpu" or importlib.util.find_spec("openvino")
        for g in GRAPH_IO
    }


def torch_outputs(model, graph: str, inputs) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = make_graph(model, graph)(*inputs)
    out = out if isinstance(out, tuple) else (out,)
    return {o[0]: t.numpy() for o, t in zip(GRAPH_IO[graph].outputs, out)}


def test_onnx_files_are_valid_and_static_friendly(bundle):
    for g in GRAPH_IO:
        proto = onnx.load(str(bundle.graph_path(g, "onnx")))
        onnx.checker.check_model(proto, full_check=True)
        assert proto.opset_import[0].version >= 17
        ops = {n.op_type for n in proto.graph.node}
        assert not ops & DATA_DEPENDENT_OPS, g
        # I/O shapes as in the manifest: constants pinned, dynamic axes named
        info = bundle.graphs[g]
        for vi, spec in zip(
            list(proto.graph.input) + list(proto.graph.output), info.inputs + info.outputs
        ):
            assert vi.name == spec.name
            dims = [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
            for d, s in zip(dims, spec.shape):
                assert (d == s) if isinstance(s, int) else isinstance(d, str), (g, dims, spec)
    enc = onnx.load(str(bundle.graph_path("encoder", "onnx")))
    # uint8 image feeds a Cast first (TensorRT takes uint8 only into a cast)
    first = [n for n in enc.graph.node if "image" in n.input]
    assert [n.op_type for n in first] == ["Cast"]


@pytest.fixture(scope="module")
def cases(xs_bundle):
    """Per image size: graph -> (inputs as numpy feeds, torch reference outputs). The
    decoders get the torch encoder's features, so each graph is compared on its own."""
    model = xs_bundle[1]
    out = {}
    for h, w in SIZES:
        (image,) = example_inputs(model, "encoder", height=h, width=w, seed=1)
        feats = torch.from_numpy(torch_outputs(model, "encoder", (image,))["feats"])
        boxes = example_inputs(model, "prompt_decoder", height=h, width=w, num_prompts=5, seed=1)[1]
        args = {"encoder": (image,), "panoptic_decoder": (feats,), "prompt_decoder": (feats, boxes)}
        out[(h, w)] = {
            g: (
                {i[0]: x.numpy() for i, x in zip(GRAPH_IO[g].inputs, a)},
                torch_outputs(model, g, a),
            )
            for g, a in args.items()
        }
    return out


@pytest.mark.parametrize("hw", SIZES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("backend", BACKENDS)
def test_parity_every_graph(cases, backends, backend, hw):
    for g, (feeds, ref) in cases[hw].items():
        got = backends[(backend, g)].run(feeds)
        for name, r in ref.items():
            assert got[name].shape == r.shape, (g, name)
            diff = float(np.abs(got[name] - r).max())
            assert diff <= ATOL, f"{backend} {g}.{name} max-abs-diff {diff:.2e} > {ATOL}"
            if name == "mask_logits":
                iou = mask_ious(r, got[name])
                assert iou.min() >= MIN_IOU, f"{backend} {g} min mask IoU {iou.min():.4f}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_end_to_end_chain(cases, backends, backend):
    """The backend's own encoder output feeds its decoders (errors compound through the
    decoders' hard mask pooling): masks still agree with torch."""
    case = cases[SIZES[0]]
    feeds, _ = case["encoder"]
    feats = backends[(backend, "encoder")].run(feeds)["feats"]
    pan_ref = case["panoptic_decoder"][1]
    pan = backends[(backend, "panoptic_decoder")].run({"feats": feats})
    pr_feeds, pr_ref = case["prompt_decoder"]
    pr = backends[(backend, "prompt_decoder")].run({**pr_feeds, "feats": feats})
    assert mask_ious(pan_ref["mask_logits"], pan["mask_logits"]).min() >= MIN_IOU
    assert mask_ious(pr_ref["mask_logits"], pr["mask_logits"]).min() >= MIN_IOU
    assert np.abs(pan["cls_logits"] - pan_ref["cls_logits"]).max() <= 1e-3


@pytest.fixture(scope="module")
def prompt_cases(xs_bundle):
    """(batch, P) -> (feeds, torch reference) at 96x224 for the dynamic-P test."""
    model = xs_bundle[1]
    feats2, _ = example_inputs(model, "prompt_decoder", batch=2, height=96, width=224)
    out = {}
    for batch, p in [(1, 1), (1, 3), (1, 17), (2, 3)]:
        _, boxes = example_inputs(
            model, "prompt_decoder", batch=batch, height=96, width=224, num_prompts=p, seed=p
        )
        feats = feats2[:batch]
        out[(batch, p)] = (
            {"feats": feats.numpy(), "boxes": boxes.numpy()},
            torch_outputs(model, "prompt_decoder", (feats, boxes)),
        )
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_prompt_count_and_batch(prompt_cases, backends, backend):
    run = backends[(backend, "prompt_decoder")].run
    for (batch, p), (feeds, ref) in prompt_cases.items():
        got = run(feeds)
        assert got["mask_logits"].shape == (batch, p, 12, 28)
        assert got["iou"].shape == (batch, p)
        for name in ref:
            assert np.abs(got[name] - ref[name]).max() <= ATOL, (backend, batch, p, name)


def test_mask_iou_check_is_meaningful(xs_bundle):
    """Random weights: panoptic masks have both signs at 0, prompt masks are all-positive
    at 0 (so ``mask_ious`` thresholds them at their median). Either way every binarised
    reference mask must have both foreground and background, else the IoU check is empty."""
    model = xs_bundle[1]
    feats, boxes = example_inputs(model, "prompt_decoder", num_prompts=5, seed=1)
    prompt = torch_outputs(model, "prompt_decoder", (feats, boxes))["mask_logits"]
    pan = torch_outputs(model, "panoptic_decoder", (feats,))["mask_logits"]
    assert ((pan > 0).mean(axis=(2, 3)) > 0.01).mean() > 0.5  # mostly two-signed at 0
    for m in (prompt, pan):
        for r in m.reshape(-1, *m.shape[-2:]):
            frac = (r > 0).mean()
            t = 0.0 if 0.01 < frac < 0.99 else float(np.median(r))
            assert 0.0 < (r > t).mean() < 1.0
