"""Shared K-Net style decoder stages and the two decoupled adapters.

Everything works on flattened features ``feats``: B x D x L (L = h * w, or T * h * w for a
clip whose frames are stacked along height); masks are B x N x L.
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import FFN, Attention
from .heads import CosineClassifier, LinearClassifier, mask_pool, mask_product, mlp
from .kernel_updator import KernelUpdator

__all__ = ["DecoderStage", "ObjectAdapter", "PromptAdapter", "make_classifier"]


def make_classifier(
    kind: str, *, dim: int, num_classes: int, embed_dim: int, hidden_layers: int, scale: float
) -> nn.Module:
    """``kind`` is "cosine" (reference, needs class embeddings) or "linear" (edge)."""
    builders = {
        "cosine": lambda: CosineClassifier(
            dim=dim, embed_dim=embed_dim, hidden_layers=hidden_layers, scale=scale
        ),
        "linear": lambda: LinearClassifier(dim=dim, num_classes=num_classes),
    }
    return builders[kind]()


class DecoderStage(nn.Module):
    """One shared decoder stage: mask pooling -> kernel update -> self-attention -> FFN,
    then per-stage class / mask / IoU heads (reference ``CrossAttenHead``)."""

    def __init__(self, *, dim: int, num_heads: int, ffn_dim: int, classifier: nn.Module) -> None:
        super().__init__()
        self.kernel_update = KernelUpdator(dim=dim)
        self.self_attn = Attention(dim=dim, num_heads=num_heads)
        self.self_attn_norm = nn.LayerNorm(dim)
        self.ffn = FFN(dim=dim, hidden_dim=ffn_dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.cls_fcs = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU())
        self.cls_head = classifier
        self.mask_fcs = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU())
        self.fc_mask = nn.Linear(dim, dim)
        self.iou_head = mlp([dim, dim, dim, 1])

    def update(
        self, feats: Tensor, queries: Tensor, mask_logits: Tensor, *, self_only: bool = False
    ) -> Tensor:
        """feats: B x D x L, queries: B x N x D, mask_logits: B x N x L -> B x N x D.

        ``self_only``: each query attends only to itself (prompt queries).
        """
        # Mask pooling (hard masks, SUM) and kernel update.
        q = self.kernel_update(mask_pool(mask_logits, feats), queries)
        # Self-attention among queries, residual, LN.
        attn = self.self_attn.forward_self_only(q) if self_only else self.self_attn(q, q, q)
        q = self.self_attn_norm(q + attn)
        # FFN, residual, LN.
        return self.ffn_norm(self.ffn(q))

    def predict_masks(self, queries: Tensor, feats: Tensor) -> tuple[Tensor, Tensor]:
        """queries: B x N x D, feats: B x D x L -> (mask_feat B x N x D, masks B x N x L)."""
        mask_feat = self.mask_fcs(queries)
        return mask_feat, mask_product(self.fc_mask(mask_feat), feats)

    def predict_classes(self, queries: Tensor, class_embed: Tensor | None) -> Tensor:
        """B x N x D -> B x N x (C + 1)."""
        return self.cls_head(self.cls_fcs(queries), class_embed)

    def predict_iou(self, mask_feat: Tensor) -> Tensor:
        """B x N x D -> B x N."""
        return self.iou_head(mask_feat).squeeze(-1)


class ObjectAdapter(nn.Module):
    """Panoptic / video adapter: one more mask pooling + kernel update, then mask and class."""

    def __init__(self, *, dim: int, classifier: nn.Module) -> None:
        super().__init__()
        self.kernel_update = KernelUpdator(dim=dim)
        self.cls_head = classifier

    def forward(
        self, feats: Tensor, queries: Tensor, mask_logits: Tensor, class_embed: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """feats: B x D x L, queries: B x N x D, mask_logits: B x N x L ->
        (queries B x N x D, masks B x N x L, cls_logits B x N x (C + 1))."""
        q = self.kernel_update(mask_pool(mask_logits, feats), queries)
        return q, mask_product(q, feats), self.cls_head(q, class_embed)


class PromptAdapter(nn.Module):
    """Interactive adapter: cross-attention of prompt queries to the flattened features
    (no positional encoding), residual + LN, mask product, linear IoU head."""

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        self.cross_attn = Attention(dim=dim, num_heads=num_heads)
        self.norm = nn.LayerNorm(dim)
        self.iou_head = nn.Linear(dim, 1)

    def forward(self, feats: Tensor, queries: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """feats: B x D x L, queries: B x P x D ->
        (queries B x P x D, masks B x P x L, iou B x P).

        The cross-attention runs in its absorbed form (``Attention.forward_feats``): the
        features are never projected to keys and values, which was half of the prompt
        decoder's time for one prompt."""
        q = self.norm(queries + self.cross_attn.forward_feats(queries, feats))
        return q, mask_product(q, feats), self.iou_head(q).squeeze(-1)
