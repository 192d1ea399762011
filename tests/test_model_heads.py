"""Cosine class head (reference), self-only prompt attention and torch.export friendliness."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rapsam_edge.model import build_model
from rapsam_edge.model.attention import Attention
from rapsam_edge.model.mask_decoder import MaskDecoder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cosine_decoder() -> MaskDecoder:
    torch.manual_seed(0)
    dec = MaskDecoder(
        dim=32,
        num_queries=6,
        num_stages=2,
        num_heads=8,
        ffn_dim=64,
        class_head="cosine",
        num_classes=5,
        class_embed_dim=16,
        class_prototypes=3,
    ).eval()
    return dec


def test_cosine_head_matches_manual(cosine_decoder: MaskDecoder) -> None:
    embed = torch.randn(5, 2, 16)
    cosine_decoder.set_class_embeddings(embed)
    assert cosine_decoder.class_embed.shape == (5, 2, 16)
    feats = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        out = cosine_decoder.panoptic(feats, all_stages=True)
        q = out["query_embed"]
        proj = cosine_decoder.object_adapter.cls_head.proj(q)
    cos = torch.einsum("bnd,cpd->bncp", F.normalize(proj, dim=-1), F.normalize(embed, dim=-1))
    expected = math.exp(4.6052) * cos.amax(-1)
    torch.testing.assert_close(out["cls_logits"][..., :5], expected, rtol=1e-4, atol=1e-3)
    # Background logit is exactly 0; stage logits use the extra 1 / 0.1 temperature.
    assert torch.all(out["cls_logits"][..., 5] == 0)
    for aux in out["aux"]:
        assert torch.all(aux["cls_logits"][..., 5] == 0)
        assert aux["cls_logits"].abs().max() <= 1000.1
    assert out["cls_logits"].abs().max() <= 100.01


def test_class_embeddings_checked(cosine_decoder: MaskDecoder) -> None:
    with pytest.raises(ValueError):
        cosine_decoder.set_class_embeddings(torch.randn(4, 16))
    linear = build_model("edge-xs")
    assert linear.decoder.class_embed is None
    with pytest.raises(ValueError):
        linear.decoder.set_class_embeddings(torch.randn(12, 16))


def test_self_only_attention_equals_diagonal_mask() -> None:
    torch.manual_seed(0)
    attn = Attention(dim=16, num_heads=4)
    x = torch.randn(2, 5, 16)
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ref.in_proj_weight.data.copy_(attn.in_proj_weight.data)
    ref.in_proj_bias.data.copy_(attn.in_proj_bias.data)
    ref.out_proj.load_state_dict(attn.out_proj.state_dict())
    mask = ~torch.eye(5, dtype=torch.bool)  # True = not allowed
    expected = ref(x, x, x, attn_mask=mask, need_weights=False)[0]
    torch.testing.assert_close(attn.forward_self_only(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        attn(x, x, x), ref(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    ("dim", "heads", "nq", "length"), [(16, 4, 1, 7), (128, 4, 40, 300), (64, 8, 3, 1)]
)
def test_absorbed_cross_attention_equals_projected_keys(dim, heads, nq, length) -> None:
    # forward_feats never projects the features; it must equal nn.MultiheadAttention with
    # keys = values = the features (biases non-zero, Nq both below and above the head width),
    # and so must its gradients (it is the training path of the prompt adapter).
    torch.manual_seed(0)
    attn = Attention(dim=dim, num_heads=heads)
    with torch.no_grad():
        attn.in_proj_bias.normal_()
        attn.out_proj.bias.normal_()
    ref = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    ref.load_state_dict(attn.state_dict())
    query = torch.randn(2, nq, dim, requires_grad=True)
    feats = torch.randn(2, dim, length, requires_grad=True)
    got = attn.forward_feats(query, feats)
    keys = feats.transpose(1, 2)
    expected = ref(query, keys, keys, need_weights=False)[0]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(got)
    ours = [query, feats, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight]
    theirs = [query, feats, ref.in_proj_weight, ref.in_proj_bias, ref.out_proj.weight]
    grads = torch.autograd.grad((got * g).sum(), ours)
    grads_ref = torch.autograd.grad((expected * g).sum(), theirs)
    # the key bias drops out of the softmax: its gradient is zero in both forms
    torch.testing.assert_close(grads[3][dim : 2 * dim], torch.zeros(dim), rtol=0, atol=1e-5)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_torch_export_prompts_dynamic_p_and_size() -> None:
    model = build_model("edge-xs").eval()

    class Prompts(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, feats, boxes):
            out = self.m.decode_prompts(feats, boxes)
            return out["mask_logits"], out["iou"]

    dims = {
        "feats": {
            2: torch.export.Dim("h", min=2, max=256),
            3: torch.export.Dim("w", min=2, max=256),
        },
        "boxes": {1: torch.export.Dim("p", min=1, max=512)},
    }
    ep = torch.export.export(
        Prompts().eval(),
        (torch.randn(1, 64, 16, 20), torch.rand(1, 3, 4) * 50),
        dynamic_shapes=dims,
    )
    feats = torch.randn(1, 64, 24, 28)
    for p in (1, 30):
        boxes = torch.rand(1, p, 4) * 100
        with torch.no_grad():
            masks, iou = ep.module()(feats, boxes)
            ref = model.decode_prompts(feats, boxes)
        assert masks.shape == (1, p, 24, 28)
        torch.testing.assert_close(masks, ref["mask_logits"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(iou, ref["iou"], rtol=1e-5, atol=1e-5)
