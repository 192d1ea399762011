"""Query decoder: learned object queries, shared stages and the two adapters.

Panoptic pass: M0 = q . F; ``num_stages`` shared stages; object adapter -> final outputs.
Prompt pass: prompt queries run through the *same* stages (each attending only to itself),
then the prompt adapter -> final outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoder import DecoderStage, ObjectAdapter, PromptAdapter, make_classifier
from .heads import LOGIT_SCALE, CosineClassifier, mask_product

__all__ = ["MaskDecoder"]

# Reference temperature applied to the stage (not the adapter) cosine logits.
STAGE_TEMPERATURE = 0.1


class MaskDecoder(nn.Module):
    def __init__(
        self,
        *,
        dim: int,
        num_queries: int,
        num_stages: int,
        num_heads: int,
        ffn_dim: int,
        class_head: str,
        num_classes: int,
        class_embed_dim: int,
        class_prototypes: int = 1,
    ) -> None:
        """
        Arguments:
          class_head: "cosine" (reference; frozen class-embedding buffer C x P x E) or
            "linear" (edge; no embeddings).
          class_prototypes: P, embeddings per class (the reference takes the max over
            synonyms); only used by the cosine head.
        """
        super().__init__()
        self.num_classes = num_classes
        self.queries = nn.Embedding(num_queries, dim)
        self.stages = nn.ModuleList(
            DecoderStage(
                dim=dim,
                num_heads=num_heads,
                ffn_dim=ffn_dim,
                classifier=make_classifier(
                    class_head,
                    dim=dim,
                    num_classes=num_classes,
                    embed_dim=class_embed_dim,
                    hidden_layers=2,
                    scale=LOGIT_SCALE / STAGE_TEMPERATURE,
                ),
            )
            for _ in range(num_stages)
        )
        self.object_adapter = ObjectAdapter(
            dim=dim,
            classifier=make_classifier(
                class_head,
                dim=dim,
                num_classes=num_classes,
                embed_dim=class_embed_dim,
                hidden_layers=0,
                scale=LOGIT_SCALE,
            ),
        )
        self.prompt_adapter = PromptAdapter(dim=dim, num_heads=num_heads)
        self._init_weights()
        # Frozen class embeddings (cosine head only): a persistent buffer, not a parameter.
        embed = None
        if isinstance(self.object_adapter.cls_head, CosineClassifier):
            gen = torch.Generator().manual_seed(0)
            embed = F.normalize(
                torch.randn(num_classes, class_prototypes, class_embed_dim, generator=gen), dim=-1
            )
        self.register_buffer("class_embed", embed)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.no_grad()
    def set_class_embeddings(self, embed: Tensor) -> None:
        """Install frozen class embeddings: C x E or C x P x E (rows are L2-normalised)."""
        if self.class_embed is None:
            raise ValueError("this decoder has a linear class head; it takes no embeddings")
        embed = embed if embed.dim() == 3 else embed.unsqueeze(1)
        c, _, e = embed.shape
        if c != self.num_classes or e != self.class_embed.shape[-1]:
            raise ValueError(
                f"class embeddings {tuple(embed.shape)} do not match "
                f"{self.num_classes} classes x {self.class_embed.shape[-1]} dims"
            )
        self.class_embed = F.normalize(embed.float(), dim=-1).to(self.queries.weight.device)

    def panoptic(self, feats: Tensor, *, all_stages: bool = False) -> dict:
        """feats: B x D x h x w -> dict(cls_logits B x N x (C+1), mask_logits B x N x h x w,
        query_embed B x N x D[, aux: per-stage dicts (cls_logits, mask_logits)])."""
        b, _, h, w = feats.shape
        f = feats.flatten(2)
        # Initial masks from the learned queries.
        q = self.queries.weight.unsqueeze(0).expand(b, -1, -1)
        m = mask_product(q, f)
        aux = []
        for stage in self.stages:
            q = stage.update(f, q, m)
            _, m = stage.predict_masks(q, f)
            if all_stages:
                aux.append(
                    {
                        "cls_logits": stage.predict_classes(q, self.class_embed),
                        "mask_logits": m.view(b, -1, h, w),
                    }
                )
        # Object adapter: final panoptic / video queries, masks and classes.
        q, m, cls = self.object_adapter(f, q, m, self.class_embed)
        out = {"cls_logits": cls, "mask_logits": m.view(b, -1, h, w), "query_embed": q}
        if all_stages:
            out["aux"] = aux
        return out

    def prompts(self, feats: Tensor, queries: Tensor, *, all_stages: bool = False) -> dict:
        """feats: B x D x h x w, queries: B x P x D -> dict(mask_logits B x P x h x w,
        iou B x P[, aux: the initial masks (mask_logits), then per-stage dicts
        (mask_logits, iou)])."""
        b, _, h, w = feats.shape
        f = feats.flatten(2)
        q = queries
        m = mask_product(q, f)
        # The initial masks are supervised too: with Fourier position features they already
        # localise the prompt, which is what the first stage's mask pooling starts from.
        aux = [{"mask_logits": m.view(b, -1, h, w)}] if all_stages else []
        for stage in self.stages:
            q = stage.update(f, q, m, self_only=True)
            mask_feat, m = stage.predict_masks(q, f)
            if all_stages:
                aux.append(
                    {"mask_logits": m.view(b, -1, h, w), "iou": stage.predict_iou(mask_feat)}
                )
        # Prompt adapter: final masks and IoU.
        _, m, iou = self.prompt_adapter(f, q)
        out = {"mask_logits": m.view(b, -1, h, w), "iou": iou}
        if all_stages:
            out["aux"] = aux
        return out
