"""Official RAP-SAM R50 checkpoint -> ours, built from an independent table of the official
key names and shapes (taken from the reference code: mmdet ResNet-50, YOSONeck with
agg_dim=128 / backbone_shape [256, 512, 1024, 2048], RapSAMVideoHead with 3 CrossAttenHead
stages, KernelUpdator adapters and an mmcv MultiheadAttention prompt adapter)."""

from __future__ import annotations

import pytest
import torch

from rapsam_edge.model import build_model, load_model, save_model
from rapsam_edge.model.convert import ConversionError, convert_official

torch.set_num_threads(1)
D = 256
R50_OFFICIAL_PARAMS = 47_252_245  # sum of the parameter tensors of the table below


def _bn(p: str, c: int) -> dict:
    return {
        f"{p}.weight": (c,),
        f"{p}.bias": (c,),
        f"{p}.running_mean": (c,),
        f"{p}.running_var": (c,),
        f"{p}.num_batches_tracked": (),
    }


def _lin(p: str, cout: int, cin: int, bias: bool = True) -> dict:
    out = {f"{p}.weight": (cout, cin)}
    if bias:
        out[f"{p}.bias"] = (cout,)
    return out


def _ln(p: str, c: int = D) -> dict:
    return {f"{p}.weight": (c,), f"{p}.bias": (c,)}


def _conv(p: str, cout: int, cin: int, k: int, bias: bool) -> dict:
    out = {f"{p}.weight": (cout, cin, k, k)}
    if bias:
        out[f"{p}.bias"] = (cout,)
    return out


def _kernel_updator(p: str) -> dict:
    out = {
        **_lin(f"{p}.dynamic_layer", 2 * D, D),
        **_lin(f"{p}.input_layer", 2 * D, D),
        **_lin(f"{p}.input_gate", D, D),
        **_lin(f"{p}.update_gate", D, D),
        **_lin(f"{p}.fc_layer", D, D),
    }
    for n in ("norm_in", "norm_out", "input_norm_in", "input_norm_out", "fc_norm"):
        out.update(_ln(f"{p}.{n}"))
    return out


def official_r50_shapes() -> dict[str, tuple[int, ...]]:
    s: dict[str, tuple[int, ...]] = {}
    # Backbone: torchvision ResNet-50 names (mmdet ResNet, style pytorch), no fc.
    s.update(_conv("backbone.conv1", 64, 3, 7, False))
    s.update(_bn("backbone.bn1", 64))
    cin = 64
    for i, n in enumerate((3, 4, 6, 3)):
        c = 64 * 2**i
        for j in range(n):
            p = f"backbone.layer{i + 1}.{j}"
            s.update(_conv(f"{p}.conv1", c, cin, 1, False))
            s.update(_bn(f"{p}.bn1", c))
            s.update(_conv(f"{p}.conv2", c, c, 3, False))
            s.update(_bn(f"{p}.bn2", c))
            s.update(_conv(f"{p}.conv3", 4 * c, c, 1, False))
            s.update(_bn(f"{p}.bn3", 4 * c))
            if j == 0:
                s.update(_conv(f"{p}.downsample.0", 4 * c, cin, 1, False))
                s.update(_bn(f"{p}.downsample.1", 4 * c))
            cin = 4 * c
    # Neck: LiteDeformConv (out_channels = [128, 128, 256, 512, 1024]) + loc_conv.
    n = "neck.deconv"
    s.update(_conv(f"{n}.lateral_conv0", 1024, 2048, 1, True))
    for k, (ci, co, lat_in) in enumerate(((1024, 512, 1024), (512, 256, 512), (256, 128, 256))):
        p = f"{n}.deform_conv{k + 1}"
        s.update(_conv(f"{p}.dcn_offset", 27, ci, 3, True))
        s.update(_conv(f"{p}.dcn", co, ci, 3, False))
        s.update(_bn(f"{p}.dcn_bn", co))
        s[f"{p}.up_sample.weight"] = (co, co, 4, 4)
        s.update(_bn(f"{p}.up_bn", co))
        s.update(_conv(f"{n}.lateral_conv{k + 1}", co, lat_in, 1, True))
    s.update(_conv(f"{n}.output_conv", 128, 128, 3, True))
    s[f"{n}.bias"] = (1, 128, 1, 1)
    for lvl, c in ((5, 1024), (4, 512), (3, 256), (2, 128)):
        s.update(_conv(f"{n}.conv_a{lvl}", 128, c, 1, False))
    s.update(_conv("neck.loc_conv", D, 130, 1, True))
    # Head.
    h = "panoptic_head"
    s[f"{h}.kernels.weight"] = (100, D)
    s[f"{h}.mask_tokens.weight"] = (1, D)
    s[f"{h}.pb_embedding.weight"] = (2, D)
    s.update(_lin(f"{h}.pos_linear", D, 2 * D))
    for i in range(3):
        p = f"{h}.mask_heads.{i}"
        s.update(_kernel_updator(f"{p}.kernel_update"))
        s[f"{p}.s_atten.in_proj_weight"] = (3 * D, D)
        s[f"{p}.s_atten.in_proj_bias"] = (3 * D,)
        s.update(_lin(f"{p}.s_atten.out_proj", D, D))
        s.update(_ln(f"{p}.s_atten_norm"))
        s.update(_lin(f"{p}.ffn.layers.0.0", 2048, D))
        s.update(_lin(f"{p}.ffn.layers.1", D, 2048))
        s.update(_ln(f"{p}.ffn_norm"))
        s.update(_lin(f"{p}.cls_fcs.0", D, D, bias=False))
        s.update(_ln(f"{p}.cls_fcs.1"))
        s.update(_lin(f"{p}.cls_proj.0", D, D))
        s.update(_lin(f"{p}.cls_proj.2", D, D))
        s.update(_lin(f"{p}.cls_proj.4", 768, D))
        s.update(_lin(f"{p}.mask_fcs.0", D, D, bias=False))
        s.update(_ln(f"{p}.mask_fcs.1"))
        s.update(_lin(f"{p}.fc_mask", D, D))
        s.update(_lin(f"{p}.iou_embed.0", D, D))
        s.update(_lin(f"{p}.iou_embed.2", D, D))
        s.update(_lin(f"{p}.iou_embed.4", 1, D))
    s.update(_kernel_updator(f"{h}.panoptic_attn"))
    s.update(_lin(f"{h}.panoptic_cls.0", 768, D))
    s[f"{h}.prompt_attn.attn.in_proj_weight"] = (3 * D, D)
    s[f"{h}.prompt_attn.attn.in_proj_bias"] = (3 * D,)
    s.update(_lin(f"{h}.prompt_attn.attn.out_proj", D, D))
    s.update(_ln(f"{h}.prompt_norm"))
    s.update(_lin(f"{h}.prompt_iou", 1, D))
    return s


def _is_param(key: str) -> bool:
    return not key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def _synthetic_official(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in official_r50_shapes().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


def test_official_table_param_count() -> None:
    total = sum(torch.Size(v).numel() for k, v in official_r50_shapes().items() if _is_param(k))
    assert total == R50_OFFICIAL_PARAMS


def test_r50_param_count_matches_official() -> None:
    # The frozen CLIP class-embedding matrix is a buffer (not a parameter, not in the official
    # checkpoint) and is therefore not counted.
    with torch.device("meta"):
        model = build_model("rapsam-r50")
    ours = sum(p.numel() for p in model.parameters())
    assert abs(ours - 47.25e6) / 47.25e6 < 0.005
    assert ours == R50_OFFICIAL_PARAMS
    assert "decoder.class_embed" not in dict(model.named_parameters())
    assert model.decoder.class_embed.shape == (155, 1, 768)


def test_convert_round_trip() -> None:
    official = _synthetic_official()
    embed = torch.randn(155, 2, 768)
    ours = convert_official({"meta": {}, "state_dict": official}, class_embeddings=embed)
    model = build_model("rapsam-r50", class_prototypes=2)
    model.load_state_dict(ours, strict=True)
    sd = model.state_dict()
    # Spot checks of the renaming.
    pairs = {
        "backbone.layer3.5.conv2.weight": "backbone.layer3.5.conv2.weight",
        "neck.deconv.deform_conv2.dcn_offset.weight": "neck.deform_conv2.dcn_offset.weight",
        "neck.deconv.bias": "neck.bias",
        "panoptic_head.kernels.weight": "decoder.queries.weight",
        "panoptic_head.mask_heads.1.s_atten.in_proj_weight": "decoder.stages.1.self_attn.in_proj_weight",
        "panoptic_head.mask_heads.2.ffn.layers.0.0.weight": "decoder.stages.2.ffn.fc1.weight",
        "panoptic_head.mask_heads.0.cls_proj.4.bias": "decoder.stages.0.cls_head.proj.4.bias",
        "panoptic_head.panoptic_cls.0.weight": "decoder.object_adapter.cls_head.proj.0.weight",
        "panoptic_head.prompt_attn.attn.out_proj.weight": "decoder.prompt_adapter.cross_attn.out_proj.weight",
        "panoptic_head.pb_embedding.weight": "prompt_encoder.prompt_embed.weight",
    }
    for off, our in pairs.items():
        assert torch.equal(sd[our], official[off]), off
    norms = sd["decoder.class_embed"].norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_convert_lists_missing_and_unexpected() -> None:
    official = _synthetic_official()
    del official["panoptic_head.prompt_iou.weight"]
    del official["neck.deconv.conv_a3.weight"]
    official["panoptic_head.extra.weight"] = torch.zeros(3)
    official["neck.deconv.output_conv.bias"] = torch.zeros(5)
    with pytest.raises(ConversionError) as err:
        convert_official(official, class_embeddings=torch.randn(155, 768))
    msg = str(err.value)
    assert "decoder.prompt_adapter.iou_head.weight" in msg and "neck.conv_a3.weight" in msg
    assert "panoptic_head.extra.weight" in msg
    assert "neck.deconv.output_conv.bias" in msg and "(5,)" in msg


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("edge-xs", num_classes=7).eval()
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert loaded.num_classes == 7
    # File form with config.json beside it.
    save_model(model, tmp_path / "f" / "weights.safetensors")
    assert load_model(tmp_path / "f" / "weights.safetensors").num_classes == 7
