"""Forward contract of RapSam on edge-xs at small inputs."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rapsam_edge.model import VARIANTS, build_model, points_to_boxes

torch.set_num_threads(1)
H, W = 128, 160


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("edge-xs").eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(0)) * 255


def test_variant_defaults() -> None:
    for name, v in VARIANTS.items():
        assert v.pad_divisor == 32 and v.input_size % 32 == 0, name
    assert VARIANTS["edge-s"].num_classes == 12 and VARIANTS["edge-xs"].num_classes == 12
    assert VARIANTS["rapsam-r50"].feat_stride == 4 and VARIANTS["edge-s"].feat_stride == 8
    with pytest.raises(KeyError):
        build_model("nope")


def test_model_all_lists_every_lazy_name() -> None:
    import rapsam_edge.model as model_pkg

    assert sorted(model_pkg.__all__) == sorted(model_pkg._LAZY)


def test_panoptic_shapes(model, images) -> None:
    s, n, c, d = model.feat_stride, model.num_queries, model.num_classes, 64
    with torch.no_grad():
        feats = model.encode(images)
        out = model.decode_panoptic(feats, all_stages=True)
        fwd = model(images)
    assert feats.shape == (2, d, H // s, W // s)
    assert out["cls_logits"].shape == (2, n, c + 1)
    assert out["mask_logits"].shape == (2, n, H // s, W // s)
    assert out["query_embed"].shape == (2, n, d)
    assert len(out["aux"]) == 3
    for a in out["aux"]:
        assert a["cls_logits"].shape == (2, n, c + 1)
        assert a["mask_logits"].shape == (2, n, H // s, W // s)
    assert "aux" not in fwd
    torch.testing.assert_close(fwd["mask_logits"], out["mask_logits"])


@pytest.mark.parametrize("num_prompts", [1, 3, 30])
def test_prompt_counts(model, images, num_prompts: int) -> None:
    g = torch.Generator().manual_seed(num_prompts)
    pts = torch.rand(2, num_prompts, 2, generator=g) * torch.tensor([W, H])
    with torch.no_grad():
        feats = model.encode(images)
        out = model.decode_prompts(feats, points_to_boxes(pts), all_stages=True)
    assert out["mask_logits"].shape == (2, num_prompts, H // 8, W // 8)
    assert out["iou"].shape == (2, num_prompts)
    # the initial masks, then one entry per stage (with an IoU prediction)
    assert [a["mask_logits"].shape[1] for a in out["aux"]] == [num_prompts] * 4
    assert ["iou" in a for a in out["aux"]] == [False, True, True, True]
    if num_prompts == 30:
        # Prompts are independent: decoding a subset gives the same masks.
        with torch.no_grad():
            sub = model.decode_prompts(feats, points_to_boxes(pts[:, 5:8]))
        torch.testing.assert_close(
            sub["mask_logits"], out["mask_logits"][:, 5:8], rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(sub["iou"], out["iou"][:, 5:8], rtol=1e-4, atol=1e-4)


def test_points_to_boxes_numpy_and_torch() -> None:
    pts = np.array([[10.0, 20.0], [0.0, 5.0]], dtype=np.float32)
    expected = np.array([[7, 17, 13, 23], [-3, 2, 3, 8]], dtype=np.float32)
    np.testing.assert_allclose(points_to_boxes(pts), expected)
    np.testing.assert_allclose(points_to_boxes(torch.from_numpy(pts)[None]).numpy()[0], expected)


def test_boxes_normalised_by_padded_size(model) -> None:
    # The same box relative to the padded input must give the same prompt query.
    q_small = model.prompt_encoder(
        torch.tensor([[[16.0, 32.0, 48.0, 64.0]]]), torch.tensor([160.0, 128.0])
    )
    q_big = model.prompt_encoder(
        torch.tensor([[[32.0, 64.0, 96.0, 128.0]]]), torch.tensor([320.0, 256.0])
    )
    torch.testing.assert_close(q_small, q_big)
    feats = torch.zeros(1, 64, 16, 20)
    assert model.padded_input_size(feats).tolist() == [160.0, 128.0]


def test_clip_and_track(model, images) -> None:
    clip = torch.stack([images, images.flip(-1), images.flip(-2)], dim=1)  # B x T x 3 x H x W
    with torch.no_grad():
        out = model.forward_clip(clip, all_stages=True)
        step = model.track_step(images)
        ref = model(images)
    n = model.num_queries
    assert out["mask_logits"].shape == (2, n, 3, H // 8, W // 8)
    assert out["cls_logits"].shape == (2, n, 13) and out["query_embed"].shape == (2, n, 64)
    assert out["aux"][0]["mask_logits"].shape == (2, n, 3, H // 8, W // 8)
    for k in ("cls_logits", "mask_logits", "query_embed"):
        torch.testing.assert_close(step[k], ref[k])
    # Clip of one frame = per-frame decoding.
    with torch.no_grad():
        single = model.forward_clip(images[:, None])
    torch.testing.assert_close(
        single["mask_logits"][:, :, 0], ref["mask_logits"], rtol=1e-4, atol=1e-4
    )


def test_eval_determinism(model, images) -> None:
    with torch.no_grad():
        a = model(images)
        b = model(images)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_normalisation_inside_model(model) -> None:
    assert torch.allclose(model.pixel_mean.flatten(), torch.tensor([123.675, 116.28, 103.53]))
    assert torch.allclose(model.pixel_std.flatten(), torch.tensor([58.395, 57.12, 57.375]))
    assert "pixel_mean" not in model.state_dict()


def test_trace_dynamic_prompts_and_size(model, images) -> None:
    class Prompts(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, feats, boxes):
            out = self.m.decode_prompts(feats, boxes)
            return out["mask_logits"], out["iou"]

    with torch.no_grad():
        feats = model.encode(images[:1])
        with warnings.catch_warnings():
            warnings.simplefilter("error", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(Prompts(model), (feats, torch.rand(1, 3, 4) * 60))
        big = model.encode(torch.rand(1, 3, 192, 224) * 255)
        boxes = torch.rand(1, 7, 4) * 100
        boxes[..., 2:] += boxes[..., :2]
        masks, iou = traced(big, boxes)
        ref = model.decode_prompts(big, boxes)
    assert masks.shape == (1, 7, 24, 28)
    torch.testing.assert_close(masks, ref["mask_logits"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(iou, ref["iou"], rtol=1e-4, atol=1e-4)


def test_deform_option_and_num_classes() -> None:
    m = build_model("edge-xs", deform=True, num_classes=5).eval()
    assert any("dcn_offset" in k for k in m.state_dict())
    with torch.no_grad():
        out = m(torch.rand(1, 3, 64, 96) * 255)
    assert out["cls_logits"].shape == (1, 32, 6)
    assert out["mask_logits"].shape == (1, 32, 8, 12)


def test_import_rapsam_edge_does_not_import_model() -> None:
    code = (
        "import sys, rapsam_edge; assert 'rapsam_edge.model' not in sys.modules; "
        "import rapsam_edge.model; "
        "assert not {'torchvision', 'timm', 'mmdet', 'mmcv'} & set(sys.modules)"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1]
    )


def test_fused_stages_keep_the_trunk_contract() -> None:
    """Fused-MBConv stages (bench_trunk_designs.py) change the blocks, not the trunk's
    outputs: same strides and channels; residuals where in == out and stride 1."""
    from rapsam_edge.model.mobilenet import FusedInvertedResidual, InvertedResidual, MobileNetV2

    ref = MobileNetV2(width=0.5)
    fused = MobileNetV2(width=0.5, fused_stages=3, fused_expand=2)
    kinds = [type(b) for b in fused.features[1:]]
    assert kinds[:6] == [FusedInvertedResidual] * 6  # stages 1-3: 1 + 2 + 3 blocks
    assert set(kinds[6:]) == {InvertedResidual}
    assert fused.features[3].use_res_connect and not fused.features[2].use_res_connect
    assert fused.features[2].conv[0][0].groups == 1  # dense, not depthwise
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        shapes = [tuple(t.shape) for t in fused(x)]
        assert shapes == [tuple(t.shape) for t in ref(x)]
    with pytest.raises(ValueError, match="fused_stages"):
        MobileNetV2(fused_stages=8)
